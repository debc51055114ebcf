#!/usr/bin/env python3
"""cuframes-service at scale (GPU machine): real-time cameras, the decoders compared, FFmpeg's
own ceiling measured in the same run.

1. The ceiling: bench/nvdec_ceiling decodes the clip flat out in N threads (--ceiling-streams),
   with each decoder of --decoders it has (nvdec: libavcodec's CUDA hwaccel; cuvid: the *_cuvid
   decoders): frames/s, and CPU time per frame. nvcuvid (NVIDIA's parser and decoder called
   directly) has its ceiling in bench/nvcuvid_ceiling (tests/gpu/run.sh, stage nvcuvid) instead.
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
4. Where the CPU goes, per decoder, variant and count: the ingest threads' CPU by stage of their
   loop (the status file's "cpu" objects: open, read, decode, pace, convert, publish, other; the
   median over cameras of each stage's us per frame), and the process's other threads (CUDA's,
   libcuframes' ring threads, FFmpeg's, the main thread...) from /proc/PID/task/*/stat, grouped
   by thread name, in us per frame of the whole service.
Optionally (--flat-counts) the old table: N cameras decoded flat out (realtime: false) against
the ceiling with N streams.

--variants runs each row once per variant, interleaved: a variant is a name and environment
variables for the service (the experiments of issue 16: CUFRAMES_PUBLISH_SYNC,
CUFRAMES_CUDA_SCHED, CUFRAMES_DECODER_OPTS; docs/architecture.md). "NAME:VAR=V VAR2=V2;NAME2:...",
or "experiments" for the built-in set (EXPERIMENTS below); "base" (no variables) is the default.

    service_bench.py --service BIN --ceiling BIN --clip FILE [--decoders nvdec,cuvid,nvcuvid]
        [--counts 8,32,64,100,128] [--window 30] [--warmup 5] [--ceiling-streams 16,64]
        [--ceiling-seconds 8] [--source file|rtsp] [--rtsp-per-server 16] [--flat-counts 1,8]
        [--variants base|experiments|"NAME:VAR=V ...;..."]
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

from _proc import CLK_TCK, GpuSampler, cpu_seconds, machine_cpu, stop, stop_all
from _proc import read_status as status

HERE = os.path.dirname(os.path.abspath(__file__))
MINI_RTSP = os.path.join(HERE, "..", "tests", "gpu", "mini_rtsp.py")


# The experiments of issue 16, each a variant of the service's environment (see --variants).
EXPERIMENTS = (
    "base;"
    "pub-blocking:CUFRAMES_PUBLISH_SYNC=blocking;"
    "pub-poll:CUFRAMES_PUBLISH_SYNC=poll;"
    "ctx-spin:CUFRAMES_CUDA_SCHED=spin;"
    "ctx-auto:CUFRAMES_CUDA_SCHED=auto;"
    "surf8:CUFRAMES_DECODER_OPTS=surfaces=8,extra_hw_frames=4"
)


def parse_variants(spec: str) -> list[tuple[str, dict]]:
    """"NAME:VAR=V VAR2=V2;NAME2" -> [(NAME, {VAR: V, VAR2: V2}), (NAME2, {})]."""
    if spec == "experiments":
        spec = EXPERIMENTS
    out = []
    for item in (x.strip() for x in spec.split(";")):
        if not item:
            continue
        name, _, rest = item.partition(":")
        env = {}
        for kv in rest.split():
            k, eq, v = kv.partition("=")
            if not eq:
                raise SystemExit(f"--variants: {kv!r} in {name!r} is not VAR=VALUE")
            env[k] = v
        out.append((name, env))
    return out


def thread_cpu(pid: int, ingest: set[int]) -> dict[str, float]:
    """CPU seconds of the threads of pid by name: the cameras' ingest threads (their tids from
    the status file) as "ingest"; the threads they started, which inherit their "cam:NAME"
    (FFmpeg's decoder threads), as "cam:*"; digits of other names (cuda0000..., pools) as '#'."""
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue  # the thread ended
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        if int(tid) in ingest:
            name = "ingest"
        elif name.startswith("cam:"):
            name = "cam:*"
        else:
            name = re.sub(r"[0-9]+", "#", name)
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


STAGES = ("open", "read", "decode", "pace", "convert", "publish", "other")


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


def run_service(args, n: int, decoder: str, realtime: bool, window: float,
                env: dict | None = None) -> dict:
    """Runs n cameras (with env added to the service's environment); returns the window's
    figures."""
    servers = None
    if args.source == "rtsp":
        servers = RtspServers(args.clip, n, args.rtsp_per_server)
    try:
        with tempfile.TemporaryDirectory(prefix="cuframes-bench-") as tmp:
            return _run_service(args, tmp, n, decoder, realtime, window, servers, env or {})
    finally:
        if servers is not None:
            servers.close()


def _run_service(args, tmp, n, decoder, realtime, window, servers, env) -> dict:
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
                            preexec_fn=_raise_nofile, env={**os.environ, **env})
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
                errors = [c["error"] for c in cams if c["state"] != "streaming" and c["error"]]
                bad = [c["decoder"] for c in up if c["decoder"] != decoder]
                if bad:
                    raise RuntimeError(f"decoder is {bad[0]}, not {decoder}")
                if len(up) == n:
                    break
            if time.monotonic() > deadline:
                out["not_streaming"] = n - len(up)
                out["why_not"] = errors[0] if st is not None and errors else ""
                break
            time.sleep(0.1)
        out["start_s"] = args.start_timeout - (deadline - time.monotonic())
        time.sleep(args.warmup)  # the start's burst (probing, first frames) out of the window
        with GpuSampler() as gpu:
            s0, c0, m0, t0 = status(path), cpu_seconds(proc.pid), machine_cpu(), time.monotonic()
            ingest = {c.get("cpu", {}).get("tid", 0) for c in s0["cameras"].values()}
            th0 = thread_cpu(proc.pid, ingest)
            time.sleep(window)
            s1, c1, m1, t1 = status(path), cpu_seconds(proc.pid), machine_cpu(), time.monotonic()
            th1 = thread_cpu(proc.pid, ingest)
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
        out["stages"] = stage_breakdown(s0, s1)
        frames = total * dt
        out["threads"] = {k: 1e6 * (v - th0.get(k, 0.0)) / frames if frames > 0 else float("nan")
                          for k, v in th1.items()}
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


