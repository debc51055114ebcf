"""Snapshots (JPEG bytes from MQTT or HTTP) checked against pattern.py's picture: decoded with
Pillow (OpenCV where there is none, as on the GPU machine), turned back into limited-range luma,
resampled to the clip's size; then the frame-index barcode must read and frame n's box must be
where it is drawn. Used by tests/service and tests/gpu."""

from __future__ import annotations

import io
from typing import Any

import pattern


def decode_jpeg(data: bytes) -> Any:
    """The picture as an H x W x 3 uint8 RGB array; AssertionError when it is not a JPEG.
    Pillow (CI: install-deps.sh); where there is none, OpenCV (the GPU machine has it)."""
    import numpy as np
    assert data[:3] == b"\xff\xd8\xff", f"not a JPEG: starts {data[:16]!r}"
    try:
        from PIL import Image
    except ImportError:
        import cv2
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert bgr is not None, "OpenCV cannot decode the JPEG"
        return bgr[..., ::-1]
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG", im.format
        return np.asarray(im.convert("RGB"))


def check_snapshot(data: bytes, src_width: int, src_height: int, max_width: int,
                   frames: int) -> int:
    """Checks a snapshot of a clip of pattern.py frames (src_width x src_height, `frames` long,
    looping) scaled to at most max_width: its size keeps the aspect, its barcode reads a frame
    index of the clip, and that frame's box is bright where it is drawn. Returns the index."""
    import numpy as np
    rgb = decode_jpeg(data)
    h, w = rgb.shape[:2]
    want_w = min(src_width, max_width) if max_width else src_width
    want_h = round(src_height * want_w / src_width)
    assert (w, h) == (want_w, want_h), f"snapshot is {w}x{h}, expected {want_w}x{want_h}"
    # Full-range RGB back to limited-range luma (BT.601 weights; the pattern's grey barcode and
    # box read the same in any matrix).
    f = rgb.astype(np.float64)
    y = 16 + (0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]) * 219 / 255
    rows = (np.arange(src_height) * h // src_height).clip(0, h - 1)
    cols = (np.arange(src_width) * w // src_width).clip(0, w - 1)
    y = y[rows][:, cols].clip(0, 255).astype(np.uint8)
    n = pattern.read_barcode(y)
    assert n is not None, (f"the barcode of the {w}x{h} snapshot does not read: row 8 of the "
                           f"blocks {[int(y[8, i * 16 + 8]) for i in range(32)]}")
    assert n < frames, f"barcode reads {n}: not a frame of the {frames}-frame clip"
    bx, by = pattern.box_pos(n, src_width, src_height)
    box = float(y[by + 8:by + pattern.BOX - 8, bx + 8:bx + pattern.BOX - 8].mean())
    assert box > 180, f"frame {n}'s box at ({bx},{by}) has luma {box:.0f}, expected ~235"
    return n
