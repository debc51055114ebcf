#!/usr/bin/env python3
"""cuframes-service at scale (GPU machine): real-time cameras, the decoders compared, FFmpeg's
own ceiling measured in the same run.

1. The ceiling: bench/nvdec_ceiling decodes the clip flat out in N threads (--ceiling-streams),
   with each decoder of --decoders (nvdec: libavcodec's CUDA hwaccel; cuvid: the *_cuvid
   decoders): frames/s, and CPU time per frame.
2. Real-time cameras: for each count of --counts, for each decoder (interleaved, so both meet the
   same machine), cuframes-service runs that many cameras of the clip paced at its rate
   (realtime: true, loop: true, memory: cuda), or served over RTSP by tests/gpu/mini_rtsp.py
   (--source rtsp). Once every camera streams and a warm-up passed, over --window seconds:
   every camera's frames/s (from the status file's frame counters: the minimum, the median,
   how many cameras are under --min-fps), the total, frames the rings dropped, the service's
   CPU per camera (% of one core) and per frame, the machine's CPU use, and the GPU's decoder
   and SM utilisation (NVML, pynvml, sampled every 0.5 s: mean and max).
3. A verdict per row: where the limit is, and why (NVDEC engines busy, CPU saturated, CPU per
   frame growing with the camera count: contention, or neither: latency in the per-camera loop).
Optionally (--flat-counts) the old table: N cameras decoded flat out (realtime: false) against
the ceiling with N streams.

    service_bench.py --service BIN --ceiling BIN --clip FILE [--decoders nvdec,cuvid]
        [--counts 8,32,64,100,128] [--window 30] [--warmup 5] [--ceiling-streams 16,64]
        [--ceiling-seconds 8] [--source file|rtsp] [--rtsp-per-server 16] [--flat-counts 1,8]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from _proc import GpuSampler, cpu_seconds, machine_cpu, stop, stop_all
from _proc import read_status as status

HERE = os.path.dirname(os.path.abspath(__file__))
MINI_RTSP = os.path.join(HERE, "..", "tests", "gpu", "mini_rtsp.py")


class RtspServers:
    """mini_rtsp.py processes serving the clip, `per` cameras each (a Python server's threads
    share one GIL: several processes keep the server from being the limit)."""

    def __init__(self, clip: str, cameras: int, per: int):
        self.procs, self.urls = [], []
        for _ in range((cameras + per - 1) // per):
            p = subprocess.Popen([sys.executable, MINI_RTSP, "--port", "0", "--mount",
                                  f"cam={os.path.abspath(clip)}"],
                                 stdout=subprocess.PIPE, text=True)
            self.procs.append(p)
            line = p.stdout.readline().strip()
            if not line.startswith("READY "):
                self.close()
                raise RuntimeError(f"mini_rtsp.py did not start: {line!r}")
            self.urls.append(line.split()[1])

    def url(self, i: int, per: int) -> str:
        return self.urls[i // per]

    def close(self):
        stop_all(self.procs, timeout=10)


def _raise_nofile() -> None:
    """The service's fd limit up to the hard one: 128 cameras take some 10 fds each (ring,
    sockets, eventfds, the file, NVDEC), past a 1024 soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_service(args, n: int, decoder: str, realtime: bool, window: float) -> dict:
    """Runs n cameras; returns the window's figures."""
    servers = None
    if args.source == "rtsp":
        servers = RtspServers(args.clip, n, args.rtsp_per_server)
    try:
        with tempfile.TemporaryDirectory(prefix="cuframes-bench-") as tmp:
            return _run_service(args, tmp, n, decoder, realtime, window, servers)
    finally:
        if servers is not None:
            servers.close()


