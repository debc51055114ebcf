"""An independent NumPy reference of cuframes.preprocess, written from docs/python.md ("Colour",
"Sampling", "Letterbox") and the standards (ITU-R BT.601/709/2020, ITU-T H.273 ranges), not
from the C code: whole planes are resampled by separable weight matrices in float64, converted
with the textbook YUV -> RGB equations, then clipped, normalised, rounded and laid out.

Also the test frames: solid-colour blocks and gradients in every format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

import cuframes

PF = cuframes.PixelFormat
CM = cuframes.ColorMatrix
CR = cuframes.ColorRange

KR_KB = {CM.BT601: (0.299, 0.114), CM.BT709: (0.2126, 0.0722), CM.BT2020: (0.2627, 0.0593)}


@dataclass
class Planes:
    """A frame as sample arrays: y (H, W), uv (H/2, W) interleaved U, V (None for GRAY8)."""

    fmt: PF
    y: np.ndarray
    uv: Optional[np.ndarray]

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    def source(self) -> object:
        """What CuframesPublisher.publish takes."""
        return self.y if self.uv is None else (self.y, self.uv)


def pattern_planes(fmt: PF, w: int, h: int, seed: int = 0) -> Planes:
    """Solid-colour blocks and gradients: the top half a diagonal luma gradient, the bottom half
    blocks of random solid levels (sharp edges every 37 x 23 pixels); chroma blocks of random
    colours, with a smooth U gradient in the top half. 8-bit values, or 10-bit for P010 (stored
    in the high bits, with the low 6 bits set to noise that must not matter)."""
    rng = np.random.default_rng(seed)
    top = (np.arange(h)[:, None] * 1.3 + np.arange(w)[None, :] * 0.7)
    top = 16 + (top % 220)
    blocks = rng.integers(0, 256, size=(h // 23 + 1, w // 37 + 1))
    bottom = blocks[np.arange(h)[:, None] // 23, np.arange(w)[None, :] // 37].astype(np.float64)
    y8 = np.where(np.arange(h)[:, None] < h // 2, top, bottom)
    y8 = np.clip(np.round(y8), 0, 255)
    if fmt == PF.GRAY8:
        return Planes(fmt, y8.astype(np.uint8), None)
    hc, wc = h // 2, w // 2
    cblocks = rng.integers(16, 241, size=(hc // 11 + 1, wc // 17 + 1, 2))
    c = cblocks[np.arange(hc)[:, None] // 11, np.arange(wc)[None, :] // 17].astype(np.float64)
    c[: hc // 2, :, 0] = 16 + (np.arange(wc)[None, :] * 224 // max(1, wc - 1))
    uv8 = c.reshape(hc, w)
    if fmt == PF.NV12:
        return Planes(fmt, y8.astype(np.uint8), uv8.astype(np.uint8))
    # P010: 10-bit values (the 8-bit pattern x4 plus a ripple), noise in the low 6 bits
    y10 = np.clip(y8 * 4 + (np.arange(w)[None, :] % 4), 0, 1023).astype(np.uint16)
    uv10 = np.clip(uv8 * 4 + 1, 0, 1023).astype(np.uint16)
    noise_y = rng.integers(0, 64, size=y10.shape, dtype=np.uint16)
    noise_uv = rng.integers(0, 64, size=uv10.shape, dtype=np.uint16)
    return Planes(fmt, (y10 << 6) | noise_y, (uv10 << 6) | noise_uv)


def solid_planes(fmt: PF, w: int, h: int, y: int, u: int, v: int) -> Planes:
    """One colour everywhere (sample values in the format's bits)."""
    shift = 6 if fmt == PF.P010 else 0
    dt = np.uint16 if fmt == PF.P010 else np.uint8
    yy = np.full((h, w), y << shift, dt)
    if fmt == PF.GRAY8:
        return Planes(fmt, yy, None)
    uv = np.empty((h // 2, w), dt)
    uv[:, 0::2] = u << shift
    uv[:, 1::2] = v << shift
    return Planes(fmt, yy, uv)


@dataclass
class Geometry:
    content_w: int
    content_h: int
    pad_x: int
    pad_y: int

    def transform(self, w: int, h: int) -> tuple[float, float, float, float]:
        return (self.content_w / w, self.content_h / h, float(self.pad_x), float(self.pad_y))


def geometry(w: int, h: int, out_w: int, out_h: int, resize: str) -> Geometry:
    """Letterbox: scale by min(out_w / w, out_h / h), content round(w * s) x round(h * s),
    centred with the odd pixel of padding on the right / bottom. Stretch: the whole output."""
    if resize == "stretch":
        return Geometry(out_w, out_h, 0, 0)
    s = min(out_w / w, out_h / h)
    cw = min(out_w, max(1, math.floor(w * s + 0.5)))
    ch = min(out_h, max(1, math.floor(h * s + 0.5)))
    return Geometry(cw, ch, (out_w - cw) // 2, (out_h - ch) // 2)


def axis_weights(n_out: int, n_plane: int, frame_px: int, sub: float, chroma_h: bool) -> np.ndarray:
    """(n_out, n_plane) weights sampling one plane along one axis for the n_out content pixels.

    Output pixel o (0-based in the content) covers frame luma [o, o + 1) * frame_px / n_out. A
    4:2:0 chroma sample c is sited at luma (2c, 2c + 0.5) in pixel-centre coordinates
    (horizontally with the even luma columns, vertically between two rows): its area is luma
    [2c - 0.5, 2c + 1.5) horizontally and [2c, 2c + 2) vertically.
    """
    o = np.arange(n_out, dtype=np.float64)
    a = o * frame_px / n_out
    b = (o + 1) * frame_px / n_out
    if sub != 1.0:  # chroma area coordinates
        shift = 0.5 if chroma_h else 0.0
        a, b = (a + shift) / 2, (b + shift) / 2
    wts = np.zeros((n_out, n_plane))
    if 2 * n_out < n_plane:  # fewer than half the pixels: area average
        a = np.clip(a, 0, n_plane)
        b = np.clip(b, 0, n_plane)
        i = np.arange(n_plane, dtype=np.float64)
        overlap = np.clip(np.minimum(i[None, :] + 1, b[:, None]) - np.maximum(i[None, :], a[:, None]),
                          0, None)
        return overlap / (b - a)[:, None]
    c = np.clip((a + b) / 2 - 0.5, 0, n_plane - 1)  # the centre, in pixel-centre coordinates
    i0 = np.floor(c).astype(np.int64)
    f = c - i0
    rows = np.arange(n_out)
    wts[rows, i0] += 1 - f
    nxt = np.minimum(i0 + 1, n_plane - 1)
    wts[rows, nxt] += f
    return wts


def resolve(fmt: PF, h: int, matrix: CM, rng: CR) -> tuple[CM, CR]:
    if matrix == CM.UNKNOWN:
        matrix = CM.BT709 if h >= 720 else CM.BT601
    if rng == CR.UNKNOWN:
        rng = CR.FULL if fmt == PF.GRAY8 else CR.LIMITED
    return matrix, rng


def rgb_levels(p: Planes, out_w: int, out_h: int, resize: str, matrix: CM, rng: CR,
               pad_value: float) -> tuple[np.ndarray, Geometry]:
    """(3, out_h, out_w) R, G, B levels on the 0..255 scale, float64, and the geometry."""
    w, h = p.width, p.height
    g = geometry(w, h, out_w, out_h, resize)
    bits = 10 if p.fmt == PF.P010 else 8
    y = (p.y >> 6 if p.fmt == PF.P010 else p.y).astype(np.float64)
    wy_x = axis_weights(g.content_w, w, w, 1.0, True)
    wy_y = axis_weights(g.content_h, h, h, 1.0, False)
    ys = wy_y @ y @ wy_x.T
    matrix, rng = resolve(p.fmt, h, matrix, rng)
    k = 2 ** (bits - 8)
    if rng == CR.LIMITED:
        ey = (ys - 16 * k) / (219 * k)
    else:
        ey = ys / (2 ** bits - 1)
    if p.fmt == PF.GRAY8:
        r = gg = bb = ey
    else:
        assert p.uv is not None
        uv = (p.uv >> 6 if p.fmt == PF.P010 else p.uv).astype(np.float64)
        u, v = uv[:, 0::2], uv[:, 1::2]
        wc_x = axis_weights(g.content_w, w // 2, w, 0.5, True)
        wc_y = axis_weights(g.content_h, h // 2, h, 0.5, False)
        us = wc_y @ u @ wc_x.T
        vs = wc_y @ v @ wc_x.T
        if rng == CR.LIMITED:
            pb, pr = (us - 128 * k) / (224 * k), (vs - 128 * k) / (224 * k)
        else:
            pb, pr = (us - 2 ** (bits - 1)) / (2 ** bits - 1), (vs - 2 ** (bits - 1)) / (2 ** bits - 1)
        kr, kb = KR_KB[matrix]
        kg = 1 - kr - kb
        r = ey + 2 * (1 - kr) * pr
        gg = ey - 2 * kb * (1 - kb) / kg * pb - 2 * kr * (1 - kr) / kg * pr
        bb = ey + 2 * (1 - kb) * pb
    content = np.clip(np.stack([r, gg, bb]), 0, 1) * 255
    out = np.full((3, out_h, out_w), float(pad_value))
    out[:, g.pad_y:g.pad_y + g.content_h, g.pad_x:g.pad_x + g.content_w] = content
    return out, g


def reference(frames: Sequence[Planes], size: tuple[int, int], *, dtype: str = "float16",
              layout: str = "nchw", channels: str = "rgb", resize: str = "letterbox",
              pad_value: float = 114, scale: float = 1 / 255,
              mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
              colors: Optional[Sequence[tuple[CM, CR]]] = None) -> tuple[np.ndarray, np.ndarray]:
    """The batch preprocess should give, and its levels: (values in the output dtype and
    layout, R/G/B-or-B/G/R levels (N, 3, H, W) float64)."""
    out_h, out_w = size
    levels = []
    for i, p in enumerate(frames):
        m, r = colors[i] if colors else (CM.UNKNOWN, CR.UNKNOWN)
        lv, _ = rgb_levels(p, out_w, out_h, resize, m, r, pad_value)
        levels.append(lv[::-1] if channels == "bgr" else lv)
    lv = np.stack(levels)
    if dtype == "uint8":
        vals = np.floor(lv + 0.5).astype(np.uint8)
    else:
        mn = np.zeros(3) if mean is None else np.asarray(mean, np.float64)
        sd = np.ones(3) if std is None else np.asarray(std, np.float64)
        vals = (lv * scale - mn[None, :, None, None]) / sd[None, :, None, None]
        vals = vals.astype(np.float16 if dtype == "float16" else np.float32)
    if layout == "nhwc":
        vals = vals.transpose(0, 2, 3, 1)
        lv = lv.transpose(0, 2, 3, 1)
    return vals, lv


def assert_matches(got: np.ndarray, want: np.ndarray, *, level_tol: float, value_per_level: float,
                   what: str = "") -> None:
    """got within level_tol levels of want (uint8: +-1 level), plus one float16 ULP for float16."""
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    if got.dtype == np.uint8:
        diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
        bad = diff > 1
    else:
        g = got.astype(np.float64)
        w = want.astype(np.float64)
        tol = level_tol * abs(value_per_level)
        if got.dtype == np.float16:
            tol = tol + np.spacing(np.abs(want)).astype(np.float64)
        diff = np.abs(g - w)
        bad = diff > tol
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} values off; first at {idx}: "
                             f"got {got[idx]}, want {want[idx]} (max diff {float(diff.max())})")
