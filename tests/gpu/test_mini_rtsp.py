"""mini_rtsp.py, the pure-Python RTSP server, checked by real clients: its own demuxer against
the clips' known layout, a small RTSP/RTP client here (every NAL unit reassembled and compared
with the file, sequence numbers, markers and timestamps through a loop of the file, concurrent
clients), FFmpeg's ffprobe/ffmpeg where the CLI exists (CI), and cuframes-service: an RTSP camera
on it streams, and a subscriber checks every picture (tests/service/pattern.py) in host memory
(software decode) and, on a GPU machine, in CUDA memory decoded by NVDEC, read with torch.

CI:  PYTHONPATH=build/python python3 -m pytest -v tests/gpu/test_mini_rtsp.py
GPU machine (no ffmpeg CLI: the clips come made, in CUFRAMES_TEST_MEDIA_DIR):
     CUFRAMES_TEST_EXPECT_GPU=1 CUFRAMES_SERVICE_BIN=... CUFRAMES_TEST_MEDIA_DIR=.gpu-media \
         python3 -m pytest -v tests/gpu/test_mini_rtsp.py

The GPU tests run where there is a GPU (/dev/nvidia*) and torch with CUDA, and are skipped
elsewhere; with CUFRAMES_TEST_EXPECT_GPU=1 a missing GPU or torch fails them instead.
"""

from __future__ import annotations

import base64
import concurrent.futures
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "service"))
sys.path.insert(0, str(HERE))

import cuframes  # noqa: E402
import media  # noqa: E402
import mini_rtsp  # noqa: E402
import pattern  # noqa: E402
import svc  # noqa: E402

CLIPS = ["h264-1280x720", "hevc-2688x1520", "hevc10-1280x720"]
STRICT = cuframes.SubscriberMode.STRICT_ORDER
# The service publishes the frames of its 0.5 s probe in a burst: a ring larger than the burst
# that waits for its STRICT_ORDER subscriber (as tests/service/test_service_rtsp.py does).
VERIFIED = {"policy": "strict_wait", "slots": 8, "wait_timeout": "5s"}
EXPECT_GPU = os.environ.get("CUFRAMES_TEST_EXPECT_GPU") == "1"


