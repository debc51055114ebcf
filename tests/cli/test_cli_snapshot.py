"""`cuframes snapshot` against real publishers (host memory, no GPU): JPEG and PNG of NV12, P010
and GRAY8 frames checked pixel by pixel, the frame's colour description, waiting for a frame, an
existing file replaced, a timeout, a file that cannot be written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import cuframes

import clitest
from clitest import GRAY8, NV12, P010, PF, run_cli


@pytest.mark.parametrize("fmt, width, height, pitch, name", [
    (NV12, 640, 480, 0, "frame.png"),
    (NV12, 640, 480, 0, "frame.jpg"),
    (NV12, 1366, 768, 0, "frame.png"),    # odd geometry: pitch 1408, BT.709
    (NV12, 1366, 768, 0, "frame.JPEG"),
    (NV12, 1920, 1080, 2048, "frame.png"),  # an NVDEC-like pitch
    (P010, 1366, 768, 0, "frame.png"),
    (P010, 1366, 768, 0, "frame.jpg"),
    (GRAY8, 1365, 767, 0, "frame.png"),   # odd width and height
    (GRAY8, 1365, 767, 0, "frame.jpeg"),
], ids=lambda v: v.name if isinstance(v, PF) else str(v))
def test_snapshot(fmt: PF, width: int, height: int, pitch: int, name: str, runtime_dir: str,
                  key: str, publish: Callable[..., Any], tmp_path: Path) -> None:
    pub = publish(key, width, height, fmt, pitch=pitch)
    assert pub.pitch_y > width * (2 if fmt == P010 else 1) or pitch == 0
    seq = pub.publish(clitest.make_frame(fmt, width, height))
    out = tmp_path / name
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    size = out.stat().st_size
    jpeg = not name.endswith(".png")
    assert r.stdout == (f"wrote {out}: {size} bytes ({'JPEG' if jpeg else 'PNG'}, "
                        f"{width}x{height} {fmt.name}, frame seq {seq} of '{key}')\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left

    info = clitest.probe(out)
    assert info == {"codec_name": "mjpeg" if jpeg else "png", "width": width, "height": height}
    rgb = clitest.decode_rgb(out, width, height).astype(np.float64)
    want = clitest.expected_rgb(fmt, width, height)
    # Away from the quadrant borders (chroma upsampling, JPEG blocks), every pixel matches.
    inside = clitest.interior(height, width, 16 if jpeg else 4)
    diff = np.abs(rgb - want)[inside]
    assert diff.max() <= (10 if jpeg else 3), (
        f"max difference {diff.max()}; want {np.unique(want.reshape(-1, 3), axis=0)}, got "
        f"{np.unique(rgb[inside].reshape(-1, 3), axis=0)[:8]}")
    # The snapshot's subscriber has detached.
    assert cuframes.observe(key, runtime_dir=runtime_dir)["subscribers"] == []


@pytest.mark.parametrize("matrix, rng", [
    (cuframes.ColorMatrix.BT601, cuframes.ColorRange.FULL),     # an MJPEG camera's frames
    (cuframes.ColorMatrix.BT709, cuframes.ColorRange.FULL),
    (cuframes.ColorMatrix.BT709, cuframes.ColorRange.LIMITED),  # SD size, said BT.709
], ids=lambda v: v.name)
def test_snapshot_follows_the_colour_description(matrix: cuframes.ColorMatrix,
                                                 rng: cuframes.ColorRange, runtime_dir: str,
                                                 key: str, publish: Callable[..., Any],
                                                 tmp_path: Path) -> None:
    """The frame's colour description, where it has one, decides the conversion (not the size
    guess): a flat colour comes out as its matrix and range say."""
    width, height = 320, 240  # SD: the guess would be limited-range BT.601
    yuv = np.array([150, 100, 170])
    pub = publish(key, width, height)
    frame = np.empty((height * 3 // 2, width), np.uint8)
    frame[:height] = yuv[0]
    frame[height:, 0::2] = yuv[1]
    frame[height:, 1::2] = yuv[2]
    pub.publish(frame, color_matrix=matrix, color_range=rng)
    out = tmp_path / "colour.png"
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    got = clitest.decode_rgb(out, width, height).reshape(-1, 3).astype(np.float64)
    want = clitest.yuv_to_rgb(yuv.astype(np.float64), matrix == cuframes.ColorMatrix.BT709,
                              rng == cuframes.ColorRange.FULL)
    assert np.abs(got - want).max() <= 2, (np.unique(got, axis=0), want)


def test_snapshot_waits_for_a_frame(runtime_dir: str, key: str, publish: Callable[..., Any],
                                    cli_proc: Callable[..., clitest.LineProc],
                                    tmp_path: Path) -> None:
    pub = publish(key, 320, 240)
    out = tmp_path / "first.png"
    snap = cli_proc("snapshot", key, str(out), "--runtime-dir", runtime_dir, "--timeout", "20000")
    clitest.wait_for(lambda: cuframes.observe(key, runtime_dir=runtime_dir)["subscribers"], 10,
                     "the snapshot to subscribe")
    assert not out.exists()
    seq = pub.publish(clitest.make_frame(NV12, 320, 240))
    snap.expect(rf"^wrote {re.escape(str(out))}: \d+ bytes \(PNG, 320x240 NV12, frame seq {seq} ")
    assert snap.wait() == 0
    assert clitest.probe(out)["width"] == 320


def test_snapshot_replaces_file(runtime_dir: str, key: str, publish: Callable[..., Any],
                                tmp_path: Path) -> None:
    pub = publish(key, 320, 240)
    pub.publish(clitest.make_frame(NV12, 320, 240))
    out = tmp_path / "old.png"
    out.write_bytes(b"not an image")
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    assert clitest.probe(out) == {"codec_name": "png", "width": 320, "height": 240}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]


def test_snapshot_timeout(runtime_dir: str, key: str, publish: Callable[..., Any],
                          tmp_path: Path) -> None:
    publish(key, 320, 240)
    out = tmp_path / "never.jpg"
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir, "--timeout", "200")
    assert r.returncode == 1
    assert f"cuframes snapshot: FRAME_TIMEOUT: no frame from '{key}' within 200 ms" in r.stderr
    assert not out.exists()


def test_snapshot_unwritable(runtime_dir: str, key: str, publish: Callable[..., Any],
                             tmp_path: Path) -> None:
    pub = publish(key, 320, 240)
    pub.publish(clitest.make_frame(NV12, 320, 240))
    out = tmp_path / "no-such-dir" / "x.png"
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir)
    assert r.returncode == 1
    assert f"cuframes snapshot: cannot write {out}: No such file or directory" in r.stderr
