"""cuframes.preprocess on host rings (the CPU twin of the kernel), against the independent NumPy
reference in preprocess_ref.py: every format and dtype, odd sizes, letterbox geometry, stretch,
layouts, channel orders, normalisation, colour descriptions, batches of several rings, to_frame,
DLPack, argument errors. tests/python/gpu/test_preprocess_gpu.py holds the kernel to this."""

from __future__ import annotations

import gc
import itertools
from contextlib import ExitStack
from typing import Any, Iterator, Sequence

import numpy as np
import pytest

import cuframes
from preprocess_ref import (
    CM,
    CR,
    PF,
    Planes,
    assert_matches,
    geometry,
    pattern_planes,
    reference,
    solid_planes,
)

Invalid = cuframes.CuframesInvalidArgument


class Ring:
    """A host ring of one format and size, with a STRICT_ORDER subscriber on it."""

    def __init__(self, stack: ExitStack, key: str, fmt: PF, w: int, h: int, slots: int = 4):
        self.pub = stack.enter_context(cuframes.publish(key, w, h, fmt, slots, memory="host"))
        self.sub = stack.enter_context(cuframes.subscribe(
            key, mode=cuframes.SubscriberMode.STRICT_ORDER, connect_timeout_ms=5000))

    def frame(self, p: Planes, color: tuple[CM, CR] = (CM.UNKNOWN, CR.UNKNOWN)
              ) -> cuframes.CuframesFrame:
        assert self.pub.publish(p.source(), color_matrix=color[0], color_range=color[1]) > 0
        return self.sub.next_frame(timeout_ms=5000)


@pytest.fixture
def rings(runtime_dir: str, key: str) -> Iterator[Any]:
    """rings(fmt, w, h) -> a Ring; all closed after the test."""
    with ExitStack() as stack:
        n = itertools.count()

        def make(fmt: PF, w: int, h: int, slots: int = 4) -> Ring:
            return Ring(stack, f"{key}-{next(n)}", fmt, w, h, slots)

        yield make


def per_level(scale: float = 1 / 255, std: Sequence[float] | None = None) -> float:
    """The largest change of an output value per level (for tolerances)."""
    return max(abs(scale / s) for s in (std or (1.0, 1.0, 1.0)))


def run(frames: Any, planes: Sequence[Planes], size: tuple[int, int] = (640, 640),
        colors: Any = None, **kw: Any) -> tuple[np.ndarray, cuframes.CuframesBatch]:
    """preprocess(frames) checked against the reference; returns the batch as NumPy."""
    batch = cuframes.preprocess(frames, size, **kw)
    got = np.from_dlpack(batch)
    want, _ = reference(planes, size, colors=colors, **kw)
    assert_matches(got, want, level_tol=0.1,
                   value_per_level=per_level(kw.get("scale", 1 / 255), kw.get("std")),
                   what=f"{[p.fmt.name for p in planes]} {size} {kw}")
    return got, batch


@pytest.mark.parametrize("fmt", [PF.NV12, PF.P010, PF.GRAY8])
@pytest.mark.parametrize("dtype", ["uint8", "float16", "float32"])
def test_every_format_and_dtype(rings: Any, fmt: PF, dtype: str) -> None:
    """1366x768 (odd width, padded rows) letterboxed into 640x640: area averaging along both
    axes for luma, bilinear for chroma; blocks and gradients."""
    p = pattern_planes(fmt, 1366, 768, seed=int(fmt))
    ring = rings(fmt, 1366, 768)
    with ring.frame(p) as f:
        assert f.pitch_y > 1366 * f.bytes_per_sample  # padded rows: the strides are honoured
        got, batch = run(f, [p], dtype=dtype)
    assert got.shape == (1, 3, 640, 640) and batch.shape == (1, 3, 640, 640)
    assert batch.dtype == dtype and len(batch) == 1
    assert batch.transforms == [pytest.approx((640 / 1366, 360 / 768, 0.0, 140.0), rel=1e-6)]
    # the pad rows hold pad_value (114 as a level), all of them the same value
    pad = np.concatenate([got[:, :, :140].ravel(), got[:, :, 500:].ravel()])
    assert np.all(pad == pad[0])
    assert float(pad[0]) == pytest.approx(114 if dtype == "uint8" else 114 / 255, rel=1e-3)


