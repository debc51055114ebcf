"""cuframes.preprocess on CUDA rings: the kernel's output equals its CPU twin's (host rings, the
same frames) within one level (uint8) or 1/255 (float, in level / 255 units), for every format and
the option combinations that change the arithmetic; streams, releases and DLPack consumers.

Run on the GPU machine (tests/gpu/run.sh stage `preprocess`):

    pip install ./python && python3 -m pytest tests/python/gpu/test_preprocess_gpu.py -v -s
"""

from __future__ import annotations

import itertools
from contextlib import ExitStack
from typing import Any, Iterator

import cupy
import numpy as np
import pytest
import torch

import cuframes
from preprocess_ref import CM, CR, PF, Planes, pattern_planes, reference, solid_planes

Mode = cuframes.SubscriberMode

# The largest differences seen, printed at the end (-s): expected 0 (same arithmetic, no FMA).
MAX_DIFF: dict[str, float] = {}


class Twin:
    """The same frame size and format in a cuda ring and in a host ring."""

    def __init__(self, stack: ExitStack, key: str, fmt: PF, w: int, h: int, slots: int = 4,
                 consumer_stream: Any = 0) -> None:
        self.pubs = {}
        self.subs = {}
        for mem in ("cuda", "host"):
            k = f"{key}-{mem}"
            self.pubs[mem] = stack.enter_context(cuframes.publish(k, w, h, fmt, slots, memory=mem))
            self.subs[mem] = stack.enter_context(cuframes.subscribe(
                k, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000,
                consumer_stream=consumer_stream if mem == "cuda" else 0))

    def frames(self, p: Planes, color: tuple[CM, CR] = (CM.UNKNOWN, CR.UNKNOWN)
               ) -> tuple[cuframes.CuframesFrame, cuframes.CuframesFrame]:
        out = []
        for mem in ("cuda", "host"):
            assert self.pubs[mem].publish(p.source(), color_matrix=color[0],
                                          color_range=color[1]) > 0
            out.append(self.subs[mem].next_frame(timeout_ms=5000))
        return out[0], out[1]


@pytest.fixture
def twins(runtime_dir: str, key: str) -> Iterator[Any]:
    with ExitStack() as stack:
        n = itertools.count()

        def make(fmt: PF, w: int, h: int, **kw: Any) -> Twin:
            return Twin(stack, f"{key}-{next(n)}", fmt, w, h, **kw)

        yield make
    torch.cuda.synchronize()


def compare(gpu: Any, cpu: Any, what: str, per_level: float = 1 / 255) -> None:
    """The GPU batch (CuframesBatch on cuda) against the CPU twin's (on the host)."""
    assert gpu.__dlpack_device__() == (2, 0) and cpu.__dlpack_device__() == (1, 0)
    g = torch.from_dlpack(gpu)
    assert g.is_cuda and g.is_contiguous() and tuple(g.shape) == cpu.shape
    got = g.cpu().numpy()
    want = np.from_dlpack(cpu)
    assert got.dtype == want.dtype, what
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if got.dtype == np.uint8:
        tol: Any = 1.0
    else:
        tol = per_level * 1.0  # one level, in value units (1/255 for the default scale)
        if got.dtype == np.float16:
            tol = tol + np.spacing(np.abs(want)).astype(np.float64)
    bad = diff > tol
    key = what.split(" ")[0]
    MAX_DIFF[key] = max(MAX_DIFF.get(key, 0.0), float(diff.max()))
    assert not bad.any(), (f"{what}: {int(bad.sum())} values differ by more than a level; "
                           f"max {float(diff.max())} at {np.argwhere(bad)[0].tolist()}")


