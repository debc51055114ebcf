#!/usr/bin/env python3
"""cuframes.preprocess against what detectors do today, on the GPU machine. One table.

1080p NV12 frames in CUDA rings (one ring per "camera", one held frame each) become a 640x640
letterboxed float16 NCHW batch of 1, 8 or 32 images, three ways:

  (a) cuframes   cuframes.preprocess(frames, (640, 640)): one fused kernel per batch;
  (b) torch      the same in plain torch ops on the DLPack planes, frame by frame (what users
                 write today: float conversion, chroma upsampling, the BT.709 matrix,
                 F.interpolate, a padded canvas, torch.stack);
  (c) frigate    Frigate's path: download each frame to host memory, OpenCV cvtColor (NV12 ->
                 RGB) and resize, letterbox on the host, upload, convert to float16 on the GPU.

Per arm and batch size: GPU time per frame (CUDA events around the arm's work on its stream),
wall time per batch (until the batch is complete on the GPU), CPU time per frame (process CPU
time, every thread, waits blocking rather than spinning). The arms are interleaved in every
round and repeated; the table shows medians, then the ratios the targets are about:
(a) <= 20 us of GPU time per frame at batch 32, >= 5x faster than (b), >= 20x less CPU than (c).

    python3 bench/preprocess_bench.py [--rounds 30] [--batches 1,8,32]

Needs torch with CUDA, numpy, cv2 and the cuframes package (pip install ./python).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from typing import Any, Callable

import numpy as np

W, H = 1920, 1080
OUT = 640
PAD = 114


def pattern(i: int) -> np.ndarray:
    """A smooth 1080p NV12 frame with some texture, different per camera."""
    rng = np.random.default_rng(i)
    x = np.arange(W)[None, :]
    y = np.arange(H)[:, None]
    luma = 16 + (x * (1 + i % 3) + y * 2 + i * 17) % 220 + rng.integers(0, 8, (H, W))
    uv = 128 + ((np.arange(W)[None, :] // 2 + np.arange(H // 2)[:, None] + i * 5) % 64) - 32
    uv = np.broadcast_to(uv, (H // 2, W))
    return np.concatenate([luma, uv]).astype(np.uint8)


def letterbox_geometry() -> tuple[int, int, int, int]:
    s = min(OUT / W, OUT / H)
    nw, nh = round(W * s), round(H * s)
    return nw, nh, (OUT - nw) // 2, (OUT - nh) // 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30, help="measured rounds (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first (default 3)")
    ap.add_argument("--batches", default="1,8,32", help="batch sizes (default 1,8,32)")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]

    import cv2
    import torch
    import torch.nn.functional as F

    import cuframes

    if not torch.cuda.is_available():
        print("preprocess_bench: needs a CUDA device", file=sys.stderr)
        return 2
    dev = torch.device("cuda", 0)
    stream = torch.cuda.Stream()
    nw, nh, px, py = letterbox_geometry()

    # BT.709 limited range (what cuframes assumes for 1080p frames without a description).
    kr, kb = 0.2126, 0.0722
    kg = 1 - kr - kb
    cy, cc = 255 / 219, 255 / 224

    def arm_cuframes(frames: list[Any]) -> Any:
        return torch.from_dlpack(cuframes.preprocess(frames, (OUT, OUT), stream=stream))

    def arm_torch(frames: list[Any]) -> Any:
        imgs = []
        for f in frames:
            y = torch.from_dlpack(f.y).float()
            uv = torch.from_dlpack(f.uv).view(H // 2, W // 2, 2).float()
            u = uv[..., 0].repeat_interleave(2, 0).repeat_interleave(2, 1)
            v = uv[..., 1].repeat_interleave(2, 0).repeat_interleave(2, 1)
            yy = (y - 16) * cy
            pb = (u - 128) * cc
            pr = (v - 128) * cc
            rgb = torch.stack([yy + 2 * (1 - kr) * pr,
                               yy - 2 * kb * (1 - kb) / kg * pb - 2 * kr * (1 - kr) / kg * pr,
                               yy + 2 * (1 - kb) * pb]).clamp_(0, 255) / 255
            small = F.interpolate(rgb[None], size=(nh, nw), mode="bilinear", align_corners=False)
            canvas = torch.full((3, OUT, OUT), PAD / 255, device=dev)
            canvas[:, py:py + nh, px:px + nw] = small[0]
            imgs.append(canvas)
        return torch.stack(imgs).half()

    def arm_frigate(frames: list[Any]) -> Any:
        host = []
        for f in frames:
            nv12 = torch.from_dlpack(f.yuv).cpu().numpy()  # download (waits for the copy)
            rgb = cv2.cvtColor(nv12, cv2.COLOR_YUV2RGB_NV12)
            small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
            canvas = np.full((OUT, OUT, 3), PAD, np.uint8)
            canvas[py:py + nh, px:px + nw] = small
            host.append(canvas)
        up = torch.from_numpy(np.stack(host)).to(dev, non_blocking=False)  # upload
        return up.permute(0, 3, 1, 2).half().div_(255).contiguous()

    arms: list[tuple[str, Callable[[list[Any]], Any]]] = [
        ("(a) cuframes.preprocess", arm_cuframes),
        ("(b) torch ops on DLPack", arm_torch),
        ("(c) frigate: host + cv2", arm_frigate),
    ]

    n_cams = max(batches)
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    outputs: dict[tuple[str, int], Any] = {}
    with tempfile.TemporaryDirectory(prefix="cuframes-bench-") as rt, ExitStack() as stack:
        os.environ["CUFRAMES_RUNTIME_DIR"] = rt
        frames = []
        for i in range(n_cams):
            key = f"bench-cam{i}"
            pub = stack.enter_context(cuframes.publish(key, W, H, memory="cuda", slots=2))
            sub = stack.enter_context(cuframes.subscribe(key, connect_timeout_ms=5000,
                                                         consumer_stream=stream))
            pub.publish(pattern(i))
            frames.append(sub.next_frame(timeout_ms=5000))
        torch.cuda.synchronize()

        def measure(name: str, fn: Callable[[list[Any]], Any], batch: int, keep: bool) -> None:
            fs = frames[:batch]
            start = torch.cuda.Event(enable_timing=True, blocking=True)
            end = torch.cuda.Event(enable_timing=True, blocking=True)
            torch.cuda.synchronize()
            cpu0 = time.process_time()
            wall0 = time.perf_counter()
            with torch.cuda.stream(stream):
                start.record(stream)
                out = fn(fs)
                end.record(stream)
            end.synchronize()  # blocking: waiting costs no CPU
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
            if not keep:
                return
            r = results.setdefault((name, batch), {"gpu": [], "wall": [], "cpu": []})
            r["gpu"].append(start.elapsed_time(end) * 1000 / batch)  # us per frame
            r["wall"].append(wall * 1000)  # ms per batch
            r["cpu"].append(cpu * 1e6 / batch)  # us per frame
            outputs[(name, batch)] = out

        for rnd in range(args.warmup + args.rounds):
            for batch in batches:
                order = arms if rnd % 2 == 0 else arms[::-1]  # interleaved, both orders
                for name, fn in order:
                    measure(name, fn, batch, keep=rnd >= args.warmup)

        # The arms compute the same picture (up to their sampling): mean |difference| vs (a).
        agree: dict[str, float] = {}
        b = max(batches)
        ref = outputs[(arms[0][0], b)].float()
        for name, _ in arms[1:]:
            agree[name] = float((outputs[(name, b)].float() - ref).abs().mean())
        for f in frames:
            f.release()
        outputs.clear()
        torch.cuda.synchronize()

    gpu_name = torch.cuda.get_device_name(0)
    print(f"preprocess_bench: {W}x{H} NV12 -> {OUT}x{OUT} letterboxed float16 NCHW on {gpu_name}, "
          f"{args.rounds} rounds (arms interleaved), medians")
    print(f"{'arm':<26} {'batch':>5} {'GPU us/frame':>13} {'wall ms/batch':>14} "
          f"{'CPU us/frame':>13}")
    med: dict[tuple[str, int], dict[str, float]] = {}
    for batch in batches:
        for name, _ in arms:
            r = results[(name, batch)]
            m = {k: statistics.median(v) for k, v in r.items()}
            med[(name, batch)] = m
            print(f"{name:<26} {batch:>5} {m['gpu']:>13.1f} {m['wall']:>14.3f} {m['cpu']:>13.1f}")
    print()
    a, t, fr = (n for n, _ in arms)
    for batch in batches:
        ga = med[(a, batch)]["gpu"]
        print(f"batch {batch:>2}: (a) GPU {ga:.1f} us/frame; (b)/(a) GPU time "
              f"{med[(t, batch)]['gpu'] / ga:.1f}x, wall {med[(t, batch)]['wall'] / med[(a, batch)]['wall']:.1f}x; "
              f"(c)/(a) CPU {med[(fr, batch)]['cpu'] / med[(a, batch)]['cpu']:.1f}x, "
              f"wall {med[(fr, batch)]['wall'] / med[(a, batch)]['wall']:.1f}x")
    b = max(batches)
    ga = med[(a, b)]["gpu"]
    speed = med[(t, b)]["gpu"] / ga
    cpu = med[(fr, b)]["cpu"] / med[(a, b)]["cpu"]
    print(f"targets at batch {b}: (a) GPU {ga:.1f} us/frame (<= 20: {'met' if ga <= 20 else 'MISSED'}); "
          f"(b)/(a) {speed:.1f}x (>= 5: {'met' if speed >= 5 else 'MISSED'}); "
          f"(c)/(a) CPU {cpu:.1f}x (>= 20: {'met' if cpu >= 20 else 'MISSED'})")
    print("mean |value - (a)| at batch %d: %s (different resamplers: (a) averages areas on a 3x "
          "reduction, (b) and (c) sample bilinearly)" %
          (b, ", ".join(f"{n} {v:.4f}" for n, v in agree.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