# ---- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The clips of tests/service/media.py: from CUFRAMES_TEST_MEDIA_DIR (made with the ffmpeg
    CLI where it is missing and the CLI exists), else made in a temporary directory."""
    d = os.environ.get("CUFRAMES_TEST_MEDIA_DIR")
    out_dir = Path(d) if d else tmp_path_factory.mktemp("media")
    paths = {}
    for name in CLIPS:
        c = media.CLIPS[name]
        p = out_dir / c.filename
        if not p.exists():
            if shutil.which("ffmpeg") is None:
                pytest.fail(f"{p} is missing and there is no ffmpeg CLI to make it: make it "
                            f"with `python3 tests/service/media.py {out_dir}` and carry it")
            media.make(c, out_dir)
        paths[name] = p
    return paths


@pytest.fixture
def rtsp(clips: dict[str, Path]) -> Iterator[Callable[..., mini_rtsp.MiniRtspServer]]:
    """make(mounts={name: clip name}) -> a started MiniRtspServer; all stopped afterwards, with
    every connection closed."""
    servers: list[mini_rtsp.MiniRtspServer] = []

    def make(mounts: dict[str, str]) -> mini_rtsp.MiniRtspServer:
        s = mini_rtsp.MiniRtspServer({m: clips[c] for m, c in mounts.items()})
        servers.append(s)
        s.start()
        return s

    yield make
    for s in servers:
        s.stop()
        assert s.sessions() == 0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[..., svc.Service]]:
    """start(cameras, defaults=...) -> a cuframes-service on tmp_path/svc.yaml (host memory
    unless the defaults say otherwise); stopped after the test, an unexpected exit fails it."""
    started: list[svc.Service] = []
    run = str(tmp_path / "run")

    def start(cameras: dict[str, dict[str, Any]], **kw: Any) -> svc.Service:
        cfg = svc.write_config(tmp_path / "svc.yaml", cameras, run, **kw)
        s = svc.Service(cfg, run, tmp_path)
        started.append(s)
        return s

    if not os.access(svc.SERVICE_BIN, os.X_OK):
        pytest.fail(f"{svc.SERVICE_BIN} is missing: build it, or set CUFRAMES_SERVICE_BIN")
    yield start
    problems = [p for p in (s.cleanup() for s in started) if p]
    if problems:
        pytest.fail("\n".join(problems))


def _gpu_here() -> bool:
    """A GPU machine: CUFRAMES_TEST_EXPECT_GPU=1 says so (tests/gpu/run.sh), else /dev/nvidia*."""
    return EXPECT_GPU or svc.gpu_present()


def _host_decoder() -> str:
    """For a host ring: auto (software) without a GPU, software on a GPU machine (where auto
    would pick NVDEC, whose frames a host ring refuses: docs/configuration.md)."""
    return "software" if _gpu_here() else "auto"


def _torch_cuda() -> Any:
    """torch, when this machine has a GPU for it; skips elsewhere, fails where
    CUFRAMES_TEST_EXPECT_GPU=1 says there must be one."""
    def missing(why: str) -> None:
        if EXPECT_GPU:
            pytest.fail(f"CUFRAMES_TEST_EXPECT_GPU=1 but {why}")
        pytest.skip(why)

    if not _gpu_here():
        missing("no GPU here (/dev/nvidia*)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch
    except ImportError:
        missing("torch is not installed")
    if not torch.cuda.is_available():
        missing("torch.cuda.is_available() is False")
    return torch


# ---- a small RTSP client ---------------------------------------------------------------------

class Client:
    """RTSP over TCP with interleaved RTP, enough to check the server: requests, and the RTP
    packets of channel 0 (RTCP and replies in between are kept apart)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        rest = url.split("://", 1)[1]
        host, port = rest.split("/", 1)[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""
        self.cseq = 0
        self.session: Optional[str] = None
        self.replies: list[tuple[int, dict[str, str], bytes]] = []

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _read_reply(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n")
        lines = self.buf[:end].decode().split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < end + 4 + n:
            self._fill()
        body = self.buf[end + 4:end + 4 + n]
        self.buf = self.buf[end + 4 + n:]
        return int(lines[0].split()[1]), headers, body

    def send(self, method: str, url: str, headers: Optional[dict[str, str]] = None) -> int:
        self.cseq += 1
        h = {"CSeq": str(self.cseq), **(headers or {})}
        if self.session:
            h["Session"] = self.session
        self.sock.sendall((f"{method} {url} RTSP/1.0\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode())
        return self.cseq

    def request(self, method: str, url: str,
                headers: Optional[dict[str, str]] = None) -> tuple[int, dict[str, str], bytes]:
        """A request before PLAY: the reply is the next thing on the connection."""
        cseq = self.send(method, url, headers)
        code, h, body = self._read_reply()
        assert h.get("cseq") == str(cseq), h
        return code, h, body

    def rtp(self) -> tuple[int, bytes]:
        """The next interleaved packet (channel, data); replies met on the way are kept in
        self.replies."""
        while True:
            while not self.buf:
                self._fill()
            if self.buf[0] != 0x24:
                self.replies.append(self._read_reply())
                continue
            while len(self.buf) < 4:
                self._fill()
            n = struct.unpack_from(">H", self.buf, 2)[0]
            while len(self.buf) < 4 + n:
                self._fill()
            ch, data = self.buf[1], self.buf[4:4 + n]
            self.buf = self.buf[4 + n:]
            return ch, data

    def play(self) -> tuple[int, int]:
        """DESCRIBE, SETUP, PLAY; returns RTP-Info's (seq, rtptime)."""
        code, h, sdp = self.request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        assert code == 200 and h["content-type"] == "application/sdp", (code, h)
        self.sdp = sdp.decode()
        control = next(ln.split(":", 1)[1] for ln in self.sdp.splitlines()[::-1]
                       if ln.startswith("a=control:"))
        code, h, _ = self.request("SETUP", h["content-base"] + control,
                                  {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        assert code == 200, (code, h)
        assert "interleaved=0-1" in h["transport"], h
        self.session = h["session"].split(";")[0]
        code, h, _ = self.request("PLAY", self.url, {"Range": "npt=0.000-"})
        assert code == 200, (code, h)
        info = dict(kv.split("=", 1) for kv in h["rtp-info"].split(";")[1:])
        return int(info["seq"]), int(info["rtptime"])


def depacketize(codec: str, packets: list[bytes]) -> list[bytes]:
    """The NAL units of one access unit's RTP payloads (single NAL units and FU-A / FU 49)."""
    nals: list[bytes] = []
    frag: Optional[bytearray] = None
    for p in packets:
        t = mini_rtsp.nal_type(codec, p)
        if (codec == "h264" and t == 28) or (codec == "hevc" and t == 49):
            hl = 1 if codec == "h264" else 2
            fu = p[hl]
            if fu & 0x80:
                assert frag is None, "FU start inside a FU"
                head = (bytes([(p[0] & 0xE0) | (fu & 0x1F)]) if codec == "h264"
                        else bytes([(p[0] & 0x81) | ((fu & 0x3F) << 1), p[1]]))
                frag = bytearray(head)
            assert frag is not None, "FU continuation without a start"
            frag += p[hl + 1:]
            if fu & 0x40:
                nals.append(bytes(frag))
                frag = None
        else:
            assert frag is None, "single NAL unit inside a FU"
            nals.append(p)
    assert frag is None, "access unit ends inside a FU"
    return nals


def read_access_units(c: Client, codec: str, count: int) -> list[tuple[int, int, list[bytes]]]:
    """count access units (first seq, timestamp, NAL units), checking sequence numbers, the
    header and one timestamp per access unit (its last packet has the marker)."""
    aus: list[tuple[int, int, list[bytes]]] = []
    packets: list[bytes] = []
    expect_seq = None
    ts = None
    first_seq = 0
    while len(aus) < count:
        ch, data = c.rtp()
        if ch != 0:
            continue
        b0, b1, seq, pts, _ssrc = struct.unpack_from(">BBHII", data)
        assert b0 == 0x80 and b1 & 0x7F == mini_rtsp.PAYLOAD_TYPE, data[:12].hex()
        assert expect_seq is None or seq == expect_seq, f"seq {seq}, expected {expect_seq}"
        expect_seq = (seq + 1) & 0xFFFF
        if not packets:
            ts, first_seq = pts, seq
        assert pts == ts, f"timestamp changed inside an access unit: {pts} != {ts}"
        packets.append(data[12:])
        if b1 & 0x80:
            aus.append((first_seq, pts, depacketize(codec, packets)))
            packets = []
    return aus


def expected_access_units(src: mini_rtsp.Source, count: int,
                          rtptime: int) -> Iterator[tuple[int, list[bytes]]]:
    """(timestamp, NAL units) the server should send for its first count pictures: the file's
    in decode order, looping, with the parameter sets before key frames that lack them."""
    with open(src.path, "rb") as f:
        for i in range(count):
            loop, k = divmod(i, len(src.samples))
            s = src.samples[k]
            nals = src.read_nals(f, s)
            if s.key and not mini_rtsp.has_sps(src.codec, nals):
                nals = src.params + nals
            ts = rtptime + (loop * src.duration + s.pts) * 90000 // src.timescale
            yield ts & 0xFFFFFFFF, nals


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


# ---- cuframes-service ------------------------------------------------------------------------

def _check_run(read: Callable[[], tuple[np.ndarray, np.ndarray, tuple[int, int, Any, int]]],
               count: int,
               clip: media.Clip) -> list[int]:
    """count frames read with read() -> (y, uv, (width, height, format, seq)): geometry,
    format, every picture; the barcode advances by one, back to 0 after the file's last
    picture."""
    codes: list[int] = []
    want_fmt = (cuframes.PixelFormat.P010 if clip.bit_depth > 8 else cuframes.PixelFormat.NV12)
    for _ in range(count):
        y, uv, (w, h, fmt, seq) = read()
        assert (w, h, fmt) == (clip.width, clip.height, want_fmt), (w, h, fmt)
        n = pattern.read_barcode(y)
        assert n is not None, f"seq {seq}: no barcode"
        if codes:
            assert n == (codes[-1] + 1) % clip.frames, f"seq {seq}: index {n} after {codes[-1]}"
        problem = pattern.check_picture(y, uv, n, noisy=True)
        assert problem is None, f"seq {seq} (index {n}): {problem}"
        codes.append(n)
    return codes


@pytest.mark.parametrize("name", CLIPS)
def test_service_host(rtsp: Callable[..., mini_rtsp.MiniRtspServer],
                      service: Callable[..., svc.Service], name: str) -> None:
    """cuframes-service pulls the stream (RTSP over TCP, host memory): streaming, the clip's
    codec and size, and every picture right through a loop of the file. Decoder auto (software
    without a GPU); on a GPU machine software, as docs/configuration.md asks of a host ring."""
    clip = media.CLIPS[name]
    srv = rtsp({"cam": name})
    decoder = _host_decoder()
    s = service({"cam": {**VERIFIED, "url": srv.url("cam"), "decoder": decoder}})
    s.wait_state("cam", "streaming", 30)
    run = s.runtime_dir
    with cuframes.subscribe("cam-cam", runtime_dir=run, mode=STRICT,
                            connect_timeout_ms=10000) as sub:
        def read() -> tuple[np.ndarray, np.ndarray, tuple[int, int, Any, int]]:
            with sub.next_frame(timeout_ms=5000) as f:
                y, uv = svc.planes(f)
                assert f.memory == "host"
                return y.copy(), uv.copy(), (f.width, f.height, f.format, f.seq)
        codes = _check_run(read, clip.frames + 10, clip)
        assert sub.gap_count == 0
    cam = s.camera("cam")
    assert cam is not None and cam["state"] == "streaming", cam
    assert (cam["codec"], cam["width"], cam["height"], cam["format"], cam["memory"]) == (
        clip.codec, clip.width, clip.height, clip.format, "host"), cam
    if decoder == "auto":
        svc.check_decoder(cam)
    else:
        assert cam["decoder"] == decoder, cam
    assert cam["decode_errors"] == 0 and cam["reconnects"] == 0, cam
    assert cam["url"] == srv.url("cam"), cam
    print(f"{name}: {len(codes)} frames checked, decoder {cam['decoder']}, {cam['fps']:.1f} fps")


def test_service_server_restart(rtsp: Callable[..., mini_rtsp.MiniRtspServer],
                                service: Callable[..., svc.Service]) -> None:
    """The server is killed: the camera leaves streaming; started again on its port: the camera
    streams again by itself and the same subscriber reads verified frames again."""
    clip = media.CLIPS["h264-1280x720"]
    srv = rtsp({"cam": clip.name})
    s = service({"cam": {**VERIFIED, "url": srv.url("cam"), "decoder": _host_decoder(),
                         "stall_timeout": "2s",
                         "open_timeout": "2s", "reconnect": {"initial": "250ms", "max": "1s"}}})
    s.wait_state("cam", "streaming", 30)
    with cuframes.subscribe("cam-cam", runtime_dir=s.runtime_dir, mode=STRICT,
                            connect_timeout_ms=10000) as sub:
        def read() -> tuple[np.ndarray, np.ndarray, tuple[int, int, Any, int]]:
            with sub.next_frame(timeout_ms=10000) as f:
                y, uv = svc.planes(f)
                return y.copy(), uv.copy(), (f.width, f.height, f.format, f.seq)
        _check_run(read, 10, clip)
        srv.kill()
        s.wait_state("cam", {"stalled", "connecting", "error"}, 5)
        for _ in range(100):  # what the ring still holds from before
            try:
                with sub.next_frame(timeout_ms=500):
                    pass
            except cuframes.CuframesFrameTimeout:
                break
        srv.start()
        s.wait_camera("cam", lambda c: c["state"] == "streaming" and c["reconnects"] >= 1, 20,
                      "streaming again after the server came back")
        _check_run(read, 10, clip)
    print(f"states seen {s.states_seen['cam']}")


@pytest.mark.parametrize("name", CLIPS)
def test_service_nvdec_cuda(rtsp: Callable[..., mini_rtsp.MiniRtspServer],
                            service: Callable[..., svc.Service], name: str) -> None:
    """On a GPU machine: decoder auto with memory cuda picks NVDEC for the RTSP camera, and a
    torch subscriber on CUDA reads every picture right through two loops of the file (as
    tests/gpu/test_service_nvdec.py does for file cameras)."""
    torch = _torch_cuda()
    clip = media.CLIPS[name]
    srv = rtsp({"cam": name})
    s = service({"cam": {**VERIFIED, "url": srv.url("cam"), "decoder": "auto",
                         "memory": "cuda"}}, defaults={"memory": "cuda"})
    cam = s.wait_state("cam", "streaming", 30)
    assert (cam["decoder"], cam["memory"], cam["codec"]) == ("nvdec", "cuda", clip.codec), cam
    stream = torch.cuda.Stream()
    with cuframes.subscribe("cam-cam", runtime_dir=s.runtime_dir, mode=STRICT,
                            connect_timeout_ms=10000, consumer_stream=stream) as sub:
        def read() -> tuple[np.ndarray, np.ndarray, tuple[int, int, Any, int]]:
            with sub.next_frame(timeout_ms=5000) as f:
                assert f.memory == "cuda" and f.device == 0
                with torch.cuda.stream(stream):
                    y = torch.from_dlpack(f.y).cpu().numpy()
                    uv = torch.from_dlpack(f.uv).cpu().numpy()
                return y, uv, (f.width, f.height, f.format, f.seq)
        codes = _check_run(read, 2 * clip.frames, clip)
        assert sub.gap_count == 0
    now = s.camera("cam")
    assert now is not None
    cam = now
    assert cam["decoder"] == "nvdec" and cam["decode_errors"] == 0, cam
    assert (cam["width"], cam["height"], cam["format"]) == (clip.width, clip.height,
                                                            clip.format), cam
    print(f"{name}: {len(codes)} NVDEC frames over RTSP checked, {cam['fps']:.1f} fps")