OPTION_SETS = [
    {"dtype": "float16"},
    {"dtype": "float32", "layout": "nhwc", "channels": "bgr"},
    {"dtype": "uint8", "layout": "nhwc"},
    {"dtype": "uint8", "channels": "bgr", "resize": "stretch", "pad_value": 0},
    {"dtype": "float32", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    {"dtype": "float16", "resize": "stretch", "layout": "nhwc", "scale": 1.0,
     "mean": (128, 128, 128), "std": (64, 64, 64)},
]


@pytest.mark.parametrize("fmt", [PF.NV12, PF.P010, PF.GRAY8])
@pytest.mark.parametrize("w,h,size", [
    (1920, 1080, (640, 640)),  # the detector case: area luma, bilinear chroma
    (1366, 768, (640, 640)),   # padded rows (pitch 1536 on the GPU, 1408 on the host)
    (1080, 1920, (384, 640)),  # portrait into landscape: pads left and right
    (320, 240, (640, 640)),    # upscaling
    (3840, 2160, (320, 320)),  # 12x reduction: area for chroma too
])
def test_gpu_equals_cpu_twin(twins: Any, fmt: PF, w: int, h: int, size: tuple[int, int]) -> None:
    p = pattern_planes(fmt, w, h, seed=w + int(fmt))
    t = twins(fmt, w, h)
    fg, fc = t.frames(p)
    for opts in OPTION_SETS:
        gpu = cuframes.preprocess(fg, size, **opts)
        cpu = cuframes.preprocess(fc, size, **opts)
        assert gpu.transforms == cpu.transforms
        per_level = max(opts.get("scale", 1 / 255) / s for s in opts.get("std", (1, 1, 1)))
        compare(gpu, cpu, f"{fmt.name} {w}x{h}->{size} {opts}", per_level)
    fg.release()
    fc.release()


@pytest.mark.parametrize("matrix,rng", [(CM.BT601, CR.FULL), (CM.BT709, CR.LIMITED),
                                        (CM.BT2020, CR.FULL), (CM.UNKNOWN, CR.UNKNOWN)])
@pytest.mark.parametrize("fmt", [PF.NV12, PF.P010])
def test_gpu_colour_descriptions(twins: Any, fmt: PF, matrix: CM, rng: CR) -> None:
    p = pattern_planes(fmt, 1280, 720, seed=9)
    t = twins(fmt, 1280, 720)
    fg, fc = t.frames(p, (matrix, rng))
    assert fg.color_matrix == matrix and fg.color_range == rng
    compare(cuframes.preprocess(fg, (360, 640), dtype="float32"),
            cuframes.preprocess(fc, (360, 640), dtype="float32"), f"colour {fmt.name} {matrix!r}")
    # and the kernel against the independent reference, too
    got = torch.from_dlpack(cuframes.preprocess(fg, (360, 640), dtype="float32")).cpu().numpy()
    want, _ = reference([p], (360, 640), dtype="float32", colors=[(matrix, rng)])
    assert np.abs(got - want).max() <= 0.05 / 255 + 1e-6


def test_gpu_batch_of_rings_and_many_launches(twins: Any) -> None:
    """Rings of different sizes and formats in one batch; 70 images (two launches of 64)."""
    specs = [(PF.NV12, 1920, 1080), (PF.P010, 1280, 720), (PF.GRAY8, 640, 480),
             (PF.NV12, 1366, 768)]
    pairs = []
    for i, (fmt, w, h) in enumerate(specs):
        pairs.append(twins(fmt, w, h).frames(pattern_planes(fmt, w, h, seed=i)))
    gpu_frames = [pairs[i % 4][0] for i in range(70)]
    cpu_frames = [pairs[i % 4][1] for i in range(70)]
    gpu = cuframes.preprocess(gpu_frames, (320, 320), dtype="float16")
    cpu = cuframes.preprocess(cpu_frames, (320, 320), dtype="float16")
    assert gpu.shape == (70, 3, 320, 320)
    compare(gpu, cpu, "batch70")
    g = torch.from_dlpack(gpu)
    assert torch.equal(g[0], g[64]) and torch.equal(g[3], g[67])  # across the launch boundary
    for fg, fc in pairs:
        fg.release()
        fc.release()


def test_release_right_after_is_ordered_after_the_kernel(twins: Any) -> None:
    """Work queued first keeps the stream busy; the frame is released at once and the publisher
    tries to rewrite its slot meanwhile: the batch must still hold the frame's content."""
    stream = torch.cuda.Stream()
    copy_stream = torch.cuda.Stream()
    a = pattern_planes(PF.NV12, 1920, 1080, seed=1)
    b = solid_planes(PF.NV12, 1920, 1080, 235, 128, 128)
    t = twins(PF.NV12, 1920, 1080, slots=2, consumer_stream=stream)
    pub, sub = t.pubs["cuda"], t.subs["cuda"]
    assert pub.publish(a.source()) == 1
    assert pub.publish(b.source()) == 2  # the newest, never rewritten
    frame = sub.next_frame(timeout_ms=5000)  # frame 1: a
    assert frame.seq == 1
    src = torch.from_numpy(np.concatenate([b.y, b.uv])).cuda()
    torch.cuda.synchronize()  # the upload done before anything waits on the sleeping stream
    with torch.cuda.stream(stream):
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time ahead of the kernel
    batch = cuframes.preprocess(frame, (640, 640), dtype="uint8")  # on sub's consumer stream
    assert batch.stream == stream.cuda_stream
    frame.release()
    dropped = pub.publish(src, stream=copy_stream.cuda_stream) == 0
    stream.synchronize()
    want = cuframes.preprocess(t.frames(a)[1], (640, 640), dtype="uint8")  # the CPU twin
    compare(batch, want, "release-order")
    print(f"\nrelease ordered after the kernel: publish while the kernel waited was "
          f"{'dropped (the slot stayed held)' if dropped else 'given another slot'}")


def test_default_stream_is_the_consumer_stream_and_consumers_wait(twins: Any) -> None:
    s1 = torch.cuda.Stream()
    s2 = torch.cuda.Stream()
    p = pattern_planes(PF.NV12, 1920, 1080, seed=4)
    t = twins(PF.NV12, 1920, 1080, consumer_stream=s1)
    fg, fc = t.frames(p)
    with torch.cuda.stream(s1):
        torch.cuda._sleep(100_000_000)
    batch = cuframes.preprocess([fg], (640, 640), dtype="float16")
    assert batch.stream == s1.cuda_stream and batch.device == 0
    with torch.cuda.stream(s2):
        x = torch.from_dlpack(batch)  # s2 waits for the kernel on s1
        y = x.float().mean(dim=(2, 3))
    want = torch.from_numpy(np.from_dlpack(cuframes.preprocess(fc, (640, 640)))).float()
    s2.synchronize()
    assert torch.allclose(y.cpu(), want.mean(dim=(2, 3)), atol=2e-3)
    # cupy, and an explicit stream
    c = cupy.from_dlpack(cuframes.preprocess(fg, (640, 640), dtype="float32",
                                             stream=s2.cuda_stream))
    assert c.shape == (1, 3, 640, 640) and c.dtype == cupy.float32
    fg.release()
    fc.release()
    del x, y, c


def test_gpu_errors(twins: Any) -> None:
    p = pattern_planes(PF.NV12, 64, 36)
    t = twins(PF.NV12, 64, 36)
    fg, fc = t.frames(p)
    with pytest.raises(cuframes.CuframesInvalidArgument,
                       match=r"frames\[1\] is on host memory, frames\[0\] on cuda device 0"):
        cuframes.preprocess([fg, fc], (32, 32))
    batch = cuframes.preprocess([fg], (32, 32), stream=0)  # 0: the legacy default stream
    assert batch.stream == 1
    fg.release()
    fc.release()


def test_report_max_differences() -> None:
    print("\nmax |GPU - CPU twin| per case:", {k: v for k, v in sorted(MAX_DIFF.items())})
