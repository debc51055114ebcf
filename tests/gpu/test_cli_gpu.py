"""The `cuframes` CLI on CUDA rings, on the GPU machine (run by tests/gpu/run.sh; the CLI suite
in tests/cli covers host rings on CI). `list --json` and `stat` describe a cuda ring,
`snapshot` copies a device frame to the host and writes a PNG whose pixels are the frame's
(decoded here with zlib: this machine has no FFmpeg tools), and `sub` receives frames.

Needs CUFRAMES_CLI (the built `cuframes`, default build/cli/cuframes).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cli"))

import clitest  # noqa: E402
import cuframes  # noqa: E402

PF = cuframes.PixelFormat


def _need_gpu() -> None:
    try:
        import torch
        ok = torch.cuda.is_available()
    except ImportError:
        ok = False
    if not ok:
        if os.environ.get("CUFRAMES_TEST_EXPECT_GPU") == "1":
            pytest.fail("CUFRAMES_TEST_EXPECT_GPU=1 but no CUDA device")
        pytest.skip("no CUDA device (the GPU machine runs this)")


def read_png_rgb(path: Path) -> np.ndarray:
    """An 8-bit RGB, non-interlaced PNG (what the CLI writes) as an (h, w, 3) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert ihdr is not None
    w, h, depth, color, _, _, interlace = ihdr
    assert (depth, color, interlace) == (8, 2, 0), ihdr
    raw = zlib.decompress(idat)
    stride = w * 3
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):  # the PNG filters (RFC 2083 6.3), byte by byte
            a = cur[x - 3] if x >= 3 else 0
            b = prev[x]
            c = prev[x - 3] if x >= 3 else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 0xFF
        out[y] = cur
        prev = cur
    return out.reshape(h, w, 3)


def test_cli_on_a_cuda_ring(tmp_path: Path) -> None:
    _need_gpu()
    run = str(tmp_path / "run")
    os.makedirs(run)
    key = "gpu-cli"
    w, h = 640, 360  # small: the PNG is decoded in Python
    pub = cuframes.publish(key, w, h, PF.NV12, memory="cuda", runtime_dir=run)
    frame = clitest.make_frame(PF.NV12, w, h)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            pub.publish(frame)
            stop.wait(0.02)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        r = clitest.run_cli("list", "--runtime-dir", run, "--json")
        assert r.returncode == 0, r.stderr
        (ring,) = json.loads(r.stdout)
        assert (ring["key"], ring["memory"], ring["device"]) == (key, "cuda", 0), ring
        assert ring["pitch_y"] % 256 == 0, ring

        r = clitest.run_cli("stat", key, "--runtime-dir", run)
        assert r.returncode == 0 and "cuda" in r.stdout, (r.stdout, r.stderr)

        out = tmp_path / "snap.png"
        r = clitest.run_cli("snapshot", key, str(out), "--runtime-dir", run)
        assert r.returncode == 0, r.stderr
        rgb = read_png_rgb(out).astype(np.float64)
        assert rgb.shape == (h, w, 3)
        want = clitest.expected_rgb(PF.NV12, w, h)
        inside = clitest.interior(h, w, 4)
        diff = np.abs(rgb - want)[inside]
        assert diff.max() <= 3, f"max difference {diff.max()}"

        r = clitest.run_cli("sub", key, "--runtime-dir", run, "--seconds", "1.5", "--name",
                            "gpu-sub")
        assert r.returncode == 0, r.stderr
        assert "(NV12 640x360, cuda:0)" in r.stdout, r.stdout
        print(f"CLI on a cuda ring: list/stat ok, snapshot {out.stat().st_size} bytes matches "
              f"the frame (max diff {diff.max():.0f}), sub: {r.stdout.splitlines()[-1]}")
    finally:
        stop.set()
        t.join()
        pub.close()