def stage_breakdown(s0: dict, s1: dict) -> dict:
    """From two status files: per stage (and "thread": the ingest thread's CPU, "sum": the
    stages'), the median over cameras of CPU us per frame over the window."""
    per_cam: dict[str, list[float]] = {k: [] for k in (*STAGES, "thread", "sum")}
    for name, c in s1["cameras"].items():
        a, b = s0["cameras"].get(name, {}).get("cpu"), c.get("cpu")
        if not a or not b:
            continue
        frames = b["frames"] - a["frames"]
        if frames <= 0:
            continue
        total = 0.0
        for st in STAGES:
            v = (b[f"{st}_us"] - a[f"{st}_us"]) / frames
            per_cam[st].append(v)
            total += v
        per_cam["sum"].append(total)
        if b.get("thread_us") and a.get("thread_us"):
            per_cam["thread"].append((b["thread_us"] - a["thread_us"]) / frames)
    return {k: statistics.median(v) if v else float("nan") for k, v in per_cam.items()}


def print_breakdown(rows: list[tuple[str, str, dict]]) -> None:
    """Where the CPU goes: the ingest threads by stage, then the process's threads by name."""
    print("\nwhere the CPU per frame goes, us per frame (ingest: median over cameras of each "
          "stage; sum: of the stages; thread: the ingest thread's own clock)")
    head = " | ".join(f"{s:>7}" for s in (*STAGES, "sum", "thread"))
    print(f"{'decoder':>8} | {'variant':>12} | {'cams':>4} | {head}")
    for d, v, r in rows:
        st = r["stages"]
        cells = " | ".join(f"{st[s]:>7.1f}" for s in (*STAGES, "sum", "thread"))
        print(f"{d:>8} | {v:>12} | {r['n']:>4} | {cells}")
    print("\nthe service's threads by name, CPU us per frame of the whole service (ingest: all "
          "cameras' ingest threads; cam:*: threads they started, e.g. FFmpeg's; top 8 and the "
          "rest)")
    for d, v, r in rows:
        th = sorted(r["threads"].items(), key=lambda kv: -kv[1])
        top = ", ".join(f"{k} {val:.0f}" for k, val in th[:8])
        rest = sum(val for _, val in th[8:])
        print(f"{d:>8} | {v:>12} | {r['n']:>4} | {top}{f', rest {rest:.0f}' if th[8:] else ''}")
    sys.stdout.flush()


