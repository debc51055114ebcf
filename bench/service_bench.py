#!/usr/bin/env python3
"""cuframes-service decode benchmark (GPU machine).

For N = 1, 2, 4, 8 file cameras of the same 1080p H.264 clip, decoded with NVDEC as fast as
possible (realtime: false) into cuda rings, it measures the service's frames/s, and in the same
run the ceiling: FFmpeg's own NVDEC decode-only throughput of the same file with N parallel
streams (bench/nvdec_ceiling). Then it runs N real-time (30 fps) cameras and measures the
service's CPU time per camera. Prints a table.

    service_bench.py --service BIN --ceiling BIN --clip FILE [--seconds S] [--counts 1,2,4,8]
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

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def status(path: str) -> dict:
    for _ in range(100):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.01)  # being replaced (write + rename): read again
    raise RuntimeError(f"cannot read {path}")


def total_frames(st: dict) -> int:
    return sum(c["frames"] for c in st["cameras"].values())


def run_service(args, n: int, realtime: bool, seconds: float) -> tuple[float, float, dict]:
    """Runs n cameras; returns (frames/s, CPU seconds per second, last status)."""
    with tempfile.TemporaryDirectory(prefix="cuframes-bench-") as tmp:
        run = os.path.join(tmp, "run")
        cfg = os.path.join(tmp, "bench.yaml")
        with open(cfg, "w") as f:
            f.write(f"runtime_dir: {run}\nstatus_interval: 200ms\nlog: {{level: warn}}\ncameras:\n")
            for i in range(n):
                f.write(f"  cam{i}: {{url: {os.path.abspath(args.clip)}, decoder: nvdec, "
                        f"memory: cuda, loop: true, realtime: {str(realtime).lower()}}}\n")
        proc = subprocess.Popen([args.service, "--config", cfg])
        path = os.path.join(run, "cuframes-service.json")
        try:
            deadline = time.monotonic() + 30
            while True:  # every camera streaming (the status file says so)
                if proc.poll() is not None:
                    raise RuntimeError("the service exited")
                if os.path.exists(path):
                    st = status(path)
                    cams = st["cameras"].values()
                    if len(cams) == n and all(c["state"] == "streaming" and c["frames"] > 30
                                              for c in cams):
                        bad = [c["decoder"] for c in cams if c["decoder"] != "nvdec"]
                        if bad:
                            raise RuntimeError(f"decoder is {bad[0]}, not nvdec")
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("cameras did not start streaming")
                time.sleep(0.05)
            f0, c0, t0 = total_frames(status(path)), cpu_seconds(proc.pid), time.monotonic()
            time.sleep(seconds)  # the measurement window
            st = status(path)
            f1, c1, t1 = total_frames(st), cpu_seconds(proc.pid), time.monotonic()
            return (f1 - f0) / (t1 - t0), (c1 - c0) / (t1 - t0), st
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def ceiling(args, n: int, seconds: float) -> float:
    out = subprocess.run([args.ceiling, "--seconds", str(seconds), "--streams", str(n), args.clip],
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip().split("fps=")[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--service", required=True)
    ap.add_argument("--ceiling", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--counts", default="1,2,4,8")
    ap.add_argument("--repeat", type=int, default=3,
                    help="service and ceiling runs, interleaved, per count (median reported): "
                         "single-stream NVDEC throughput varies a lot from run to run")
    args = ap.parse_args()
    counts = [int(x) for x in args.counts.split(",")]

    print(f"cuframes-service decode benchmark: {os.path.basename(args.clip)}, NVDEC into cuda "
          f"rings, {args.seconds:.0f} s windows")
    print(f"service and ceiling measured {args.repeat}x each, interleaved; medians")
    print(f"{'cameras':>7} | {'service fps':>11} | {'ceiling fps':>11} | {'ratio':>6} | "
          f"{'service CPU':>11} | runs (service/ceiling fps)")
    print(f"{'':>7} | {'(flat out)':>11} | {'(ffmpeg nvdec)':>11} | {'':>6} | {'cores':>11} |")
    for n in counts:
        fps_runs, top_runs, cpu_runs = [], [], []
        for _ in range(args.repeat):
            fps, cpu, _ = run_service(args, n, realtime=False, seconds=args.seconds)
            fps_runs.append(fps)
            cpu_runs.append(cpu)
            top_runs.append(ceiling(args, n, args.seconds))
        fps, top, cpu = (statistics.median(v) for v in (fps_runs, top_runs, cpu_runs))
        runs = " ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(fps_runs, top_runs))
        print(f"{n:>7} | {fps:>11.0f} | {top:>11.0f} | {fps / top:>6.1%} | {cpu:>11.2f} | {runs}")
        sys.stdout.flush()

    print()
    print("real-time cameras (the clip paced at its 30 fps, as a live camera):")
    print(f"{'cameras':>7} | {'fps each':>8} | {'CPU % of one core per camera':>28}")
    for n in counts:
        fps, cpu, _ = run_service(args, n, realtime=True, seconds=args.seconds)
        print(f"{n:>7} | {fps / n:>8.1f} | {100 * cpu / n:>28.2f}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
