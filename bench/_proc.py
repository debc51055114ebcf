"""What the benchmarks in bench/ share about the processes they run and the machine they measure:
a process's CPU time and the machine's from /proc, a child stopped (SIGTERM, then SIGKILL), the
service's status file read while it is being replaced, and NVML's GPU utilisation sampled in a
thread. Imported by bench/*_bench.py (run as scripts: their folder is on sys.path).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import threading
import time
from typing import Optional

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The CPU time of process pid so far: utime + stime of every thread, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold ')'
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat; idle and iowait are idle)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def stop(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM, up to timeout seconds for the process to exit, then SIGKILL; its exit status.
    A process that already exited is only reaped."""
    return stop_all([proc], timeout)[0]


def stop_all(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    """stop() for several processes at once: every one is sent SIGTERM first, so they end
    together; then each has up to timeout seconds before SIGKILL. Their exit statuses."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    out = []
    for p in procs:
        try:
            out.append(p.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            p.kill()
            out.append(p.wait())
    return out


def read_status(path: str) -> dict:
    """The service's status file; read again while it is being replaced (write + rename)."""
    for _ in range(200):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.01)
    raise RuntimeError(f"cannot read {path}")


class GpuSampler:
    """NVML utilisation of GPU 0 (nvidia-ml-py), sampled every `interval` seconds in a thread
    between start() and stop() (or a `with` block): `sm` (the SMs' %) and `dec` (the NVDEC
    engines' %), one value each per sample. Without NVML there are no samples and `error` says
    why (for the table, not fatal)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.sm: list[int] = []
        self.dec: list[int] = []
        self.error = ""
        self.name = "?"
        self._nvml = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        try:
            import pynvml
            pynvml.nvmlInit()
            self._h = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.name = pynvml.nvmlDeviceGetName(self._h)
            self._nvml = pynvml
        except Exception as e:  # noqa: BLE001 - any failure: no GPU figures, said in the table
            self.error = f"NVML unavailable: {e!r}"

    def start(self) -> "GpuSampler":
        """Starts a new series of samples (the previous ones are dropped)."""
        self.stop()
        self.sm, self.dec = [], []
        self._stop.clear()
        if self._nvml is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sm.append(self._nvml.nvmlDeviceGetUtilizationRates(self._h).gpu)
                self.dec.append(self._nvml.nvmlDeviceGetDecoderUtilization(self._h)[0])
            except Exception as e:  # noqa: BLE001 - kept for the table
                self.error = str(e)

    def __enter__(self) -> "GpuSampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def mean(v: list[int]) -> float:
        return statistics.mean(v) if v else float("nan")

    @staticmethod
    def fmt(v: list[int]) -> str:
        """mean/max of a series, for a table column."""
        return f"{statistics.mean(v):3.0f}/{max(v):3.0f}" if v else "  n/a"
