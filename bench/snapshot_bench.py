#!/usr/bin/env python3
"""Snapshot benchmark (GPU machine): what a camera snapshot costs, and whether the cameras notice.

One cuframes-service, one config rewritten and reloaded (SIGHUP: the cameras keep running; only
the MQTT monitor and the snapshot worker change) between two modes, interleaved and repeated:

  off  mqtt.snapshot_interval: 0
  on   mqtt.snapshot_interval: INTERVAL (default 0.2 s) at snapshot_width WIDTH (default 640)

The MQTT monitor points at a closed port: the pictures are made (that is what costs) and then
dropped, so no broker is needed. Cameras: FLAT cameras decoding the clip as fast as NVDEC goes
(realtime: false; their total frames/s shows any contention) and one paced camera (realtime:
true; its fps must stay the clip's). Each window: frames/s from the status file, the service
process's CPU (utime + stime), and from /metrics (the HTTP endpoint) the snapshots made and the
CPU and GPU seconds the worker counted for them. Prints one row per window and the medians.

    snapshot_bench.py --service BIN --clip FILE [--flat 4] [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from _proc import cpu_seconds, stop
from _proc import read_status as status


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metrics(port: int) -> dict[str, float]:
    """Sums over the cameras of the snapshot counters in /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("cuframes_camera_snapshot"):
            name = line.split("{", 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def write_config(path: str, args, run: str, http_port: int, mqtt_port: int, on: bool) -> None:
    cams = {f"flat{i}": {"url": args.clip, "realtime": False} for i in range(args.flat)}
    cams["paced"] = {"url": args.clip, "realtime": True}
    lines = [f"runtime_dir: {json.dumps(run)}", "log: {level: warn}", "status_interval: 100ms",
             "defaults: {memory: cuda, decoder: nvdec, loop: true}", "cameras:"]
    for name, c in cams.items():
        lines.append(f"  {name}: {{url: {json.dumps(c['url'])}, realtime: "
                     f"{'true' if c['realtime'] else 'false'}}}")
    interval = f"{int(args.interval * 1000)}ms" if on else "0"
    lines += ["mqtt:", "  host: 127.0.0.1", f"  port: {mqtt_port}", "  node_id: bench",
              f"  snapshot_interval: {interval}", f"  snapshot_width: {args.width}",
              "http:", f"  listen: \"127.0.0.1:{http_port}\""]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--service", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--flat", type=int, default=4, help="cameras decoding flat out")
    ap.add_argument("--rounds", type=int, default=3, help="off/on pairs, interleaved")
    ap.add_argument("--seconds", type=float, default=8.0, help="measured window per mode")
    ap.add_argument("--settle", type=float, default=2.0, help="after each reload")
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--width", type=int, default=640)
    args = ap.parse_args()
    args.clip = os.path.abspath(args.clip)

    with tempfile.TemporaryDirectory(prefix="cuframes-snapbench-") as tmp:
        run = os.path.join(tmp, "run")
        cfg = os.path.join(tmp, "svc.yaml")
        http_port, mqtt_port = free_port(), free_port()  # nothing listens on mqtt_port
        write_config(cfg, args, run, http_port, mqtt_port, on=False)
        log = open(os.path.join(tmp, "service.log"), "wb")
        proc = subprocess.Popen([args.service, "--config", cfg], stdout=log,
                                stderr=subprocess.STDOUT)
        status_path = os.path.join(run, "cuframes-service.json")
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the service exited with {proc.returncode}")
                try:
                    st = status(status_path)
                    if all(c["state"] == "streaming" for c in st["cameras"].values()) and \
                            len(st["cameras"]) == args.flat + 1:
                        metrics(http_port)
                        break
                except (RuntimeError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("cameras not streaming (or no HTTP) within 60 s")
                time.sleep(0.2)
            st = status(status_path)
            paced = st["cameras"]["paced"]
            print(f"{args.flat} flat-out + 1 paced NVDEC cameras of {os.path.basename(args.clip)} "
                  f"({paced['width']}x{paced['height']} {paced['codec']}, memory "
                  f"{paced['memory']}, decoder {paced['decoder']}); snapshots every "
                  f"{args.interval} s at {args.width} wide when on; {args.rounds} rounds of "
                  f"off/on, {args.seconds} s each")
            print(f"{'round':>5} {'mode':>4} {'flat fps':>9} {'paced fps':>9} {'snaps/s':>8} "
                  f"{'CPU ms/snap':>11} {'GPU ms/snap':>11} {'proc CPU %':>10}")
            rows: dict[str, list[tuple[float, ...]]] = {"off": [], "on": []}
            for r in range(args.rounds):
                for mode in ("off", "on"):
                    write_config(cfg, args, run, http_port, mqtt_port, on=mode == "on")
                    proc.send_signal(signal.SIGHUP)
                    time.sleep(args.settle)  # the reload, then the worker's first round
                    if proc.poll() is not None:
                        raise RuntimeError(f"the service exited with {proc.returncode}")
                    s0, m0, c0, t0 = status(status_path), metrics(http_port), \
                        cpu_seconds(proc.pid), time.monotonic()
                    time.sleep(args.seconds)  # the measured window
                    s1, m1, c1, t1 = status(status_path), metrics(http_port), \
                        cpu_seconds(proc.pid), time.monotonic()
                    dt = t1 - t0
                    flat = sum(s1["cameras"][f"flat{i}"]["frames"] - s0["cameras"][f"flat{i}"]
                               ["frames"] for i in range(args.flat)) / dt
                    pfps = (s1["cameras"]["paced"]["frames"] -
                            s0["cameras"]["paced"]["frames"]) / dt
                    snaps = m1["cuframes_camera_snapshots_total"] - \
                        m0["cuframes_camera_snapshots_total"]
                    cpu_ms = gpu_ms = float("nan")
                    if snaps > 0:
                        cpu_ms = (m1["cuframes_camera_snapshot_cpu_seconds_total"] -
                                  m0["cuframes_camera_snapshot_cpu_seconds_total"]) / snaps * 1e3
                        gpu_ms = (m1["cuframes_camera_snapshot_gpu_seconds_total"] -
                                  m0["cuframes_camera_snapshot_gpu_seconds_total"]) / snaps * 1e3
                    proc_cpu = (c1 - c0) / dt * 100
                    rows[mode].append((flat, pfps, snaps / dt, cpu_ms, gpu_ms, proc_cpu))
                    print(f"{r + 1:>5} {mode:>4} {flat:>9.1f} {pfps:>9.2f} {snaps / dt:>8.2f} "
                          f"{cpu_ms:>11.2f} {gpu_ms:>11.3f} {proc_cpu:>10.1f}", flush=True)
            med = {m: [statistics.median(x[i] for x in rows[m]) for i in range(6)]
                   for m in rows}
            print("medians:")
            for m in ("off", "on"):
                v = med[m]
                print(f"{'':>5} {m:>4} {v[0]:>9.1f} {v[1]:>9.2f} {v[2]:>8.2f} {v[3]:>11.2f} "
                      f"{v[4]:>11.3f} {v[5]:>10.1f}")
            off, on = med["off"], med["on"]
            extra = (on[5] - off[5]) / on[2] * 10 if on[2] > 0 else float("nan")
            print(f"on/off: flat-out fps {on[0] / off[0]:.3f}x, paced fps {on[1] / off[1]:.3f}x; "
                  f"per snapshot: worker CPU {on[3]:.2f} ms, GPU {on[4]:.3f} ms, process CPU "
                  f"{extra:.2f} ms (extra process CPU / snapshots)")
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with {proc.returncode}")
        finally:
            stop(proc, timeout=20)
            log.close()
            tail = open(os.path.join(tmp, "service.log"), errors="replace").read()[-3000:]
            if proc.returncode not in (0, None):
                print(f"service log tail:\n{tail}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
