"""python_bench.py's pieces that are not cuframes: the per-frame samples, the subscriber
episodes of the peers (torch.multiprocessing CUDA IPC, host shared memory + H2D) and the C path
(cuframes_bench run and its rows read). See python_bench.py."""

from __future__ import annotations

import mmap
import os
import subprocess
import time
from typing import Any, Callable, Optional

import numpy as np

WARMUP = 10  # frames per subscriber and episode left out of every figure
POOL = 8  # torch-ipc and shm-h2d slots, as a cuframes ring's
STEPS = ("publish", "pub2pub", "wake", "import", "sync", "release")
# Latency from the publication (the publish() call's end; torch-ipc and shm-h2d: the put) to the
# synchronised tensor: the subscriber's side alone, without the publisher's copy in it.
AFTER = "after"
# --warm-import: the import again on the same frame, after the sync (out of the latency): what
# the first import pays for the subscriber's caches gone cold in the 5 ms it slept.
WARM = "warm"
# cuframes arms: the wake split where it was noted (_wake_probe): publication -> the core's wait
# ended, -> the GIL back, -> next_frame() returned to Python.
WAKE_PARTS = ("w_core", "w_gil", "w_py")
# cuframes arms, the producer's publish(tensor) calls (_publish_probe): the call -> publish()
# entered, -> the core's call began, -> it returned, -> back in Python.
PUBLISH_PARTS = ("p_in", "p_pre", "p_core", "p_out")
# cuframes arms: the latency and pts -> publication of the frames published through torch's C
# export (odd pts_ns), kept apart from "lat" and "pub2pub" (the default path's, even pts_ns).
EXPORTED = ("lat_x", "pub2pub_x")
# cuframes-cpu: the subscriber thread's CPU time per step (time.thread_time_ns read between
# them): next_frame() (its wait and the tensors made ahead), of which the making (refill, wall
# time: pure CPU), frame.torch(), synchronize(), the tensor dropped + release(), and the bench's
# own bookkeeping from one frame's release to the next wait.
CPU_PARTS = ("c_next", "c_refill", "c_import", "c_sync", "c_release", "c_book")
# Every per-frame sample a subscriber reports.
SAMPLED = ("lat", AFTER) + STEPS + (WARM,) + WAKE_PARTS + EXPORTED + CPU_PARTS
now_ns = time.monotonic_ns  # CLOCK_MONOTONIC, the clock of pts_ns


class Samples:
    """Per-frame samples of one subscriber and episode, warm-up left out, plus its CPU time:
    the process's (every thread) and this thread's. Each frame's clock readings are kept as
    they are (one tuple appended) and turned into steps by derive() at the end, so that the
    bench's own bookkeeping costs each arm about the same small CPU time per frame."""

    def __init__(self, derive: Callable[[tuple], dict[str, int]]) -> None:
        self.derive = derive
        self.raw: list[tuple] = []
        self.cpu0: Optional[float] = None
        self.thread0 = 0.0

    @property
    def seen(self) -> int:
        return len(self.raw)

    def add(self, raw: tuple) -> None:
        self.raw.append(raw)
        if len(self.raw) == WARMUP:  # CPU counted from the end of the warm-up
            self.cpu0 = time.process_time()
            self.thread0 = time.thread_time()

    def result(self) -> dict[str, Any]:
        cpu = thread = 0.0
        if self.cpu0 is not None:
            cpu = time.process_time() - self.cpu0
            thread = time.thread_time() - self.thread0
        v: dict[str, list[int]] = {k: [] for k in SAMPLED}
        for raw in self.raw[WARMUP:]:
            for k, x in self.derive(raw).items():
                v[k].append(x)
        frames = max(0, self.seen - WARMUP)
        per = 1e6 / frames if frames else 0.0
        return {"frames": frames, "cpu_us": cpu * per, "cpu_other_us": (cpu - thread) * per, **v}


def peer_steps(raw: tuple) -> dict[str, int]:
    """torch-ipc and shm-h2d: (got, imported, synchronised, dropped, pts, put)."""
    t1, t2, t3, t4, pts, put_ns = raw
    return {"lat": t3 - pts, AFTER: t3 - put_ns, "pub2pub": put_ns - pts, "wake": t1 - put_ns,
            "import": t2 - t1, "sync": t3 - t2, "release": t4 - t3}


def ep_torch_ipc(cuframes: Any, torch: Any, stream: Any, data: Any, results: Any, index: int,
                 p: dict[str, Any]) -> dict[str, Any]:
    s = Samples(peer_steps)
    results.put(("ready", index, p["episode"], None))
    while True:
        item = data.get()  # rebuilds the tensor: opens the IPC handle (cached), waits its event
        if item is None:
            break
        t1 = now_ns()
        x, pts, put_ns = item
        t2 = now_ns()
        stream.synchronize()
        t3 = now_ns()
        del x, item
        s.add((t1, t2, t3, now_ns(), pts, put_ns))
    return s.result()


