"""mini_rtsp.py, the pure-Python RTSP server, checked by real clients (no GPU needed): its own
demuxer against the clips' known layout, a small RTSP/RTP client (tests/gpu/rtsp_client.py:
every NAL unit reassembled and compared with the file, sequence numbers, markers and timestamps
through a loop of the file, concurrent clients), its command line, and FFmpeg's ffprobe/ffmpeg
where the CLI exists (CI). cuframes-service on it: test_mini_rtsp_service.py (host memory) and
test_mini_rtsp_gpu.py (NVDEC into CUDA memory).

CI (scripts/test.sh), with test_mini_rtsp_service.py:
     PYTHONPATH=build/python python3 -m pytest -v tests/gpu/test_mini_rtsp_server.py \
         tests/gpu/test_mini_rtsp_service.py
GPU machine (tests/gpu/run.sh, stages rtsp and repeat; no ffmpeg CLI: the clips come made, in
CUFRAMES_TEST_MEDIA_DIR):
     CUFRAMES_TEST_EXPECT_GPU=1 CUFRAMES_SERVICE_BIN=... CUFRAMES_TEST_MEDIA_DIR=.gpu-media \
         python3 -m pytest -v tests/gpu/test_mini_rtsp_server.py
"""

from __future__ import annotations

import base64
import concurrent.futures
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "service"))
sys.path.insert(0, str(HERE))

import media  # noqa: E402
import mini_rtsp  # noqa: E402
import pattern  # noqa: E402
import svc  # noqa: E402
from rtsp_client import Client, expected_access_units, read_access_units  # noqa: E402
from rtsp_fixtures import CLIPS, clips, rtsp  # noqa: E402,F401  (fixtures)


# ---- the server by itself --------------------------------------------------------------------

