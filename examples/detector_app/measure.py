"""The three measurements on a frame's luma (Y) plane: mean brightness, edges (the mean absolute
3x3 Laplacian) and motion (against the previous frame), with NumPy on host frames and PyTorch on
CUDA frames, both reading the frame in place."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .base import F, torch


def _scale(frame: Any) -> float:
    """8-bit luma for every format: P010 keeps its 10 bits in the top of 16."""
    return 1.0 / 256.0 if frame.bytes_per_sample == 2 else 1.0


def measure_numpy(frame: Any, prev: Optional[np.ndarray]) -> tuple[tuple[float, float, float],
                                                                    np.ndarray]:
    """Host frame: NumPy reads the Y plane in place (strides carry the pitch)."""
    y8 = np.from_dlpack(frame.y)  # (H, W) view into the ring slot, no copy
    y = y8.astype(np.float32)  # the copy we compute on (the slot is released right after)
    del y8
    if frame.bytes_per_sample == 2:
        y *= _scale(frame)
    luma = float(y.mean(dtype=np.float64))
    lap = (4.0 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
    edges = float(np.abs(lap).mean(dtype=np.float64))
    h4, w4 = y.shape[0] // 4, y.shape[1] // 4
    small = y[:h4 * 4, :w4 * 4].reshape(h4, 4, w4, 4).mean(axis=(1, 3), dtype=np.float32)
    motion = 0.0
    if prev is not None and prev.shape == small.shape:
        motion = float(np.abs(small - prev).mean(dtype=np.float64))
    return (luma, edges, motion), small


_LAPLACE: dict[Any, Any] = {}


def measure_torch(frame: Any, prev: Any) -> tuple[Any, Any]:
    """CUDA frame: torch reads the Y plane in place on the current (this camera's) stream and
    queues the work; nothing here waits for the GPU. Returns (values on the GPU, small)."""
    # torch.from_dlpack(frame.y) through torch's C import: (H, W) uint8/uint16 on the GPU,
    # strides (pitch, 1), ordered on torch's current stream
    y8 = frame.torch("y")
    if y8.dtype != torch.uint8:  # P010: uint16 has few kernels; int32 holds it
        y = y8.to(torch.int32).to(torch.float32) * _scale(frame)
    else:
        y = y8.to(torch.float32)
    del y8  # the frame's slot is no longer read after the kernel above
    k = _LAPLACE.get(y.device)
    if k is None:
        k = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]],
                         device=y.device).view(1, 1, 3, 3)
        _LAPLACE[y.device] = k
    img = y[None, None]
    luma = y.mean()
    edges = F.conv2d(img, k).abs().mean()
    small = F.avg_pool2d(img, 4)[0, 0]
    if prev is not None and prev.shape == small.shape:
        motion = (small - prev).abs().mean()
    else:
        motion = torch.zeros((), device=y.device)
    return torch.stack([luma, edges, motion]), small
