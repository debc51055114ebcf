"""Test helpers: deterministic frame content, and peer processes driven over pipes."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

import cuframes

PEER = str(Path(__file__).resolve().parent / "peer.py")
PF = cuframes.PixelFormat


def frame_rows(fmt: int, height: int) -> int:
    return height if fmt == PF.GRAY8 else height * 3 // 2


def make_frame(fmt: int, width: int, height: int, tag: int) -> np.ndarray:
    """The whole frame (Y rows then UV rows) for tag: every sample depends on its row, column
    and the tag, so a shifted row, a wrong pitch or another frame's data all show."""
    rows = frame_rows(fmt, height)
    r = np.arange(rows, dtype=np.int64)[:, None]
    c = np.arange(width, dtype=np.int64)[None, :]
    t = tag % 100003
    if fmt == PF.P010:
        return (((r * 7 + c * 13 + t * 31) % 1021) << 6).astype(np.uint16)
    return ((r * 7 + c * 13 + t * 31) % 251).astype(np.uint8)


def check_frame(frame: Any, tag: int) -> None:
    """Asserts that a CuframesFrame (host memory) holds make_frame(..., tag), read through DLPack
    with the pitch-correct strides."""
    fmt, w, h = frame.format, frame.width, frame.height
    want = make_frame(fmt, w, h, tag)
    bps = 2 if fmt == PF.P010 else 1
    y = np.from_dlpack(frame.y)
    assert y.shape == (h, w)
    assert y.strides == (frame.pitch_y, bps)
    assert y.dtype == (np.uint16 if fmt == PF.P010 else np.uint8)
    np.testing.assert_array_equal(y, want[:h])
    if fmt != PF.GRAY8:
        uv = np.from_dlpack(frame.uv)
        assert uv.shape == (h // 2, w)
        assert uv.strides == (frame.pitch_uv, bps)
        np.testing.assert_array_equal(uv, want[h:])


def wait_until(pred: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Polls pred (e.g. a counter in shared memory) until it holds. For state that has no event
    to wait on; raises after timeout."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


class Peer:
    """A peer.py process: commands on its stdin, one reply line per command on its stdout."""

    def __init__(self, *args: str, env: Optional[dict[str, str]] = None) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, PEER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None, text=True, bufsize=1, env=env or dict(os.environ))
        assert self.proc.stdout is not None
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def readline(self, timeout: float = 20.0) -> str:
        """The next line the peer printed; fails if none comes within timeout."""
        assert self.proc.stdout is not None
        if not self._sel.select(timeout):
            raise AssertionError(f"peer {self.args} printed nothing for {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"peer {self.args} exited with {self.proc.wait()}")
        return line.rstrip("\n")

    def expect(self, prefix: str, timeout: float = 20.0) -> list[str]:
        line = self.readline(timeout)
        assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}"
        return line.split()[1:]

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def call(self, line: str, reply: str = "OK") -> list[str]:
        self.send(line)
        return self.expect(reply)

    def json(self, line: str) -> Any:
        return json.loads(" ".join(self.call(line, "JSON")))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # EOF: the peer exits
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None and not f.closed:
                try:
                    f.close()
                except BrokenPipeError:
                    pass
        self._sel.close()


def pybind_params(doc: str) -> list[tuple[str, Optional[str], bool]]:
    """Parameters of a pybind11 signature line ("f(a: int, *, b: str = 'x') -> None") as
    (name, default text or None, keyword-only) tuples, self excluded."""
    line = doc.strip().splitlines()[0]
    start = line.index("(")
    depth, i = 0, start
    for i in range(start, len(line)):
        if line[i] in "([{":
            depth += 1
        elif line[i] in ")]}":
            depth -= 1
            if depth == 0:
                break
    inner = line[start + 1:i]
    parts, cur, depth, quote = [], "", 0, ""
    for ch in inner:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    out: list[tuple[str, Optional[str], bool]] = []
    kw_only = False
    for p in parts:
        if p == "*":
            kw_only = True
            continue
        name = p.split(":")[0].split("=")[0].strip()
        if name == "self":
            continue
        default = p.split(" = ", 1)[1].strip() if " = " in p else None
        out.append((name, default, kw_only))
    return out