@pytest.mark.parametrize("name", CLIPS)
def test_demux(clips: dict[str, Path], name: str) -> None:
    """The MP4 demuxer reads what media.py made: codec, size, every picture, timing, key
    frames, parameter sets (also in the first access unit as Annex-B, after conversion)."""
    clip = media.CLIPS[name]
    src = mini_rtsp.load(clips[name])
    assert (src.codec, src.width, src.height) == (clip.codec, clip.width, clip.height)
    assert len(src.samples) == clip.frames
    assert src.duration * clip.fps == clip.frames * src.timescale  # frames / fps seconds
    assert sorted(s.pts for s in src.samples) == [
        n * src.timescale // clip.fps for n in range(clip.frames)]  # shown at 0, 1/fps, ...
    assert [s.dts for s in src.samples] == sorted(s.dts for s in src.samples)
    assert src.samples[0].key and src.samples[0].pts == 0
    assert sum(s.key for s in src.samples) == (clip.frames + 14) // 15  # a key frame every 15
    want = [7, 8] if clip.codec == "h264" else [32, 33, 34]
    assert [mini_rtsp.nal_type(src.codec, p) for p in src.params] == want
    with open(src.path, "rb") as f:
        for s in src.samples:
            nals = src.read_nals(f, s)
            assert sum(mini_rtsp.is_vcl(src.codec, mini_rtsp.nal_type(src.codec, n))
                       for n in nals) >= 1
            assert sum(len(n) + src.length_size for n in nals) == s.size


def test_annexb_source(tmp_path: Path, clips: dict[str, Path]) -> None:
    """A raw Annex-B file (here: written from the MP4's access units) is split into the same
    access units again, with its parameter sets and key frames."""
    mp4 = mini_rtsp.load(clips["hevc-2688x1520"])
    raw = tmp_path / "clip.h265"
    with open(mp4.path, "rb") as f, open(raw, "wb") as out:
        for i, s in enumerate(mp4.samples):
            nals = mp4.read_nals(f, s)
            if i == 0:
                nals = mp4.params + nals
            out.write(b"".join(b"\x00\x00\x00\x01" + n for n in nals))
    src = mini_rtsp.load(raw, fps=15)
    assert src.codec == "hevc" and len(src.samples) == len(mp4.samples)
    assert src.params == mp4.params
    assert [s.key for s in src.samples] == [s.key for s in mp4.samples]
    assert src.duration == len(src.samples) * 6000  # 90 kHz at 15 fps
    with open(mp4.path, "rb") as f:
        for i, (a, b) in enumerate(zip(src.samples, mp4.samples)):
            want = mp4.read_nals(f, b)
            assert src.read_nals(None, a) == (mp4.params + want if i == 0 else want)


@pytest.mark.parametrize("names", [("h264-1280x720", "hevc10-1280x720")])
def test_rtp_stream(rtsp: Callable[..., mini_rtsp.MiniRtspServer], names: tuple[str, ...]) -> None:
    """Two clients on each of two mounts, at once: each gets the file's access units, every NAL
    unit byte-exact after depacketizing, through a loop of the file, with consecutive sequence
    numbers from RTP-Info's, timestamps from its rtptime plus the presentation times (continuing
    over the loop), the parameter sets in-band before key frames, and in real time. A
    GET_PARAMETER keepalive is answered mid-stream; TEARDOWN ends the session."""
    srv = rtsp({f"m{i}": n for i, n in enumerate(names)})
    clients = []
    for i, _ in enumerate(names):
        for _ in range(2):
            c = Client(srv.url(f"m{i}"))
            code, h, _ = c.request("OPTIONS", c.url)
            assert code == 200 and "GET_PARAMETER" in h["public"], h
            clients.append((i, c))
    t0 = time.monotonic()
    for i, c in clients:
        src = srv.sources[f"m{i}"]
        seq0, rtptime = c.play()
        if src.codec == "h264":
            assert "a=rtpmap:96 H264/90000" in c.sdp and "packetization-mode=1" in c.sdp
            sets = c.sdp.split("sprop-parameter-sets=")[1].split()[0].split(";")[0].split(",")
            assert [base64.b64decode(s) for s in sets] == src.params
        else:
            assert "a=rtpmap:96 H265/90000" in c.sdp
            for key, p in zip(("vps", "sps", "pps"), src.params):
                assert f"sprop-{key}={base64.b64encode(p).decode()}" in c.sdp
        c.expect = (seq0, rtptime)  # type: ignore[attr-defined]
    assert srv.sessions() == len(clients)

    def check(i: int, c: Client) -> None:
        src = srv.sources[f"m{i}"]
        count = len(src.samples) + 5  # into the second pass of the file
        c.send("GET_PARAMETER", c.url)
        got = read_access_units(c, src.codec, count)
        seq0, rtptime = c.expect  # type: ignore[attr-defined]
        assert got[0][0] == seq0
        for k, ((_, ts, nals), (want_ts, want)) in enumerate(
                zip(got, expected_access_units(src, count, rtptime))):
            assert ts == want_ts, f"access unit {k}: timestamp {ts}, expected {want_ts}"
            assert nals == want, f"access unit {k}: NAL units differ"
        while not c.replies:  # the keepalive's reply, among the packets
            c.rtp()
        assert c.replies[0][0] == 200 and c.replies[0][1]["cseq"] == str(c.cseq), c.replies

    # Each client read by a thread of its own: none holds the others up.
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        for fut in [pool.submit(check, i, c) for i, c in clients]:
            fut.result()
    elapsed = time.monotonic() - t0
    # Paced: the last pictures read are due (len + 5 - 1) / fps after the start.
    longest = max((len(srv.sources[f"m{i}"].samples) + 4) / 15 for i, _ in clients)
    assert elapsed > longest - 0.5, f"{elapsed:.2f} s for {longest:.2f} s of pictures"
    for _, c in clients:
        c.send("TEARDOWN", c.url)
        with pytest.raises(EOFError):
            while True:
                c.rtp()
        c.close()
    svc.wait_for(lambda: srv.sessions() == 0, 5, "the sessions to end after TEARDOWN")
    for _, c in clients:
        assert any(code == 200 and h.get("cseq") == str(c.cseq) for code, h, _ in c.replies)


def test_errors_and_kill(rtsp: Callable[..., mini_rtsp.MiniRtspServer]) -> None:
    """An unknown mount is 404; a UDP transport 461 (FFmpeg then asks for TCP); kill() resets
    the connections and stops listening; start() listens on the same port again."""
    srv = rtsp({"cam": "h264-1280x720"})
    port = srv.port
    c = Client(f"rtsp://127.0.0.1:{port}/nope")
    assert c.request("DESCRIBE", c.url)[0] == 404
    code, h, _ = c.request("SETUP", srv.url("cam") + "/stream=0",
                           {"Transport": "RTP/AVP;unicast;client_port=5000-5001"})
    assert code == 461, (code, h)
    c.close()
    c = Client(srv.url("cam"))
    c.play()
    c.rtp()
    srv.kill()
    assert srv.sessions() == 0
    with pytest.raises((ConnectionError, EOFError)):
        while True:
            c.rtp()
    c.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert srv.start() == port
    c = Client(srv.url("cam"))
    c.play()
    read_access_units(c, "h264", 3)
    c.close()


def test_cli(clips: dict[str, Path]) -> None:
    """The command line: a READY line per mount, served; SIGTERM exits 0."""
    with subprocess.Popen([sys.executable, str(HERE / "mini_rtsp.py"), "--port", "0",
                           "--mount", f"a={clips['h264-1280x720']}",
                           "--mount", f"/b={clips['hevc10-1280x720']}"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            urls = [proc.stdout.readline().split() for _ in range(2)]  # blocks until READY
            assert [u[0] for u in urls] == ["READY", "READY"], urls
            assert urls[0][1].endswith("/a") and urls[1][1].endswith("/b"), urls
            c = Client(urls[1][1])
            c.play()
            read_access_units(c, "hevc", 2)
            c.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=10)
        assert rc == 0, proc.stderr.read()


# ---- FFmpeg's client (where the CLI is: CI) --------------------------------------------------

def _need_cli(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"no {tool} CLI here (the GPU machine has none)")
    return path


@pytest.mark.parametrize("name", CLIPS)
def test_ffmpeg_client(rtsp: Callable[..., mini_rtsp.MiniRtspServer], name: str) -> None:
    """ffprobe sees the stream as media.py made it; ffmpeg decodes 60 pictures (through a loop
    of the file) without a single error message, each one checked: barcode advancing by one
    (back to 0 after the file's last picture), box and background."""
    ffprobe, ffmpeg = _need_cli("ffprobe"), _need_cli("ffmpeg")
    clip = media.CLIPS[name]
    srv = rtsp({"cam": name})
    probe = subprocess.run([ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-show_entries",
                            "stream=codec_name,width,height,pix_fmt", "-of",
                            "default=nw=1", srv.url("cam")],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0 and probe.stderr == "", probe
    pix = "yuv420p10le" if clip.bit_depth > 8 else "yuv420p"
    assert probe.stdout.split() == [f"codec_name={clip.codec}", f"width={clip.width}",
                                    f"height={clip.height}", f"pix_fmt={pix}"], probe.stdout

    out_fmt, dtype = ("p010le", np.uint16) if clip.bit_depth > 8 else ("nv12", np.uint8)
    w, h = clip.width, clip.height
    frame_items, a_size = w * h * 3 // 2, np.dtype(dtype).itemsize
    codes = []
    with subprocess.Popen([ffmpeg, "-hide_banner", "-nostdin", "-v", "error",
                           "-rtsp_transport", "tcp", "-i", srv.url("cam"), "-frames:v", "60",
                           "-fps_mode", "passthrough", "-pix_fmt", out_fmt, "-f", "rawvideo",
                           "pipe:1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            for k in range(60):
                data = proc.stdout.read(frame_items * a_size)
                assert len(data) == frame_items * a_size, f"picture {k} cut short"
                a = np.frombuffer(data, dtype)
                y, uv = a[:w * h].reshape(h, w), a[w * h:].reshape(h // 2, w)
                n = pattern.read_barcode(y)
                assert n is not None, f"picture {k}: no barcode"
                problem = pattern.check_picture(y, uv, n, noisy=True)
                assert problem is None, f"picture {k} (index {n}): {problem}"
                codes.append(n)
            assert proc.stdout.read() == b""
            rc = proc.wait(timeout=30)
            err = proc.stderr.read().decode(errors="replace")
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 0 and err == "", (rc, err)
    assert codes == [k % clip.frames for k in range(60)], codes