def _run_service(args, tmp, n, decoder, realtime, window, servers) -> dict:
    run = os.path.join(tmp, "run")
    cfg = os.path.join(tmp, "bench.yaml")
    with open(cfg, "w") as f:
        f.write(f"runtime_dir: {run}\nstatus_interval: 500ms\nlog: {{level: warn}}\ncameras:\n")
        for i in range(n):
            if servers is None:
                f.write(f"  cam{i}: {{url: {os.path.abspath(args.clip)}, decoder: {decoder}, "
                        f"memory: {args.memory}, loop: true, realtime: {str(realtime).lower()}}}\n")
            else:
                f.write(f"  cam{i}: {{url: '{servers.url(i, args.rtsp_per_server)}', "
                        f"decoder: {decoder}, memory: {args.memory}}}\n")
    log = open(os.path.join(tmp, "service.log"), "w+")
    proc = subprocess.Popen([args.service, "--config", cfg], stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_raise_nofile)
    path = os.path.join(run, "cuframes-service.json")
    out = {"n": n, "decoder": decoder, "not_streaming": 0}
    try:
        deadline = time.monotonic() + args.start_timeout
        up: list = []
        while True:  # every camera streaming (the status file says so), or the deadline
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError("the service exited: " + log.read()[-2000:])
            st = status(path) if os.path.exists(path) else None
            if st is not None:
                cams = list(st["cameras"].values())
                up = [c for c in cams if c["state"] == "streaming" and c["frames"] > 30]
                bad = [c["decoder"] for c in up if c["decoder"] != decoder]
                if bad:
                    raise RuntimeError(f"decoder is {bad[0]}, not {decoder}")
                if len(up) == n:
                    break
            if time.monotonic() > deadline:
                out["not_streaming"] = n - len(up)
                break
            time.sleep(0.1)
        out["start_s"] = args.start_timeout - (deadline - time.monotonic())
        time.sleep(args.warmup)  # the start's burst (probing, first frames) out of the window
        with GpuSampler() as gpu:
            s0, c0, m0, t0 = status(path), cpu_seconds(proc.pid), machine_cpu(), time.monotonic()
            time.sleep(window)
            s1, c1, m1, t1 = status(path), cpu_seconds(proc.pid), machine_cpu(), time.monotonic()
        # Frame counters and uptime come from the same write of the status file: its own clock
        # (0.1 s) times the window, not when this script happened to read it.
        dt = s1["uptime_s"] - s0["uptime_s"]
        if dt <= 0:
            dt = t1 - t0
        per = []
        dropped = 0
        for name, c in s1["cameras"].items():
            before = s0["cameras"].get(name, {"frames": 0, "dropped": 0})
            per.append((c["frames"] - before["frames"]) / dt)
            dropped += c.get("dropped", 0) - before.get("dropped", 0)
        per += [0.0] * (n - len(per))
        total = sum(per)
        cpu = (c1 - c0) / (t1 - t0)
        out.update(
            per=per, total=total, min=min(per), median=statistics.median(per),
            under=sum(1 for v in per if v < args.min_fps), dropped=dropped,
            cpu_pct_per_cam=100 * cpu / n,
            cpu_us_per_frame=1e6 * cpu / total if total > 0 else float("nan"),
            machine_pct=100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1]),
            dec=gpu.dec, sm=gpu.sm, gpu_error=gpu.error)
        return out
    finally:
        stop(proc, timeout=60)
        log.close()


def ceiling(args, n: int, decoder: str) -> tuple[float, float]:
    """FFmpeg flat out, n streams: (frames/s, CPU us per frame)."""
    out = subprocess.run([args.ceiling, "--seconds", str(args.ceiling_seconds), "--streams",
                          str(n), "--decoder", decoder, args.clip],
                         check=True, capture_output=True, text=True).stdout
    fps = float(re.search(r"fps=([0-9.]+)", out).group(1))
    cpu = re.search(r"cpu_us_per_frame=([0-9.]+)", out)
    return fps, float(cpu.group(1)) if cpu else float("nan")