def ep_shm(cuframes: Any, torch: Any, stream: Any, data: Any, results: Any, index: int,
           p: dict[str, Any]) -> dict[str, Any]:
    s = Samples(peer_steps)
    # The segment by its path: attaching through SharedMemory would register it with the
    # resource tracker, which unlinks it when this process exits.
    fd = os.open(f"/dev/shm/{p['shm']}", os.O_RDWR)  # writable, as SharedMemory maps it
    try:
        mm = mmap.mmap(fd, p["bytes"] * POOL)
    finally:
        os.close(fd)
    slots = np.frombuffer(mm, np.uint8).reshape(POOL, p["rows"], p["width"])
    results.put(("ready", index, p["episode"], None))
    while True:
        item = data.get()
        if item is None:
            break
        t1 = now_ns()
        slot, pts, put_ns = item
        if torch is not None:
            x = torch.from_numpy(slots[slot]).cuda()  # pageable host -> device, as Frigate's
            t2 = now_ns()
            stream.synchronize()
        else:
            x = slots[slot]  # host mode: read in place (no GPU to copy to)
            t2 = now_ns()
        t3 = now_ns()
        del x
        s.add((t1, t2, t3, now_ns(), pts, put_ns))
    del slots
    mm.close()
    return s.result()


def run_c(binary: str, args: list[str]) -> str:
    r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{binary} {' '.join(args)} failed: {r.stderr.strip()[-400:]}")
    return r.stdout


def kill_role(proc: subprocess.Popen) -> None:
    """A cuframes_bench role process killed and reaped (its pipes drained)."""
    proc.kill()
    proc.communicate()


def start_c_role(binary: str, role: str, args: list[str]) -> subprocess.Popen:
    """cuframes_bench --role ROLE with args, once it said READY (a producer: its ring made; a
    subscriber: attached)."""
    proc = subprocess.Popen([binary, "--role", role, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    if first != "READY":
        kill_role(proc)
        raise RuntimeError(f"cuframes_bench --role {role} said {first[:300]!r} instead of READY")
    return proc


def c_role_result(proc: subprocess.Popen, role: str, keys: tuple[str, ...],
                  timeout: float) -> dict[str, list[int]]:
    """The sample lists keys (ns) of a role's RESULT line, once it ended (killed after timeout
    seconds)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    for line in out.splitlines():
        if line.startswith("RESULT"):
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            return {k: [int(x) for x in fields.get(k, "").split(",") if x] for k in keys}
    raise RuntimeError(f"cuframes_bench --role {role} gave no RESULT (exit {proc.returncode}): "
                       f"{(out + err).strip()[-400:]}")


def run_c_producer(binary: str, args: list[str], started: Callable[[], None],
                   timeout: float) -> list[int]:
    """cuframes_bench --role producer with args: once it says READY, started() (the subscribers
    sent off and ready), then its publish() durations (ns) from its RESULT line."""
    proc = start_c_role(binary, "producer", args)
    try:
        started()
    except BaseException:  # it would wait for its subscribers for long
        kill_role(proc)
        raise
    return c_role_result(proc, "producer", ("publish",), timeout)["publish"]


def parse_c_row(line: str) -> Optional[dict[str, Any]]:
    """One scenario row of cuframes_bench: size path subs | p50 p99 after | wake p50 wake p99
    wake>20 | publish pub-late | sub fps | sub CPU | max pub max sub | steal."""
    parts = [p.split() for p in line.split("|")]
    if len(parts) != 8 or len(parts[0]) != 3 or not parts[0][2].isdigit():
        return None
    try:
        return {"size": parts[0][0], "path": parts[0][1], "subs": int(parts[0][2]),
                "p50": float(parts[1][0]), "p99": float(parts[1][1]),
                "after": float(parts[1][2]), "wake": float(parts[2][0]),
                "wake99": float(parts[2][1]), "publish": float(parts[3][0]),
                "cpu": float(parts[5][0])}
    except (ValueError, IndexError):
        return None


def c_floor(binary: str, sizes: list[str]) -> list[str]:
    """cuframes_bench's floors: publish() alone (cuda), the machine's wake-up; printed as is."""
    out = run_c(binary, ["--seconds", "0.5", "--only", "cuda", "--sizes", ",".join(sizes),
                         "--subs", "1"])
    keep = []
    for line in out.splitlines():
        if line.startswith("Latency"):  # the scenarios follow the floors
            break
        if line.strip() and not line.startswith("cuframes_bench"):
            keep.append(line)
    return keep


def floor_publish_p50(floor: list[str]) -> dict[str, float]:
    """Per size, the paced p50 of cuframes_bench's "publish(), no subscriber" floor row (alone
    on the GPU): size what others | b2b p50 b2b p99 | paced p50 paced p99."""
    out: dict[str, float] = {}
    for line in floor:
        parts = line.split("|")
        head = parts[0].split()
        if len(parts) == 3 and len(head) >= 3 and head[1].startswith("publish()") \
                and head[-1] == "0":
            try:
                out[head[0]] = float(parts[2].split()[0])
            except (ValueError, IndexError):
                pass
    return out
