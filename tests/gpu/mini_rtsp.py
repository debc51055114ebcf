#!/usr/bin/env python3
"""A small RTSP server in pure Python (stdlib only): real H.264 / HEVC from files, for machines
without GStreamer or the ffmpeg CLI (the GPU machine), to feed cuframes-service's RTSP client.

    python3 tests/gpu/mini_rtsp.py --port 0 --mount cam=clip.mp4 --mount raw=clip.h264 --fps 15

prints one `READY rtsp://127.0.0.1:PORT/NAME` line per mount once listening; SIGTERM or SIGINT
stops it (exit 0). From Python:

    with MiniRtspServer({"cam": Path("clip.mp4")}) as srv:   # start() ... stop()
        url = srv.url("cam")
        srv.kill()    # every connection reset, no longer listening (a crashed camera)
        srv.start()   # listening again on the same port

Sources: MP4 (ISO BMFF, moov before or after mdat, not fragmented) with avc1/avc3 (H.264) or
hvc1/hev1 (HEVC, 8 or 10 bit) video, demuxed here (stsd avcC/hvcC, stts, ctts, stss, stsc,
stsz, stco/co64, elst); or a raw Annex-B stream (.h264/.264/.avc: H.264; .h265/.265/.hevc:
HEVC), timed at --fps in decode order.

RTSP: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER / SET_PARAMETER (keepalive), TEARDOWN;
RTP over the RTSP connection only (RTP/AVP/TCP interleaved; a UDP SETUP is answered 461, which
FFmpeg answers by asking for TCP). RTP: RFC 6184 (single NAL unit, FU-A) and RFC 7798 (single
NAL unit, FU type 49), payload type 96, marker on an access unit's last packet, 90 kHz
timestamps from the file's presentation times. Each session plays the file from its start (so
the first picture is the file's first, a key frame), paced in real time by decode times, looping
forever with continuous timestamps and sequence numbers; the parameter sets go in-band before
every key frame that lacks them. Any number of concurrent clients, a thread per connection and
one per playing session.

The parts: mini_rtsp_nal.py (NAL units, Annex-B), mini_rtsp_source.py (the MP4 demuxer and raw
Annex-B sources), mini_rtsp_rtp.py (RTP packetisation, SDP), mini_rtsp_session.py (one client's
RTSP connection and RTP session); this file: the server (listening, connections, freeze, kill)
and the command line. Every public name of the parts is importable from here.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Optional

# The server's parts, each in a module of its own; their public names are mini_rtsp's too.
from mini_rtsp_nal import (H264, HEVC, first_slice_of_picture, group_access_units,  # noqa: F401
                           has_sps, is_aud, is_key, is_vcl, nal_type, split_annexb)
from mini_rtsp_rtp import MAX_PAYLOAD, PAYLOAD_TYPE, SERVER_NAME, packetize, sdp  # noqa: F401
from mini_rtsp_session import SESSION_TIMEOUT_S, Connection  # noqa: F401
from mini_rtsp_source import (ANNEXB_EXT, Sample, Source, load, load_annexb,  # noqa: F401
                              load_mp4, split_length_prefixed)

SEND_TIMEOUT_S = 10.0     # a client that takes nothing for this long is dropped


class MiniRtspServer:
    """RTSP server of `mounts` (name -> file), RTP over TCP. start() -> port; stop(); kill()
    (connections reset, like a killed process) then start() again on the same port."""

    def __init__(self, mounts: dict[str, Path | str], port: int = 0,
                 address: str = "127.0.0.1", fps: float = 25.0, verbose: bool = False) -> None:
        self.sources = {name.strip("/"): load(Path(p), fps) for name, p in mounts.items()}
        self.port = port
        self.address = address
        self.verbose = verbose
        self._frozen = False               # freeze(): senders hold their frames
        self._play_cond = threading.Condition()
        self._lock = threading.Lock()
        self._conns: set[Connection] = set()
        self._all_conns: list[Connection] = []
        self._listener: Optional[socket.socket] = None
        self._wake: Optional[tuple[socket.socket, socket.socket]] = None
        self._acceptor: Optional[threading.Thread] = None

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"mini_rtsp: {msg}", file=sys.stderr, flush=True)

    def url(self, name: str) -> str:
        host = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
        return f"rtsp://{host}:{self.port}/{name.strip('/')}"

    def __enter__(self) -> "MiniRtspServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> int:
        """Listens (on the port of the previous start after a stop/kill) and accepts clients;
        returns the port."""
        assert self._acceptor is None, "already started"
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            ls.bind((self.address, self.port))
            ls.listen(64)
        except OSError:
            ls.close()
            raise
        self.port = ls.getsockname()[1]
        self._listener = ls
        self._wake = socket.socketpair()
        self.thaw()
        self._acceptor = threading.Thread(target=self._accept_loop, args=(ls, self._wake[0]),
                                          daemon=True, name="rtsp-accept")
        self._acceptor.start()
        return self.port

    def _accept_loop(self, ls: socket.socket, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(ls, selectors.EVENT_READ)
            sel.register(wake, selectors.EVENT_READ)
            while True:
                events = sel.select()
                if any(key.fileobj is wake for key, _ in events):
                    return
                try:
                    sock, peer = ls.accept()
                except OSError:
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                struct.pack("ll", int(SEND_TIMEOUT_S), 0))
                conn = Connection(self, sock, peer)
                with self._lock:
                    self._conns.add(conn)
                    self._all_conns.append(conn)
                self.log(f"client {peer}")
                conn.reader.start()

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def sessions(self) -> int:
        """Connections now open."""
        with self._lock:
            return len(self._conns)

    def stats(self) -> list[tuple[Optional[str], int, int]]:
        """(mount, access units, RTP packets) of every connection since construction."""
        with self._lock:
            return [(c.mount, c.access_units, c.packets) for c in self._all_conns]

    def freeze(self) -> None:
        """Senders stop sending (connections stay open and answer requests): a hung camera."""
        with self._play_cond:
            self._frozen = True

    def thaw(self) -> None:
        """Senders go on, from the next picture, paced from now."""
        with self._play_cond:
            self._frozen = False
            self._play_cond.notify_all()

    def _wake_senders(self) -> None:
        with self._play_cond:
            self._play_cond.notify_all()

    def _wait_playing(self, conn: Connection) -> bool:
        """Blocks while frozen; False once conn is to stop."""
        with self._play_cond:
            self._play_cond.wait_for(lambda: not self._frozen or conn.stop.is_set())
        return not conn.stop.is_set()

    def _shutdown(self, reset: bool, timeout: float) -> None:
        if self._acceptor is None:
            return
        assert self._wake is not None and self._listener is not None
        self._wake[1].send(b"x")
        self._acceptor.join(timeout)
        self._listener.close()
        for s in self._wake:
            s.close()
        self._acceptor = self._listener = self._wake = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.close(reset=reset)
        deadline = time.monotonic() + timeout
        for c in conns:
            c.reader.join(max(0.0, deadline - time.monotonic()))
        alive = [c.peer for c in conns if c.reader.is_alive()]
        if alive:
            raise RuntimeError(f"mini_rtsp: connections of {alive} still open after {timeout} s")

    def stop(self, timeout: float = 5.0) -> None:
        """Stops listening, closes every connection (FIN) and joins the threads."""
        self._shutdown(reset=False, timeout=timeout)

    def kill(self, timeout: float = 5.0) -> None:
        """As if the process were killed: no longer listening, every connection reset (RST)."""
        self._shutdown(reset=True, timeout=timeout)


def parse_mount(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name.strip("/") or not path:
        raise argparse.ArgumentTypeError(f"bad mount {spec!r}: want NAME=FILE")
    return name.strip("/"), Path(path)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8554, help="0: pick a free port")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--mount", type=parse_mount, action="append", required=True,
                    metavar="NAME=FILE", help="serve FILE (MP4, or Annex-B .h264/.h265) as "
                    "rtsp://ADDRESS:PORT/NAME (repeatable)")
    ap.add_argument("--fps", type=float, default=25.0, help="frame rate of Annex-B files")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    try:
        server = MiniRtspServer(dict(args.mount), args.port, args.address, args.fps,
                                args.verbose)
    except (OSError, ValueError) as e:
        print(f"mini_rtsp: {e}", file=sys.stderr)
        return 1
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        server.start()
    except OSError as e:
        print(f"mini_rtsp: cannot listen on {args.address}:{args.port}: {e}", file=sys.stderr)
        return 1
    for name, src in server.sources.items():
        print(f"READY {server.url(name)}", flush=True)
        server.log(f"{name}: {src.path} {src.codec} {src.width}x{src.height}, "
                   f"{len(src.samples)} pictures, {src.duration / src.timescale:.2f} s")
    while not done.wait(3600):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