@pytest.mark.parametrize("w,h,size", [
    (1920, 1080, (640, 640)),   # landscape: pads top and bottom
    (1080, 1920, (640, 640)),   # portrait: pads left and right
    (640, 480, (384, 512)),     # (height, width) order; 4:3 into 4:3, no pad
    (320, 240, (640, 640)),     # upscaling: bilinear
    (34, 18, (101, 53)),        # odd output sizes, odd pads
])
def test_letterbox_geometry(rings: Any, w: int, h: int, size: tuple[int, int]) -> None:
    p = pattern_planes(PF.NV12, w, h, seed=w)
    ring = rings(PF.NV12, w, h)
    with ring.frame(p) as f:
        got, batch = run(f, [p], size, dtype="uint8", pad_value=0)
    g = geometry(w, h, size[1], size[0], "letterbox")
    assert batch.transforms[0] == pytest.approx(g.transform(w, h), rel=1e-6)
    sx, sy, px, py = batch.transforms[0]
    assert abs(sx - sy) * max(w, h) <= 1.0  # the aspect is kept (to a pixel)
    assert px == (size[1] - round(w * sx)) // 2 and py == (size[0] - round(h * sy)) // 2
    img = got[0]
    assert np.all(img[:, :int(py)] == 0) and np.all(img[:, int(py) + g.content_h:] == 0)
    assert np.all(img[:, :, :int(px)] == 0) and np.all(img[:, :, int(px) + g.content_w:] == 0)


def test_stretch_fills_the_output(rings: Any) -> None:
    p = pattern_planes(PF.NV12, 1366, 768, seed=3)
    ring = rings(PF.NV12, 1366, 768)
    with ring.frame(p) as f:
        _, batch = run(f, [p], (320, 480), resize="stretch", dtype="float32")
    assert batch.transforms == [pytest.approx((480 / 1366, 320 / 768, 0.0, 0.0))]
    assert batch.resize == "stretch"


def test_one_pixel_stripes_are_area_averaged(rings: Any) -> None:
    """A 4x reduction of alternating black / white columns is mid grey everywhere (bilinear
    sampling would alias them into stripes)."""
    y = np.zeros((64, 256), np.uint8)
    y[:, 1::2] = 255
    p = Planes(PF.GRAY8, y, None)
    ring = rings(PF.GRAY8, 256, 64)
    with ring.frame(p) as f:
        got, _ = run(f, [p], (16, 64), dtype="float32", scale=1.0)
    assert np.allclose(got, 127.5, atol=1e-3)


