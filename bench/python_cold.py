#!/usr/bin/env python3
"""The cold cost of each call on a Python subscriber's path: the first call after the wake.

A subscriber that sleeps between frames (5 ms at 200 fps) wakes with its caches cold, and every
call it makes then costs several times what the same call costs warm (bench/python_micro.py
times them warm). Here a publisher (this process, CPU 0) publishes at --fps; a subscriber process
(CPU 1, sleeping in next_frame) makes ONE probe call first after each wake, the probes taking
turns frame by frame, then its usual frame.torch("yuv") and synchronize. Printed: each probe's
p50 and p90 as that first call, in us, with "none" (the two clock reads alone) as the baseline,
and the wake (publication to next_frame() returning) for each probe's frames. Probes (cuda):

  torch        frame.torch("yuv") (after the ring's first round: the tensor made ahead; with
               --fresh none is made ahead, and it imports the plane when asked)
  cur-stream   torch._C._cuda_getCurrentRawStream(0)
  inference    torch.is_inference_mode_enabled()
  property     frame.seq (a trivial pybind11 property: the binding's dispatch)
  clock        time.monotonic_ns() (a trivial C function)
  sync         stream.synchronize() (torch.cuda.Stream, Python method)
  sync-c       torch._C._CudaStreamBase.synchronize(stream) (its C method)
  sync-frame   frame.synchronize() (the frame's streams: here the consumer stream)
  none         nothing

--memory host runs the host probes anywhere torch imports (no stream probes).

    python3 bench/python_cold.py [--size 1080p] [--seconds 12] [--fps 200] [--memory cuda|host]
        [--fresh] [--bindings] [--spin-us N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from typing import Any

now_ns = time.monotonic_ns
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
CUDA_PROBES = ["torch", "cur-stream", "inference", "property", "clock", "sync", "sync-c",
               "sync-frame", "none"]
HOST_PROBES = ["torch", "inference", "property", "clock", "none"]
WARMUP = 40  # frames left out (the ring's first round, the subscriber's first touches)


def pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})
    except OSError:
        pass


def subscriber(key: str, rdir: str, memory: str, fresh: bool, bindings: bool, spin_us: int,
               q: Any) -> None:
    pin(1)
    import torch

    import cuframes

    cuframes._cuframes._torch_made_ahead(not fresh)
    cuframes._cuframes._torch_native(not bindings)
    probes = CUDA_PROBES if memory == "cuda" else HOST_PROBES
    stream = None
    consumer = 0
    if memory == "cuda":
        torch.cuda.init()
        stream = torch.cuda.Stream()
        torch.cuda.set_stream(stream)
        consumer = stream.cuda_stream
    C = torch._C
    sync_c = torch._C._CudaStreamBase.synchronize if memory == "cuda" else None
    took: dict[str, list[int]] = {p: [] for p in probes}
    wake: dict[str, list[int]] = {p: [] for p in probes}
    with cuframes.subscribe(key, connect_timeout_ms=10000, consumer_stream=consumer,
                            runtime_dir=rdir, spin_us=spin_us) as sub:
        q.put("ready")
        i = 0
        while True:
            try:
                f = sub.next_frame(timeout_ms=3000)
            except (cuframes.CuframesPublisherGone, cuframes.CuframesFrameTimeout):
                break
            t1 = now_ns()
            probe = probes[i % len(probes)]
            i += 1
            t = now_ns()
            x = None
            if probe == "torch":
                x = f.torch("yuv")
            elif probe == "cur-stream":
                C._cuda_getCurrentRawStream(0)
            elif probe == "inference":
                torch.is_inference_mode_enabled()
            elif probe == "property":
                f.seq
            elif probe == "clock":
                now_ns()
            elif probe == "sync":
                stream.synchronize()
            elif probe == "sync-c":
                sync_c(stream)
            elif probe == "sync-frame":
                f.synchronize()
            t2 = now_ns()
            if x is None:
                x = f.torch("yuv")
            if stream is not None:
                stream.synchronize()
            del x
            f.release()
            if i > WARMUP:
                took[probe].append(t2 - t)
                wake[probe].append(t1 - f.publish_ns)
        q.put((took, wake, sub._torch_ahead()))


def pct(v: list[int], q: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e3 if s else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1080p", choices=sorted(SIZES))
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--fps", type=float, default=200.0)
    ap.add_argument("--memory", choices=("cuda", "host"), default=None)
    ap.add_argument("--fresh", action="store_true",
                    help="no tensors made ahead: frame.torch() imports when asked")
    ap.add_argument("--bindings", action="store_true",
                    help="frame.torch() asks torch's Python bindings for its current stream and "
                         "inference mode (_torch_native(False))")
    ap.add_argument("--spin-us", type=int, default=0, help="the subscriber's spin_us")
    args = ap.parse_args()
    import torch

    import cuframes

    memory = args.memory or ("cuda" if torch.cuda.is_available() else "host")
    pin(0)
    w, h = SIZES[args.size]
    if memory == "cuda":
        pitch = (w + 255) // 256 * 256
        src: Any = torch.full((h * 3 // 2, pitch), 0x5A, dtype=torch.uint8, device="cuda")[:, :w]
        torch.cuda.synchronize()
    else:
        src = torch.full((h * 3 // 2, w), 0x5A, dtype=torch.uint8)
    rdir = tempfile.mkdtemp(prefix="cuframes-cold-")
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with cuframes.publish("cold", w, h, memory=memory, runtime_dir=rdir) as pub:
        p = ctx.Process(target=subscriber, args=("cold", rdir, memory, args.fresh, args.bindings,
                                                    args.spin_us, q))
        p.start()
        if q.get(timeout=120) != "ready":
            raise RuntimeError("the subscriber did not start")
        period = int(1e9 / args.fps)
        nxt = now_ns()
        end = nxt + int(args.seconds * 1e9)
        while nxt < end:  # paced as python_bench paces: sleep, then spin the last 300 us
            nxt += period
            while nxt - now_ns() > 300_000:
                time.sleep(0.0001)
            while now_ns() < nxt:
                pass
            pub.publish(src, now_ns())
    took, wake, (made, taken) = q.get(timeout=120)
    p.join(timeout=30)
    os.rmdir(rdir)
    print(f"python_cold: {memory} memory, {args.size}, {args.fps:.0f} fps, {args.seconds} s, "
          f"tensors made ahead: {'off' if args.fresh else 'on'} (made {made}, taken {taken}), "
          f"torch asked through its {'Python bindings' if args.bindings else 'C functions'}, "
          f"spin_us {args.spin_us}")
    print("The first call after the wake, us; the probes take turns frame "
          "by frame; none: the clock reads alone.")
    print(f"{'probe':<12} | {'p50':>7} {'p90':>7} {'- none':>7} | {'wake p50':>8} | {'frames':>6}")
    base = pct(took["none"], 0.5)
    for probe, v in took.items():
        print(f"{probe:<12} | {pct(v, 0.5):7.2f} {pct(v, 0.9):7.2f} {pct(v, 0.5) - base:7.2f} | "
              f"{pct(wake[probe], 0.5):8.1f} | {len(v):>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
