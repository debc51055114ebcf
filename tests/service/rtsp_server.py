#!/usr/bin/python3
"""A real RTSP server for the service tests: gst-rtsp-server through python3-gi.

Run with Debian's interpreter (pyenv's python has no gi):

    /usr/bin/python3 tests/service/rtsp_server.py --port 8554 \
        --mount /h264=h264:640x480 --mount /hevc=hevc:552x314 --fps 15

Each mount serves a live stream (paced in real time) of pattern.py's picture: a 16-bit frame
counter as a barcode (frame 0 is the first frame of each client's session: the factory is not
shared), a moving box, a moving sawtooth background. H.264 with x264enc, HEVC with x265enc, no
B-frames, a key frame every --gop frames, parameter sets with every key frame.

Mount options, after the size, comma-separated: `audio` adds a live A-law audio stream (8 kHz
sine), `video_for=S` stops the video S seconds into each session while the connection (and the
audio) go on: a camera whose picture freezes although its stream is alive.
    --mount /frozen=h264:640x480,audio,video_for=3

Prints "READY <port>" on stdout once listening (--port 0 picks a free port). SIGTERM or SIGINT:
exits 0. The listening socket is bound with SO_REUSEADDR (GStreamer's default), so a server that
was SIGKILLed can be started again on the same port at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pattern  # noqa: E402

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ENCODERS = {
    "h264": ("x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max={gop} "
             "bframes=0 threads=1 ! video/x-h264,profile=main "
             "! rtph264pay name=pay0 pt=96 config-interval=-1"),
    "hevc": ("x265enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max={gop} "
             "option-string=\"pools=1:frame-threads=1\" "
             "! rtph265pay name=pay0 pt=96 config-interval=-1"),
}


AUDIO = ("audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=8000,channels=1 "
         "! alawenc ! rtppcmapay name=pay1 pt=8")


class Factory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, codec: str, width: int, height: int, fps: int, gop: int,
                 kbps: int, audio: bool = False, video_for: float = 0) -> None:
        super().__init__()
        pattern.check_geometry(width, height)
        self.width, self.height, self.fps = width, height, fps
        self.video_frames = round(video_for * fps) if video_for > 0 else None
        enc = ENCODERS[codec].format(gop=gop, kbps=kbps)
        self.set_launch(
            f"( appsrc name=src is-live=true format=time do-timestamp=false block=false "
            f"caps=video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 "
            f"! queue max-size-buffers=2 ! {enc} " + (AUDIO if audio else "") + " )")
        self.set_shared(False)
        self.connect("media-configure", self._configure)

    def _configure(self, _factory: GstRtspServer.RTSPMediaFactory,
                   media: GstRtspServer.RTSPMedia) -> None:
        src = media.get_element().get_child_by_name("src")
        state = {"n": 0, "t0": None}
        src.connect("need-data", self._need_data, state)

    def _need_data(self, src: Gst.Element, _length: int, state: dict) -> None:
        # Runs on appsrc's streaming thread: pacing it here (sleeping until the frame is due)
        # makes the stream live at the nominal rate whatever the sinks do.
        n = state["n"]
        if self.video_frames is not None and n >= self.video_frames:
            if n == self.video_frames:
                print(f"VIDEO STOPPED after frame {n - 1}", file=sys.stderr, flush=True)
                state["n"] = n + 1
            return  # appsrc waits for a buffer that never comes: the picture freezes
        now = time.monotonic()
        if state["t0"] is None:
            state["t0"] = now
            # Frame n of this session is due at t0 + n / fps (CLOCK_MONOTONIC, as the rings'
            # publish_ns): what a test needs to measure end-to-end latency.
            print(f"SESSION {self.width}x{self.height} t0_ns={int(now * 1e9)} fps={self.fps}",
                  file=sys.stderr, flush=True)
        due = state["t0"] + n / self.fps
        if due > now:
            time.sleep(due - now)
        data = pattern.draw_i420(n, self.width, self.height)
        buf = Gst.Buffer.new_wrapped(data)
        buf.pts = n * Gst.SECOND // self.fps
        buf.duration = Gst.SECOND // self.fps
        state["n"] = n + 1
        src.emit("push-buffer", buf)


Mount = tuple[str, str, int, int, bool, float]  # path, codec, width, height, audio, video_for


def parse_mount(spec: str) -> Mount:
    try:
        path, rest = spec.split("=", 1)
        codec, opts = rest.split(":", 1)
        size, *extra = opts.split(",")
        w, h = (int(v) for v in size.lower().split("x"))
        audio, video_for = False, 0.0
        for o in extra:
            if o == "audio":
                audio = True
            elif o.startswith("video_for="):
                video_for = float(o.split("=", 1)[1])
            else:
                raise ValueError(o)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad mount {spec!r}: want /path=codec:WxH[,audio][,video_for=S]") from None
    if codec not in ENCODERS or not path.startswith("/"):
        raise argparse.ArgumentTypeError(f"bad mount {spec!r}: codec h264|hevc, path /...")
    return path, codec, w, h, audio, video_for


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8554, help="0: pick a free port")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--mount", type=parse_mount, action="append",
                    help="/path=h264|hevc:WxH[,audio][,video_for=S] (repeatable); "
                         "default /h264 640x480, /hevc 552x314")
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--gop", type=int, default=15, help="frames between key frames")
    ap.add_argument("--kbps", type=int, default=1500)
    args = ap.parse_args()
    mounts = args.mount or [("/h264", "h264", 640, 480, False, 0.0),
                            ("/hevc", "hevc", 552, 314, False, 0.0)]

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    points = server.get_mount_points()
    for path, codec, w, h, audio, video_for in mounts:
        points.add_factory(path, Factory(codec, w, h, args.fps, args.gop, args.kbps, audio,
                                         video_for))
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on {args.address}:{args.port}", file=sys.stderr)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)

    # Sessions of clients that vanished without TEARDOWN are dropped after their timeout.
    def cleanup() -> bool:
        server.get_session_pool().cleanup()
        return True
    GLib.timeout_add_seconds(2, cleanup)

    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    # Exit without tearing the pipelines down one by one: a streaming thread may sit in
    # need-data's sleep; the process is going anyway.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    threading.current_thread().name = "rtsp-main"
    sys.exit(main())