# The decoders bench/nvdec_ceiling --decoder takes: FFmpeg's (nvcuvid's is bench/nvcuvid_ceiling).
CEILING_DECODERS = ("nvdec", "cuvid")


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
        why = f" (one said: {r['why_not']})" if r.get("why_not") else ""
        return f"{r['not_streaming']} cameras never streamed within {args.start_timeout:.0f} s{why}"
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
    ap.add_argument("--decoders", default="nvdec,cuvid,nvcuvid",
                    help="the service's GPU decoders to compare (its decoder: values)")
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
    ap.add_argument("--variants", default="base",
                    help='"NAME:VAR=V VAR2=V2;NAME2:..." or "experiments": the service\'s '
                    "environment per variant, interleaved in every row")
    args = ap.parse_args()
    variants = parse_variants(args.variants)
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
        # FFmpeg's own ceiling always: that of each FFmpeg decoder compared, else nvdec's.
        ff = [d for d in decoders if d in CEILING_DECODERS] or ["nvdec"]
        if any(d not in CEILING_DECODERS for d in decoders):
            print(" (nvcuvid is not FFmpeg's: its ceiling is bench/nvcuvid_ceiling's)")
        for n in streams:
            for d in ff:
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
                    top, _ = ceiling(args, n, d) if d in CEILING_DECODERS else (float("nan"), 0)
                    print(f"{d:>8} | {n:>7} | {r['total']:>11.0f} | {top:>11.0f} | "
                          f"{r['total'] / top:>6.1%}")
                except Exception as e:  # noqa: BLE001
                    print(f"{d:>8} | {n:>7} | FAILED: {e}")
                sys.stdout.flush()

    counts = ints(args.counts)
    print(f"\nreal-time cameras ({args.source}, 30 fps each), {args.window:.0f} s window after "
          f"{args.warmup:.0f} s of warm-up; fps per camera over the window; CPU: the service "
          "process; machine: every core; NVDEC and SM: NVML mean/max %")
    for name, env in variants:
        if env:
            print(f"variant {name}: " + " ".join(f"{k}={v}" for k, v in env.items()))
    print(f"{'decoder':>8} | {'variant':>12} | {'cams':>4} | {'min fps':>7} | {'median':>6} | "
          f"{'<' + str(args.min_fps):>5} | "
          f"{'total fps':>9} | {'dropped':>7} | {'CPU %/cam':>9} | {'CPU us/fr':>9} | "
          f"{'machine %':>9} | {'NVDEC %':>7} | {'SM %':>7} | start s")
    results: dict[str, list[dict]] = {d: [] for d in decoders}  # the first variant's
    breakdown: list[tuple[str, str, dict]] = []
    for n in counts:
        for d in decoders:
            for vname, env in variants:
                try:
                    r = run_service(args, n, d, realtime=True, window=args.window, env=env)
                except Exception as e:  # noqa: BLE001
                    print(f"{d:>8} | {vname:>12} | {n:>4} | FAILED: {e}")
                    sys.stdout.flush()
                    continue
                if vname == variants[0][0]:
                    results[d].append(r)
                breakdown.append((d, vname, r))
                print(f"{d:>8} | {vname:>12} | {n:>4} | {r['min']:>7.1f} | {r['median']:>6.1f} | "
                      f"{r['under']:>5} | {r['total']:>9.0f} | {r['dropped']:>7} | "
                      f"{r['cpu_pct_per_cam']:>9.2f} | {r['cpu_us_per_frame']:>9.0f} | "
                      f"{r['machine_pct']:>9.0f} | {GpuSampler.fmt(r['dec']):>7} | "
                      f"{GpuSampler.fmt(r['sm']):>7} | {r['start_s']:.0f}")
                if r["gpu_error"]:
                    print(f"         ({r['gpu_error']})")
                if r["not_streaming"]:
                    print(f"         ({r['not_streaming']} cameras never streamed; one said: "
                          f"{r.get('why_not') or '-'})")
                sys.stdout.flush()
    if breakdown:
        print_breakdown(breakdown)

    print(f"\nwhere the limit is ({variants[0][0]}):")
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
