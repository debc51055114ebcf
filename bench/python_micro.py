#!/usr/bin/env python3
"""Each Python call of the per-frame path on its own, in one process (issue 17): where the
microseconds of publish(), next_frame(), the DLPack export and import, and release() go.

One publisher and one subscriber in this process, one frame at a time (publish, then consume:
the frame is there when next_frame() is called, so no wake-up is measured; python_bench.py
measures that across processes). Every step is timed with perf_counter_ns over --iters frames,
the steps of one kind interleaved frame by frame; the table gives p50, p90 and the mean in us.

Publisher steps (cuda: a torch tensor with NVDEC's pitch, as python_bench's; host: numpy):
  export           src.__dlpack__(stream=1, max_version=(1, 0)) (torch orders its current stream
                   before stream 1), the capsule dropped unconsumed
  export -1        the same with stream=-1 (no ordering asked)
  to_dlpack        torch.utils.dlpack.to_dlpack(src): torch's C export alone, no Python method
  publish(capsule) pub.publish(capsule) of a capsule made beforehand: the C call + the import
  publish(src)     pub.publish(src): what a producer pays (export + import + C call + deleter)
  publish(src) proto  the same through torch.Tensor.__dlpack__ (cuframes._cuframes.
                   _torch_fast_path(False)) instead of torch's C export
Subscriber steps, per frame:
  next_frame       sub.next_frame() with the frame there: the binding + the C call
  .yuv             frame.yuv (the plane object)
  cap export       frame.yuv.__dlpack__(stream=S, max_version=(1, 0)) alone (cuframes' export)
  from_dlpack(cap) torch.from_dlpack(capsule) of that capsule (torch's C import alone)
  from_dlpack(yuv) torch.from_dlpack(frame.yuv) (what python_bench's cuframes-dlpack arm's
                   "import" step times: the protocol, torch's Python part included)
  .torch(yuv)      frame.torch("yuv") (python_bench's cuframes arms: torch's C import, the
                   current stream asked through torch._C._cuda_getCurrentRawStream)
  current_stream   torch.cuda.current_stream(): part of the protocol's cost, on its own
  sync             stream.synchronize()
  del tensor       the tensors dropped (their deleters)
  release          frame.release()
Calibration: an empty Python call and time.perf_counter_ns(), so that machines compare.

    python3 bench/python_micro.py [--memory cuda|host] [--iters 3000] [--size 1080p|4k]
        [--profile] (cProfile's top functions over a publish + consume loop)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
ns = time.perf_counter_ns


def make_source(torch: Any, w: int, h: int) -> Any:
    rows = h * 3 // 2
    if torch is None:
        return np.full((rows, w), 0x5A, np.uint8)
    pitch = (w + 255) // 256 * 256  # NVDEC's row pitch, as python_bench's producer
    t = torch.full((rows, pitch), 0x5A, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    return t[:, :w]


class Steps:
    def __init__(self) -> None:
        self.v: dict[str, list[int]] = {}

    def time(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = ns()
        r = fn()
        self.v.setdefault(name, []).append(ns() - t0)
        return r

    def print(self, title: str) -> None:
        print(title)
        print(f"  {'step':<20}| {'p50':>8} {'p90':>8} {'mean':>8} | {'n':>6}")
        for name, v in self.v.items():
            s = sorted(v)
            p = lambda q: s[min(len(s) - 1, int(len(s) * q))] / 1e3  # noqa: E731
            print(f"  {name:<20}| {p(0.5):8.2f} {p(0.9):8.2f} {sum(s) / len(s) / 1e3:8.2f} | "
                  f"{len(s):>6}")
        print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--memory", choices=("cuda", "host"), default=None)
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--size", choices=sorted(SIZES), default="1080p")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch: Any = None
    if args.memory != "host":
        try:
            import torch as _torch

            if _torch.cuda.is_available():
                torch = _torch
        except ImportError:
            pass
        if args.memory == "cuda" and torch is None:
            print("python_micro: --memory cuda needs torch with CUDA")
            return 2
    memory = "cuda" if torch is not None else "host"
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    import cuframes

    w, h = SIZES[args.size]
    src = make_source(torch, w, h)
    stream = None
    cuda = torch is not None
    if cuda:
        stream = torch.cuda.Stream()
    consumer = stream.cuda_stream if stream is not None else 0

    def as_producer() -> None:  # python_bench's producer: torch's current stream the default one
        if cuda:
            torch.cuda.set_stream(torch.cuda.default_stream())

    def as_consumer() -> None:  # its subscribers: the consumer stream current
        if cuda:
            torch.cuda.set_stream(stream)

    def empty() -> None:
        return None

    print(f"python_micro: {memory} memory, {args.size}, {args.iters} frames, "
          f"cuframes {cuframes.version_string()}, python {sys.version.split()[0]}"
          + (f", torch {torch.__version__}" if cuda else f", numpy {np.__version__}"))
    print()
    d = tempfile.mkdtemp(prefix="cuframes-micro-")
    key = "micro"
    with cuframes.publish(key, w, h, slots=8, memory=memory, runtime_dir=d) as pub, \
         cuframes.subscribe(key, connect_timeout_ms=5000, consumer_stream=consumer,
                            runtime_dir=d) as sub:
        pubs, subs, cal = Steps(), Steps(), Steps()
        toggle = getattr(cuframes._cuframes, "_torch_fast_path", None) if cuda else None

        try:  # producers before DLPack 1.0 (torch < 2.9) refuse max_version
            src.__dlpack__(max_version=(1, 0), **({"stream": 1} if cuda else {}))
            vmax: dict[str, Any] = {"max_version": (1, 0)}
        except TypeError:
            vmax = {}

        def producer_export(s: Any) -> Any:
            if cuda:
                return src.__dlpack__(stream=s, **vmax)
            return src.__dlpack__(**vmax)

        def publish_once() -> None:
            pub.publish(src)

        def consume_once(steps: Steps, i: int) -> None:
            as_consumer()
            f = steps.time("next_frame", lambda: sub.next_frame(timeout_ms=1000))
            plane = steps.time(".yuv", lambda: f.yuv)
            if cuda:
                cap = steps.time("cap export", lambda: plane.__dlpack__(
                    stream=consumer, **vmax))
                a = steps.time("from_dlpack(cap)", lambda: torch.from_dlpack(cap))
                b = steps.time("from_dlpack(yuv)", lambda: torch.from_dlpack(f.yuv))
                c = steps.time(".torch(yuv)", lambda: f.torch("yuv"))
                steps.time("current_stream", torch.cuda.current_stream)
                steps.time("sync", stream.synchronize)
            else:
                cap = steps.time("cap export", lambda: plane.__dlpack__(**vmax))
                a = steps.time("from_dlpack(cap)", lambda: np.from_dlpack(_Capsule(cap)))
                b = steps.time("from_dlpack(yuv)", lambda: np.from_dlpack(f.yuv))
                c = None
            del cap, plane

            def drop() -> None:
                nonlocal a, b, c
                del a, b, c

            steps.time("del tensor", drop)
            steps.time("release", f.release)
            as_producer()

        as_producer()
        for i in range(50):  # warm-up: CUDA contexts, caches, torch's lazy init
            publish_once()
            consume_once(Steps(), i)
        for i in range(args.iters):
            # publisher steps, each on its own (the subscriber takes each frame at once)
            if i % 2 == 0:
                pubs.time("export", lambda: producer_export(1))
                if cuda:
                    pubs.time("export -1", lambda: producer_export(-1))
                    pubs.time("to_dlpack", lambda: torch.utils.dlpack.to_dlpack(src))
                cap = producer_export(1)
                pubs.time("publish(capsule)", lambda: pub.publish(cap))
                del cap
            elif i % 4 == 1 or toggle is None:
                pubs.time("publish(src)", publish_once)
            else:  # torch.Tensor.__dlpack__ instead of torch's C export (torch sources only)
                toggle(False)
                pubs.time("publish(src) proto", publish_once)
                toggle(True)
            consume_once(subs, i)
            cal.time("empty call", empty)
            cal.time("perf_counter_ns", ns)
        pubs.print(f"Publisher, us per call ({w}x{h} NV12 from "
                   + ("a torch CUDA tensor, pitch " + str(src.stride(0)) if cuda else "numpy")
                   + "):")
        subs.print("Subscriber, us per call (the frame is there: no wake-up):")
        cal.print("Calibration, us per call:")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for i in range(min(args.iters, 1000)):
                publish_once()
                consume_once(Steps(), i)
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
            print("cProfile, a publish + consume loop, by own time:")
            print("\n".join(out.getvalue().splitlines()[4:]))
    os.rmdir(d) if not os.listdir(d) else None
    return 0


class _Capsule:
    """numpy.from_dlpack takes producers only: a capsule behind __dlpack__ (host frames)."""

    def __init__(self, cap: Any) -> None:
        self.cap = cap

    def __dlpack__(self, **kw: Any) -> Any:
        return self.cap

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)


if __name__ == "__main__":
    sys.exit(main())