def verdict(r: dict, first: dict | None, args) -> str:
    """Where the limit is, and why, from what was measured."""
    dec_max = max(r["dec"]) if r["dec"] else None
    if r["not_streaming"]:
        return f"{r['not_streaming']} cameras never streamed within {args.start_timeout:.0f} s"
    if r["under"] == 0:
        why = "every camera at rate"
        if dec_max is not None:
            why += f"; NVDEC {statistics.mean(r['dec']):.0f}% busy"
        return why
    reasons = []
    if dec_max is not None and statistics.mean(r["dec"]) >= 90:
        reasons.append(f"the NVDEC engines (decoder utilisation {statistics.mean(r['dec']):.0f}%)")
    if r["machine_pct"] >= 90:
        reasons.append(f"the CPU (machine {r['machine_pct']:.0f}% busy)")
    if first is not None and first is not r and r["cpu_us_per_frame"] > 1.25 * first[
            "cpu_us_per_frame"]:
        reasons.append(
            f"CPU per frame grows ({first['cpu_us_per_frame']:.0f} -> "
            f"{r['cpu_us_per_frame']:.0f} us from {first['n']} cameras): contention in the decode "
            "path (driver locks, per-frame syncs)")
    if not reasons:
        reasons.append("neither engines nor CPU saturated: latency in each camera's loop "
                       "(decode, map, copy and sync in series per frame)")
    return f"{r['under']} cameras under {args.min_fps} fps; limit: " + "; ".join(reasons)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--service", required=True)
    ap.add_argument("--ceiling", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--decoders", default="nvdec,cuvid")
    ap.add_argument("--counts", default="8,32,64,100,128", help="real-time cameras")
    ap.add_argument("--window", type=float, default=30, help="measurement window, s")
    ap.add_argument("--warmup", type=float, default=5, help="s after every camera streams")
    ap.add_argument("--start-timeout", type=float, default=90)
    ap.add_argument("--min-fps", type=float, default=29.5, help="a camera at rate")
    ap.add_argument("--ceiling-streams", default="16,64", help="0 to skip the ceiling")
    ap.add_argument("--ceiling-seconds", type=float, default=8)
    ap.add_argument("--source", choices=("file", "rtsp"), default="file")
    ap.add_argument("--memory", default="cuda", help="the rings' (host: a try without a GPU)")
    ap.add_argument("--rtsp-per-server", type=int, default=16,
                    help="cameras per mini_rtsp.py process (--source rtsp)")
    ap.add_argument("--flat-counts", default="",
                    help="also the flat-out table (realtime: false) against the ceiling")
    ap.add_argument("--seconds", type=float, default=8, help="the flat-out table's windows")
    args = ap.parse_args()
    # "16,64"; "" or "0" for none (quotes kept by a shell variable's word splitting ignored)
    ints = lambda s: [n for n in (int(x) for x in s.strip("'\"").split(",") if x) if n > 0]  # noqa: E731
    decoders = [d for d in args.decoders.split(",") if d]
    clip = os.path.basename(args.clip)
    print(f"cuframes-service at scale: {clip}, memory: {args.memory}, decoders {', '.join(decoders)}, "
          f"source {args.source}")
    sys.stdout.flush()

    streams = ints(args.ceiling_streams)
    if streams:
        print("\nFFmpeg's ceiling (bench/nvdec_ceiling: decode only, flat out, frames left on the "
              f"GPU), {args.ceiling_seconds:.0f} s each:")
        print(f"{'decoder':>8} | {'streams':>7} | {'fps':>7} | {'= cams at 30':>12} | "
              f"{'CPU us/frame':>12}")
        for n in streams:
            for d in decoders:
                try:
                    fps, cpu = ceiling(args, n, d)
                    print(f"{d:>8} | {n:>7} | {fps:>7.0f} | {fps / 30:>12.0f} | {cpu:>12.0f}")
                except Exception as e:  # noqa: BLE001 - one failed run, the rest go on
                    print(f"{d:>8} | {n:>7} | FAILED: {e}")
                sys.stdout.flush()

    flat = ints(args.flat_counts)
    if flat:
        print(f"\nflat out (realtime: false), {args.seconds:.0f} s windows, against the ceiling:")
        print(f"{'decoder':>8} | {'cameras':>7} | {'service fps':>11} | {'ceiling fps':>11} | "
              f"{'ratio':>6}")
        for n in flat:
            for d in decoders:
                try:
                    r = run_service(args, n, d, realtime=False, window=args.seconds)
                    top, _ = ceiling(args, n, d)
                    print(f"{d:>8} | {n:>7} | {r['total']:>11.0f} | {top:>11.0f} | "
                          f"{r['total'] / top:>6.1%}")
                except Exception as e:  # noqa: BLE001
                    print(f"{d:>8} | {n:>7} | FAILED: {e}")
                sys.stdout.flush()

    counts = ints(args.counts)
    print(f"\nreal-time cameras ({args.source}, 30 fps each), {args.window:.0f} s window after "
          f"{args.warmup:.0f} s of warm-up; fps per camera over the window; CPU: the service "
          "process; machine: every core; NVDEC and SM: NVML mean/max %")
    print(f"{'decoder':>8} | {'cams':>4} | {'min fps':>7} | {'median':>6} | {'<' + str(args.min_fps):>5} | "
          f"{'total fps':>9} | {'dropped':>7} | {'CPU %/cam':>9} | {'CPU us/fr':>9} | "
          f"{'machine %':>9} | {'NVDEC %':>7} | {'SM %':>7} | start s")
    results: dict[str, list[dict]] = {d: [] for d in decoders}
    for n in counts:
        for d in decoders:
            try:
                r = run_service(args, n, d, realtime=True, window=args.window)
            except Exception as e:  # noqa: BLE001
                print(f"{d:>8} | {n:>4} | FAILED: {e}")
                sys.stdout.flush()
                continue
            results[d].append(r)
            print(f"{d:>8} | {n:>4} | {r['min']:>7.1f} | {r['median']:>6.1f} | {r['under']:>5} | "
                  f"{r['total']:>9.0f} | {r['dropped']:>7} | {r['cpu_pct_per_cam']:>9.2f} | "
                  f"{r['cpu_us_per_frame']:>9.0f} | {r['machine_pct']:>9.0f} | "
                  f"{GpuSampler.fmt(r['dec']):>7} | {GpuSampler.fmt(r['sm']):>7} | "
                  f"{r['start_s']:.0f}")
            if r["gpu_error"]:
                print(f"         ({r['gpu_error']})")
            sys.stdout.flush()

    print("\nwhere the limit is:")
    for d in decoders:
        rows = results[d]
        for r in rows:
            print(f"{d:>8} | {r['n']:>4} cameras: {verdict(r, rows[0] if rows else None, args)}")
        if len(rows) >= 2:
            a, b = rows[0], rows[-1]
            print(f"{d:>8} | CPU per camera {a['cpu_pct_per_cam']:.2f}% at {a['n']} -> "
                  f"{b['cpu_pct_per_cam']:.2f}% at {b['n']} "
                  f"({b['cpu_pct_per_cam'] / a['cpu_pct_per_cam']:.2f}x; target <= 1.25x)")
        at_rate = [r["n"] for r in rows if r["under"] == 0 and not r["not_streaming"]]
        print(f"{d:>8} | most cameras with every one >= {args.min_fps} fps: "
              f"{max(at_rate) if at_rate else 'none'} (target >= 120)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
