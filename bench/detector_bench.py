#!/usr/bin/env python3
"""End-to-end detector benchmark (GPU machine): cameras -> cuframes-service -> ONE detector.

For N = 8 and 32 file cameras (the same 1080p H.264 clip, looped, paced at its 30 fps like live
cameras, NVDEC into cuda rings), one cuframes-service runs, and examples/detector.py runs the
detection path on them (torchvision's SSDlite320 MobileNetV3, random weights, float16, one
batch of every camera's newest frame at a time, one CUDA stream), fed two ways, interleaved and
repeated on the same service:

  cuframes   the frames read in place in the rings, cuframes.preprocess: one kernel per batch;
             the model's backbone and heads replayed as CUDA graphs (the detector's default)
  eager      the same, with the model's own forward (--no-cuda-graphs)
  frigate    Frigate's way: each frame downloaded to host memory, OpenCV cvtColor + resize +
             letterbox on the host (one thread per camera), the batch uploaded (--feed host-opencv)

Per run, over a window after a warm-up: frames through the model per second per camera, the
batches (per second, mean size), the model's time per batch (wall: the batch handed over until
its detections are on the host), the latency from each frame's publication (its publish_ns,
CLOCK_MONOTONIC, stamped by the service when the paced frame falls due, i.e. at its pts) to its
detections on the host (p50, p95), GPU utilisation (NVML, sampled every 100 ms; NVDEC's decoding
counts too), and CPU per camera of the detector process and of the service (/proc, every
thread). One table of medians over the runs, ratios, and the issue's targets (32 cameras at 30
fps through one detector, a batch per tick, pts-to-detections p50 under 50 ms) said met or not
met; nothing is asserted.

    detector_bench.py --service BIN --clip FILE [--counts 8,32] [--repeat 2] [--window 8]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from _proc import GpuSampler, cpu_seconds, stop

ROOT = Path(__file__).resolve().parents[1]
DETECTOR = ROOT / "examples" / "detector.py"
FPS = 30.0


def wait_for(what: str, ok: Any, timeout: float, detail: Any = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = ok()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s\n{detail()}")
        time.sleep(0.05)  # polling a file another process writes


def read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None  # not there yet, or being replaced (write + rename)


def tail(path: str, n: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class Service:
    def __init__(self, args: argparse.Namespace, n: int, tmp: str) -> None:
        self.run = os.path.join(tmp, "run")
        cfg = os.path.join(tmp, f"bench-{n}.yaml")
        with open(cfg, "w") as f:
            f.write(f"runtime_dir: {self.run}\nstatus_interval: 200ms\nlog: {{level: warn}}\n"
                    "cameras:\n")
            for i in range(n):
                f.write(f"  cam{i}: {{url: {os.path.abspath(args.clip)}, decoder: {args.decoder}, "
                        f"memory: {args.memory}, loop: true, realtime: true}}\n")
        self.log = os.path.join(tmp, f"service-{n}.log")
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen([args.service, "--config", cfg], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        status = os.path.join(self.run, "cuframes-service.json")

        def streaming() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited ({self.proc.returncode}):\n"
                                   f"{tail(self.log)}")
            st = read_json(status)
            if not st:
                return False
            cams = list(st["cameras"].values())
            if len(cams) == n and all(c["state"] == "streaming" and c["frames"] > 10
                                      for c in cams):
                bad = [c["decoder"] for c in cams if c["decoder"] != args.decoder]
                if bad:
                    raise RuntimeError(f"decoder is {bad[0]}, not {args.decoder}")
                return True
            return False
        wait_for(f"{n} cameras streaming", streaming, 60, lambda: tail(self.log))

    def close(self) -> None:
        stop(self.proc, timeout=30)
        self.logf.close()


# each feed of the table: the detector's arguments
FEEDS = {"cuframes": ["--feed", "cuframes", "--cuda-graphs"],
         "eager": ["--feed", "cuframes", "--no-cuda-graphs"],
         "frigate": ["--feed", "host-opencv", "--cuda-graphs"]}


def run_detector(args: argparse.Namespace, svc: Service, n: int, feed: str, tmp: str,
                 gpu: GpuSampler, tag: str) -> dict[str, float]:
    stats = os.path.join(tmp, f"det-{tag}.json")
    err = os.path.join(tmp, f"det-{tag}.log")
    cams = ",".join(f"cam{i}" for i in range(n))
    with open(err, "wb") as errf:
        proc = subprocess.Popen(
            [sys.executable, str(DETECTOR), "--runtime-dir", svc.run, "--cameras", cams,
             "--name", f"bench-{feed}", "--detect", "--no-measure", *FEEDS[feed],
             "--stats-json", stats, "--log-interval", "0",
             "--seconds", str(args.warmup + args.window + 120)],  # a backstop: SIGTERM ends it
            stdout=subprocess.DEVNULL, stderr=errf)
        try:
            def started() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"the detector exited ({proc.returncode}):\n{tail(err)}")
                return f"detection on {args.kind}" in Path(err).read_text(errors="replace")
            wait_for(f"detector ({feed}) running its model", started, 90, lambda: tail(err))
            time.sleep(args.warmup)  # the warm-up: batches settle, the allocator grows
            t0 = time.monotonic_ns()
            c0d, c0s = cpu_seconds(proc.pid), cpu_seconds(svc.proc.pid)
            with gpu:
                time.sleep(args.window)  # the measured window
            util, dec = GpuSampler.mean(gpu.sm), GpuSampler.mean(gpu.dec)
            t1 = time.monotonic_ns()
            c1d, c1s = cpu_seconds(proc.pid), cpu_seconds(svc.proc.pid)
        finally:
            rc = stop(proc, timeout=60)
    doc = read_json(stats)
    if rc != 0 or doc is None or args.kind not in doc.get("detection", {}):
        raise RuntimeError(f"detector ({feed}, {n} cameras) exited {rc} without its stats:\n"
                           f"{tail(err)}")
    d = doc["detection"][args.kind]
    if d["errors"]:
        raise RuntimeError(f"detector ({feed}): {d['errors']} failed batches: {d['last_error']}")
    span = (t1 - t0) / 1e9
    batches = [b for b in d["batches_list"] if t0 <= b["t_ns"] <= t1]
    frames = sum(b["n"] for b in batches)
    lat = sorted(v for b in batches for v in b["latency_ms"])
    if not batches:
        raise RuntimeError(f"detector ({feed}): no batch in the window\n{tail(err)}")

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))]
    return {"fps_cam": frames / span / n, "batches_s": len(batches) / span,
            "batch": frames / len(batches),
            "infer_ms": statistics.median(b["inference_ms"] for b in batches),
            "prep_ms": statistics.median(b["preprocess_ms"] for b in batches),
            "p50": pct(0.5), "p95": pct(0.95), "gpu": util, "nvdec": dec,
            "det_cpu": 100 * (c1d - c0d) / span / n, "svc_cpu": 100 * (c1s - c0s) / span / n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--service", required=True, help="the cuframes-service binary")
    ap.add_argument("--clip", required=True, help="a 1080p30 H.264 file (tests/service/media.py)")
    ap.add_argument("--counts", default="8,32", help="camera counts (default 8,32)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs of each feed per count, interleaved (default 2; medians)")
    ap.add_argument("--warmup", type=float, default=4, help="seconds before measuring (default 4)")
    ap.add_argument("--window", type=float, default=8, help="measured seconds (default 8)")
    ap.add_argument("--feeds", default="cuframes,eager,frigate",
                    help="which feeds (default cuframes,eager,frigate; frigate needs cv2)")
    ap.add_argument("--cpu", action="store_true",
                    help="development without a GPU: software decoding into host rings, the "
                         "model on the CPU (a check that the benchmark runs, not a benchmark)")
    args = ap.parse_args()
    # SIGTERM (run.sh's timeout) unwinds: the service and the detector are stopped on the way
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.decoder, args.memory, args.kind = (("software", "host", "cpu") if args.cpu
                                            else ("nvdec", "cuda", "cuda"))
    for path, what in ((args.service, "--service"), (args.clip, "--clip")):
        if not os.path.isfile(path):
            print(f"detector_bench: {what} {path}: no such file", file=sys.stderr)
            return 2
    counts = [int(c) for c in args.counts.split(",")]
    feeds = [f for f in args.feeds.split(",") if f]
    if not feeds or any(f not in FEEDS for f in feeds):
        print(f"detector_bench: --feeds {args.feeds}: some of {', '.join(FEEDS)}",
              file=sys.stderr)
        return 2
    gpu = GpuSampler(interval=0.1)
    import torch
    import torchvision
    where = ("software decoding into host rings -> examples/detector.py (SSDlite320 "
             "MobileNetV3, random weights, float32 on the CPU: --cpu, a check, not a benchmark)"
             if args.cpu else
             "NVDEC into cuda rings -> examples/detector.py (SSDlite320 MobileNetV3, random "
             "weights, float16, batches of every camera, one stream)")
    print(f"detector_bench: {os.path.basename(args.clip)} paced at {FPS:.0f} fps per camera, "
          f"{where} on {gpu.name}; "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"{args.repeat} runs per feed and count, interleaved; {args.warmup:.0f} s warm-up, "
          f"{args.window:.0f} s window; medians{'; ' + gpu.error if gpu.error else ''}")
    hdr = (f"{'cams':>4} {'feed':<9} {'fps/cam':>7} {'batch/s':>7} {'batch':>5} {'prep ms':>7} "
           f"{'model ms':>8} {'lat p50':>7} {'lat p95':>7} {'GPU %':>5} {'NVDEC%':>6} "
           f"{'det CPU%/cam':>12} {'svc CPU%/cam':>12}")
    print(hdr)
    sys.stdout.flush()
    med: dict[tuple[int, str], dict[str, float]] = {}
    for n in counts:
        runs: dict[str, list[dict[str, float]]] = {f: [] for f in feeds}
        with tempfile.TemporaryDirectory(prefix="cuframes-detbench-") as tmp:
            svc = Service(args, n, tmp)
            try:
                for r in range(args.repeat):
                    for feed in feeds if r % 2 == 0 else feeds[::-1]:
                        runs[feed].append(run_detector(args, svc, n, feed, tmp, gpu,
                                                       f"{n}-{feed}-{r}"))
            finally:
                svc.close()
        for feed in feeds:
            m = {k: statistics.median(x[k] for x in runs[feed]) for k in runs[feed][0]}
            med[(n, feed)] = m
            print(f"{n:>4} {feed:<9} {m['fps_cam']:>7.1f} {m['batches_s']:>7.1f} "
                  f"{m['batch']:>5.1f} {m['prep_ms']:>7.2f} {m['infer_ms']:>8.2f} "
                  f"{m['p50']:>7.1f} {m['p95']:>7.1f} {m['gpu']:>5.0f} {m['nvdec']:>6.0f} "
                  f"{m['det_cpu']:>12.1f} {m['svc_cpu']:>12.2f}")
        sys.stdout.flush()
    print()
    ours = [f for f in ("cuframes", "eager") if f in feeds]
    if "frigate" not in feeds or not ours:
        return 0
    print("prep ms: the batch's preparation in the detector thread (cuframes: the preprocess "
          "call; frigate: stacking and uploading the host pictures; the per-camera download and "
          "OpenCV work is in each camera's thread); model ms: model + post-processing until the "
          "detections are on the host; lat: publication of a frame -> its detections on the host")
    for n in counts:
        f = med[(n, "frigate")]
        for feed in ours:
            a = med[(n, feed)]
            print(f"{n} cameras: frigate/{feed} detector CPU per camera "
                  f"{f['det_cpu'] / a['det_cpu']:.1f}x, latency p50 {f['p50'] / a['p50']:.2f}x, "
                  f"fps per camera {a['fps_cam']:.1f} vs {f['fps_cam']:.1f}")
    n = max(counts)
    for feed in ours:
        a = med[(n, feed)]
        per_tick = (a["fps_cam"] >= 0.97 * FPS and a["batches_s"] <= 1.1 * FPS
                    and a["batch"] >= 0.9 * n)
        full = a["fps_cam"] >= 0.97 * FPS
        print(f"targets ({n} cameras, {feed} feed): {n} x {FPS:.0f} fps through one detector: "
              f"{a['fps_cam']:.1f} fps per camera ({'met' if full else 'not met'}); "
              f"a batch per tick: {a['batches_s']:.1f} batches/s of {a['batch']:.1f} frames "
              f"({'met' if per_tick else 'not met'}); pts-to-detections p50 {a['p50']:.1f} ms "
              f"< 50 ({'met' if a['p50'] < 50 else 'not met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