def test_layouts_channels_and_normalisation(rings: Any) -> None:
    p = pattern_planes(PF.NV12, 1280, 720, seed=5)
    ring = rings(PF.NV12, 1280, 720)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    with ring.frame(p) as f:
        nchw, _ = run(f, [p], (384, 640), dtype="float32", mean=mean, std=std)
        nhwc, b = run(f, [p], (384, 640), dtype="float32", mean=mean, std=std, layout="nhwc")
        bgr, _ = run(f, [p], (384, 640), dtype="float32", channels="bgr")
        rgb, _ = run(f, [p], (384, 640), dtype="float32")
        u8 = np.from_dlpack(cuframes.preprocess(f, (384, 640), dtype="uint8", layout="nhwc",
                                                channels="bgr"))
    assert b.shape == (1, 384, 640, 3) and b.layout == "nhwc"
    np.testing.assert_array_equal(nhwc, nchw.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(bgr, rgb[:, ::-1])
    # mean / std per output channel: undo them and get the plain levels back
    s = np.asarray(std, np.float32)[:, None, None]
    m = np.asarray(mean, np.float32)[:, None, None]
    np.testing.assert_allclose(nchw * s + m, rgb, atol=5e-6)
    # uint8 holds the rounded level (a float level at .5 may round either way)
    levels = rgb[0, ::-1].transpose(1, 2, 0).astype(np.float64) * 255
    assert np.abs(u8 - levels).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("fmt", [PF.NV12, PF.P010])
@pytest.mark.parametrize("matrix", [CM.UNKNOWN, CM.BT601, CM.BT709, CM.BT2020])
@pytest.mark.parametrize("rng", [CR.UNKNOWN, CR.LIMITED, CR.FULL])
def test_colour_descriptions(rings: Any, fmt: PF, matrix: CM, rng: CR) -> None:
    p = pattern_planes(fmt, 640, 360, seed=11)
    ring = rings(fmt, 640, 360)
    with ring.frame(p, (matrix, rng)) as f:
        assert f.color_matrix == matrix and f.color_range == rng
        assert isinstance(f.color_matrix, cuframes.ColorMatrix)
        run(f, [p], (360, 640), colors=[(matrix, rng)], dtype="float32")


def test_unknown_colour_depends_on_height(rings: Any) -> None:
    """Unknown: BT.709 from 720 rows, BT.601 below; the same pixels give other colours."""
    lo, hi = rings(PF.NV12, 64, 718), rings(PF.NV12, 64, 720)
    a = solid_planes(PF.NV12, 64, 718, 128, 90, 200)
    b = solid_planes(PF.NV12, 64, 720, 128, 90, 200)
    with lo.frame(a) as fa, hi.frame(b) as fb:
        batch = np.from_dlpack(cuframes.preprocess([fa, fb], (8, 8), dtype="float32", scale=1.0))
    want601 = reference([a], (8, 8), dtype="float32", scale=1.0, colors=[(CM.BT601, CR.LIMITED)])[0]
    want709 = reference([b], (8, 8), dtype="float32", scale=1.0, colors=[(CM.BT709, CR.LIMITED)])[0]
    np.testing.assert_allclose(batch[0], want601[0], atol=0.02)
    np.testing.assert_allclose(batch[1], want709[0], atol=0.02)
    assert abs(float(batch[0, 1, 4, 3]) - float(batch[1, 1, 4, 3])) > 5  # green differs


def test_batch_of_rings_with_different_sizes_and_formats(rings: Any) -> None:
    specs = [(PF.NV12, 1366, 768), (PF.P010, 1280, 720), (PF.GRAY8, 322, 242),
             (PF.NV12, 1920, 1080)]
    planes = [pattern_planes(fmt, w, h, seed=i) for i, (fmt, w, h) in enumerate(specs)]
    colors = [(CM.BT709, CR.FULL), (CM.BT2020, CR.LIMITED), (CM.UNKNOWN, CR.UNKNOWN),
              (CM.UNKNOWN, CR.UNKNOWN)]
    rs = [rings(fmt, w, h) for fmt, w, h in specs]
    frames = [r.frame(p, c) for r, p, c in zip(rs, planes, colors)]
    got, batch = run(frames, planes, (320, 320), colors=colors, dtype="float16")
    assert batch.frame_sizes == [(w, h) for _, w, h in specs]
    assert len(batch.transforms) == 4
    for i, f in enumerate(frames):  # each image is what the frame gives alone
        alone = np.from_dlpack(cuframes.preprocess(f, (320, 320)))
        np.testing.assert_array_equal(alone[0], got[i])
    for f in frames:
        f.release()


def test_batch_owns_its_memory(rings: Any) -> None:
    """The frames may be released (and their slots rewritten) right after the call."""
    p = pattern_planes(PF.NV12, 256, 144, seed=1)
    ring = rings(PF.NV12, 256, 144, slots=2)
    f = ring.frame(p)
    batch = cuframes.preprocess([f], (128, 128), dtype="uint8")
    f.release()
    other = solid_planes(PF.NV12, 256, 144, 16, 128, 128)
    for _ in range(3):  # both slots are written again
        ring.frame(other).release()
    arr = np.from_dlpack(batch)
    del batch
    gc.collect()
    want, _ = reference([p], (128, 128), dtype="uint8")
    assert_matches(arr, want, level_tol=0, value_per_level=1, what="after release")
    arr[0, 0, 0, 0] = 7  # writable: the batch is the consumer's
    assert arr[0, 0, 0, 0] == 7


def test_dlpack_surface(rings: Any) -> None:
    p = pattern_planes(PF.NV12, 64, 36, seed=2)
    ring = rings(PF.NV12, 64, 36)
    with ring.frame(p) as f:
        batch = cuframes.preprocess(f, 32, dtype="float32", layout="nhwc")
    assert batch.__dlpack_device__() == (1, 0)
    assert batch.device == -1 and batch.stream is None
    assert batch.shape == (1, 32, 32, 3) and batch.nbytes == 32 * 32 * 3 * 4
    a = np.from_dlpack(batch)
    assert a.strides == (32 * 32 * 3 * 4, 32 * 3 * 4, 3 * 4, 4) and a.ctypes.data == batch.ptr
    cap = batch.__dlpack__()
    assert "dltensor" in repr(cap)
    vcap = batch.__dlpack__(max_version=(1, 0))
    assert "dltensor_versioned" in repr(vcap)
    with pytest.raises(BufferError):
        batch.__dlpack__(copy=True)
    with pytest.raises(BufferError):
        batch.__dlpack__(dl_device=(2, 0))
    assert "CuframesBatch (1, 32, 32, 3) float32 host" in repr(batch)


def test_to_frame_round_trips(rings: Any) -> None:
    specs = [(1366, 768), (1080, 1920), (320, 240)]
    rs = [rings(PF.NV12, w, h) for w, h in specs]
    frames = [r.frame(pattern_planes(PF.NV12, w, h)) for r, (w, h) in zip(rs, specs)]
    batch = cuframes.preprocess(frames, (640, 480), resize="letterbox")
    rng = np.random.default_rng(7)
    for i, (w, h) in enumerate(specs):
        x = np.sort(rng.uniform(0, w, size=(50, 2)), axis=1)
        y = np.sort(rng.uniform(0, h, size=(50, 2)), axis=1)
        boxes = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1)
        sx, sy, px, py = batch.transforms[i]
        in_tensor = boxes * [sx, sy, sx, sy] + [px, py, px, py]
        assert in_tensor[:, 0::2].max() <= 480 and in_tensor[:, 1::2].max() <= 640
        back = batch.to_frame(in_tensor, i)
        np.testing.assert_allclose(back, boxes, atol=1e-3 * max(w, h))
        assert type(back) is np.ndarray
    # boxes in the padding clip to the frame's edge; plain lists work; integer arrays become float
    sx, sy, px, py = batch.transforms[0]
    assert py > 0
    np.testing.assert_allclose(batch.to_frame([[0, 0, 480, 1]], 0), [[0, 0, 1366, 0]])
    box = np.array([[int(px), int(py), int(px) + 10, int(py) + 10]])  # integers
    np.testing.assert_allclose(batch.to_frame(box, 0), [[0, 0, 10 / sx, 10 / sy]], rtol=1e-6)
    assert batch.to_frame(np.zeros((0, 4)), 1).shape == (0, 4)
    with pytest.raises(ValueError, match=r"\(M, 4\)"):
        batch.to_frame(np.zeros((3, 5)), 0)
    with pytest.raises(IndexError):
        batch.to_frame(np.zeros((1, 4)), 3)
    for f in frames:
        f.release()


