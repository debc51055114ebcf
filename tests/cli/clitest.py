"""Helpers of the CLI suite: the `cuframes` binary, processes read line by line with deadlines,
frames with known coloured regions and the RGB they must decode to, and image decoding with
FFmpeg's tools."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import cuframes
from deadline import wait_for  # noqa: F401  (tests/common; clitest.wait_for)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLI = Path(os.environ.get("CUFRAMES_CLI", ROOT / "build" / "cli" / "cuframes"))
SERVICE_BIN = Path(os.environ.get("CUFRAMES_SERVICE_BIN",
                                  ROOT / "build" / "service" / "cuframes-service"))
PF = cuframes.PixelFormat
NV12, P010, GRAY8 = PF.NV12, PF.P010, PF.GRAY8


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Runs `cuframes ARGS` to completion (within timeout) and returns its output."""
    return subprocess.run([str(CLI), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def subscriber_entry(key: str, runtime_dir: str, name: str) -> Optional[dict[str, Any]]:
    """The subscriber `name` in the key's table (read through an observer), or None."""
    for s in cuframes.observe(key, runtime_dir=runtime_dir)["subscribers"]:
        if s["consumer_name"] == name:
            return s
    return None


class LineProc:
    """A process whose stdout is read line by line, each read with a deadline."""

    def __init__(self, argv: list[str], *, pty: bool = False) -> None:
        self.argv = argv
        self._master = -1
        if pty:  # stdout is a terminal (stat --watch clears the screen only there)
            self._master, slave = os.openpty()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                                         stderr=subprocess.PIPE)
            os.close(slave)
            self._fd = self._master
        else:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
            assert self.proc.stdout is not None
            self._fd = self.proc.stdout.fileno()
        self._buf = b""
        self._eof = False
        self.seen: list[str] = []  # every line read so far

    def _fill(self, deadline: float) -> bool:
        """Reads what is there (waiting until deadline); False at end of output."""
        if self._eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{self.argv}: nothing printed in time; so far:\n"
                                 + "\n".join(self.seen + [self._buf.decode(errors='replace')]))
        r, _, _ = select.select([self._fd], [], [], left)
        if not r:
            return self._fill(deadline)
        try:
            data = os.read(self._fd, 65536)
        except OSError:  # a pty reads EIO once the child has gone
            data = b""
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def read_text(self, until: str, timeout: float = 10.0) -> str:
        """Raw output up to and including the next `until` (for terminal output)."""
        deadline = time.monotonic() + timeout
        while until.encode() not in self._buf:
            if not self._fill(deadline):
                raise AssertionError(f"{self.argv} ended ({self.proc.wait(5)}) before "
                                     f"{until!r}: {self._buf!r} {self.stderr_text()}")
        i = self._buf.index(until.encode()) + len(until)
        out, self._buf = self._buf[:i], self._buf[i:]
        return out.decode(errors="replace")

    def readline(self, timeout: float = 10.0) -> Optional[str]:
        """The next line, None at the end of the output."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            if not self._fill(deadline):
                if not self._buf:
                    return None
                break
        line, _, self._buf = self._buf.partition(b"\n")
        text = line.decode(errors="replace").rstrip("\r")
        self.seen.append(text)
        return text

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Reads lines until one matches the regex; fails at the deadline or end of output."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            line = self.readline(max(deadline - time.monotonic(), 0.001))
            if line is None:
                raise AssertionError(f"{self.argv} ended ({self.proc.wait(5)}) without "
                                     f"{pattern!r}; output:\n" + "\n".join(self.seen)
                                     + "\n" + self.stderr_text())
            m = rx.search(line)
            if m:
                return m

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def rest(self, timeout: float = 10.0) -> list[str]:
        """The remaining lines, up to the end of the output."""
        deadline = time.monotonic() + timeout
        lines = []
        while (line := self.readline(max(deadline - time.monotonic(), 0.001))) is not None:
            lines.append(line)
        return lines

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def stderr_text(self) -> str:
        """Its stderr, once it has exited."""
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        if self._master >= 0:
            os.close(self._master)
            self._master = -1


def process_stopped(pid: int) -> bool:
    """True once the process is stopped by SIGSTOP (state T in /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")


# ---- frames with known colours ----------------------------------------------------------

# The four quadrants (top-left, top-right, bottom-left, bottom-right) of the test frames, as
# 8-bit limited-range Y, U, V, and as GRAY8 levels.
QUADRANT_YUV = np.array([(110, 100, 180), (150, 60, 90), (60, 200, 120), (200, 128, 128)],
                        dtype=np.int64)
QUADRANT_GRAY = np.array([20, 90, 160, 235], dtype=np.int64)


def quadrants(height: int, width: int, step: int = 1) -> np.ndarray:
    """Quadrant index (0..3) of the pixels (every step-th row and column)."""
    y = np.arange(0, height, step)[:, None]
    x = np.arange(0, width, step)[None, :]
    return (y >= height // 2) * 2 + (x >= width // 2)


def make_frame(fmt: int, width: int, height: int) -> np.ndarray:
    """The whole frame as cuframes.publish takes it: Y rows then interleaved UV rows (NV12 as
    uint8, P010 as uint16 with the value in the high bits), or the GRAY8 plane."""
    if fmt == PF.GRAY8:
        return QUADRANT_GRAY[quadrants(height, width)].astype(np.uint8)
    y = QUADRANT_YUV[quadrants(height, width), 0]
    qc = quadrants(height, width, 2)  # one chroma sample per 2x2 pixels
    uv = np.empty((height // 2, width), np.int64)
    uv[:, 0::2] = QUADRANT_YUV[qc, 1]
    uv[:, 1::2] = QUADRANT_YUV[qc, 2]
    whole = np.vstack([y, uv])
    if fmt == PF.P010:
        return ((whole << 2) << 6).astype(np.uint16)  # 10-bit value in the high bits
    return whole.astype(np.uint8)


def yuv_to_rgb(yuv: np.ndarray, hd: bool, full: bool = False) -> np.ndarray:
    """Limited-range (or full) Y'CbCr (8-bit) to full-range R'G'B', BT.709 (hd) or BT.601."""
    kr, kb = (0.2126, 0.0722) if hd else (0.299, 0.114)
    y = yuv[..., 0] if full else (yuv[..., 0] - 16) * 255 / 219
    pb = (yuv[..., 1] - 128) * (1 if full else 255 / 224)
    pr = (yuv[..., 2] - 128) * (1 if full else 255 / 224)
    r = y + 2 * (1 - kr) * pr
    b = y + 2 * (1 - kb) * pb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255)


def expected_rgb(fmt: int, width: int, height: int) -> np.ndarray:
    """What the CLI's image must show: the HD rule (width >= 1280 or height > 576) picks
    BT.709, GRAY8 is full-range luma."""
    q = quadrants(height, width)
    if fmt == PF.GRAY8:
        g = QUADRANT_GRAY[q].astype(np.float64)
        return np.stack([g, g, g], axis=-1)
    hd = width >= 1280 or height > 576
    return yuv_to_rgb(QUADRANT_YUV, hd)[q]


def interior(height: int, width: int, margin: int) -> np.ndarray:
    """Pixels at least margin away from the quadrant borders (chroma and JPEG blocks blur
    those)."""
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]
    return (np.abs(y - height // 2) >= margin) & (np.abs(x - width // 2) >= margin)


# ---- images --------------------------------------------------------------------------------

def probe(path: Path) -> dict[str, Any]:
    """ffprobe's view of an image: codec_name, width, height."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,width,height", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    streams = json.loads(out)["streams"]
    assert len(streams) == 1, out
    return dict(streams[0])


def decode_rgb(path: Path, width: int, height: int) -> np.ndarray:
    """The image decoded by ffmpeg to RGB24, as (height, width, 3) uint8."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=60,
                         check=True).stdout
    assert len(raw) == width * height * 3, f"{len(raw)} bytes for {width}x{height}"
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def stop(proc: LineProc, sig: int = signal.SIGINT, timeout: float = 10.0) -> tuple[int, list[str]]:
    """Signals the process, reads the rest of its output, returns (exit code, lines)."""
    proc.signal(sig)
    lines = proc.rest(timeout)
    return proc.wait(timeout), lines
