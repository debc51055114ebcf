"""What goes into a batch: a camera's newest frame (feed cuframes: the held frame, read in the
ring by cuframes.preprocess) or its picture made on the host the way Frigate does it (feed
host-opencv), and the geometry that maps boxes back into the frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import cuframes

from .base import torch

PAD_VALUE = 114  # the letterbox border, as cuframes.preprocess's default


@dataclass
class Item:
    """A camera's newest frame waiting for the next batch (or, fed the Frigate way, its picture
    already on the host)."""
    cam: str
    seq: int
    publish_ns: int  # CLOCK_MONOTONIC, like time.monotonic_ns()
    frame: Any = None  # the held CuframesFrame (feed cuframes)
    image: Any = None  # (H, W, 3) uint8 RGB, letterboxed (feed host-opencv)
    transform: tuple[float, float, float, float] = (1.0, 1.0, 0.0, 0.0)
    frame_size: tuple[int, int] = (0, 0)  # (width, height)

    def drop(self) -> None:
        if self.frame is not None:
            self.frame.release()
            self.frame = None


def fit(w: int, h: int, size: tuple[int, int], resize: str) -> tuple[float, float, int, int,
                                                                     int, int]:
    """Letterbox/stretch geometry as cuframes.preprocess computes it (docs/python.md): scale_x,
    scale_y, pad_x, pad_y, content width and height, for a w x h frame into size (H, W)."""
    oh, ow = size
    if resize == "stretch":
        return ow / w, oh / h, 0, 0, ow, oh
    s = min(ow / w, oh / h)
    cw, ch = round(w * s), round(h * s)
    return cw / w, ch / h, (ow - cw) // 2, (oh - ch) // 2, cw, ch


def host_opencv_image(frame: Any, stream: Any, size: tuple[int, int], resize: str,
                      pad: int) -> tuple[Any, tuple[float, float, float, float]]:
    """Frigate's way: the NV12 frame copied to host memory, OpenCV cvtColor and resize, a
    letterbox canvas on the host. Returns the (H, W, 3) RGB image and its transform."""
    import cv2
    if frame.format != cuframes.PixelFormat.NV12:
        raise RuntimeError(f"--feed host-opencv reads NV12 frames only, not {frame.format.name}")
    if frame.memory == "cuda":
        with torch.cuda.stream(stream):
            nv12 = torch.from_dlpack(frame.yuv).cpu().numpy()  # download (waits for it)
    else:
        nv12 = np.ascontiguousarray(np.from_dlpack(frame.yuv))
    rgb = cv2.cvtColor(nv12, cv2.COLOR_YUV2RGB_NV12)
    sx, sy, px, py, cw, ch = fit(frame.width, frame.height, size, resize)
    small = cv2.resize(rgb, (cw, ch), interpolation=cv2.INTER_LINEAR)
    if (cw, ch) == (size[1], size[0]):
        return small, (sx, sy, px, py)
    canvas = np.full((size[0], size[1], 3), pad, np.uint8)
    canvas[py:py + ch, px:px + cw] = small
    return canvas, (sx, sy, float(px), float(py))


def to_frame(boxes: Any, transform: tuple[float, float, float, float],
             frame_size: tuple[int, int]) -> Any:
    """CuframesBatch.to_frame for the host-opencv feed (the same formula)."""
    sx, sy, px, py = transform
    out = boxes * 1.0
    out[:, 0::2] = ((out[:, 0::2] - px) / sx).clip(0, frame_size[0])
    out[:, 1::2] = ((out[:, 1::2] - py) / sy).clip(0, frame_size[1])
    return out