def test_argument_errors_name_the_argument(rings: Any) -> None:
    p = pattern_planes(PF.NV12, 64, 36)
    ring = rings(PF.NV12, 64, 36)
    f = ring.frame(p)
    cases: list[tuple[dict[str, Any], type, str]] = [
        ({"dtype": "float64"}, Invalid,
         r"dtype must be one of 'uint8', 'float16', 'float32', got 'float64'"),
        ({"dtype": np.float16}, TypeError, r"dtype must be a str"),
        ({"layout": "chw"}, Invalid, r"layout must be one of 'nchw', 'nhwc'"),
        ({"channels": "rgba"}, Invalid, r"channels must be one of 'rgb', 'bgr'"),
        ({"resize": "crop"}, Invalid, r"resize must be one of 'letterbox', 'stretch'"),
        ({"size": (0, 640)}, Invalid, r"size height 0 is outside 1..16384"),
        ({"size": (640, 640, 3)}, TypeError, r"size must be \(height, width\)"),
        ({"size": "640"}, TypeError, r"size must be \(height, width\)"),
        ({"mean": (0.5, 0.5)}, Invalid, r"mean must be None or 3 numbers .* got 2"),
        ({"std": (1, 0, 1)}, Invalid, r"options.std\[1\] 0 is not a finite non-zero number"),
        ({"std": [1, "a", 1]}, TypeError, r"std\[1\] must be a number"),
        ({"pad_value": 300}, Invalid, r"options.pad_value 300 is outside 0..255"),
        ({"scale": float("nan")}, Invalid, r"options.scale nan is not finite"),
        ({"dtype": "uint8", "mean": (1, 2, 3)}, Invalid, r"apply to float dtypes"),
        ({"stream": 5}, Invalid, r"stream must be None for frames in host memory"),
    ]
    for kw, exc, msg in cases:
        kw = dict(kw)
        size = kw.pop("size", (32, 32))
        with pytest.raises(exc, match=msg):
            cuframes.preprocess(f, size, **kw)
    with pytest.raises(Invalid, match=r"frames is empty"):
        cuframes.preprocess([], (32, 32))
    with pytest.raises(TypeError, match=r"frames\[1\] is a int, not a CuframesFrame"):
        cuframes.preprocess([f, 3], (32, 32))
    with pytest.raises(TypeError, match=r"frames must be a CuframesFrame or a sequence"):
        cuframes.preprocess(3, (32, 32))
    seq = f.seq
    f.release()
    with pytest.raises(Invalid, match=rf"frames\[0\] \(seq {seq}\) was released"):
        cuframes.preprocess([f], (32, 32))
    assert issubclass(Invalid, ValueError)


def test_colour_on_publish_and_loan(rings: Any) -> None:
    ring = rings(PF.NV12, 64, 36)
    p = solid_planes(PF.NV12, 64, 36, 100, 128, 128)
    with pytest.raises(Invalid, match=r"unknown color_matrix 7"):
        ring.pub.publish(p.source(), color_matrix=7)
    with pytest.raises(TypeError):
        ring.pub.publish(p.source(), color_range="full")
    with ring.pub.loan() as loan:
        assert loan.color_matrix == CM.UNKNOWN and loan.color_range == CR.UNKNOWN
        loan.color_matrix = CM.BT2020
        loan.color_range = CR.FULL
        assert (loan.color_matrix, loan.color_range) == (CM.BT2020, CR.FULL)
        with pytest.raises(Invalid, match=r"unknown color_range 9"):
            loan.color_range = 9
        assert loan.color_range == CR.FULL
        np.from_dlpack(loan.yuv)[:] = np.concatenate([p.y, p.uv])
    with ring.sub.next_frame(timeout_ms=5000) as f:
        assert (f.color_matrix, f.color_range) == (CM.BT2020, CR.FULL)
    with pytest.raises(Invalid, match=r"the loan is committed"):
        loan.color_matrix = CM.BT601
    assert [m.name for m in cuframes.ColorMatrix] == ["UNKNOWN", "BT601", "BT709", "BT2020"]
    assert [r.name for r in cuframes.ColorRange] == ["UNKNOWN", "LIMITED", "FULL"]
