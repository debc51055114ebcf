#!/usr/bin/env python3
"""Frames from a Python producer to a synchronised tensor in Python subscriber processes: cuframes
against torch's own CUDA IPC and Frigate's shared memory, with the C path as the floor. One table.

1080p and 4K NV12, 1 and 4 subscriber processes, 200 fps (a camera's cadence). Arms:
  cuframes, cuframes-spin  publish(tensor) / next_frame() then frame.torch("yuv") and
              frame.synchronize(), sleeping, or with spin_us=200;
              frame.torch() takes the tensor next_frame() made ahead for the frame's slot;
  cuframes-spin-cold (with --arms only)  cuframes-spin without the warm-up when a spin window
              opens (_spin_warm(False)): its GIL and frame object as cold as the sleep left them;
  cuframes-warm  cuframes, sleeping, with warm_us=300 (--warm-us): woken once before each
              expected frame to warm up, then asleep again until the frame comes;
  cuframes-warm-bare (with --arms only)  cuframes-warm without the warm-up (_spin_warm(False)):
              only woken and asleep again;
  cuframes-cpu (with --arms only)  cuframes with the loop thread's CPU time read between the
              steps: the CPU split line under the table (its latency has the reads in it);
  cuframes-norecycle (with --arms only)  cuframes with released frame objects neither kept nor
              reused (_recycle_frames(False)): the previous frame object is freed when f is bound
              to the next one, inside the wake;
  cuframes-drop (with --arms only)  cuframes-norecycle with the frame object deleted after its
              release (del f), so that it is not freed inside the next wake either;
  cuframes-fresh (with --arms only)  the same, sleeping, with no tensor made ahead:
              frame.torch("yuv") imports the plane when asked (torch's C import);
  cuframes-torchsync (with --arms only)  the same as cuframes, synchronised with torch's
              stream.synchronize() instead of frame.synchronize();
  cuframes-dlpack (with --arms only)  the same, sleeping, importing with
              torch.from_dlpack(frame.yuv) (the DLPack protocol through torch's Python) instead
              of frame.torch("yuv");
  cuframes-bindings (with --arms only)  the same as cuframes, with torch's current stream and
              inference mode asked of its Python bindings (_torch_native(False)) instead of its
              C functions;
  torch-ipc   each frame copied into a pool of CUDA tensors put on each subscriber's
              torch.multiprocessing queue (CUDA IPC handle + event);
  shm-h2d     Frigate's way: downloaded into multiprocessing.shared_memory slots, (slot, pts)
              through a multiprocessing queue, then torch.from_numpy(...).cuda() in each subscriber;
  cuframes-cpub  the cuframes arm's Python subscribers, the frames published by C instead:
              cuframes_bench --role producer (its publish() of the same frame: NVDEC-pitched on
              the GPU, packed in host memory; pinned and paced as this producer is): C's
              publish() under the same subscribers;
  cuframes-mixed  Python and C subscribers on the same Python publisher, in the same episodes:
              max(1, subs // 2) of each (cuframes_bench --role subscriber for C), attached C
              first in even rounds, Python first in odd ones, their CPUs swapped every other
              pair of rounds (the C ones first on the CPUs after the Python ones'); every frame
              published through torch's shim. Its row is the Python subscribers' (the C ones'
              p50, p99 and after in a line under the table); the targets compare them with
              the C ones on the same frames, and compose the whole path's difference from the
              pts out of that and publish()'s part before its C call;
  cuframes-pub0 (with --arms only)  cuframes with its publisher made on CPU 0 like the producer
              (its service thread there too), instead of off it as cuframes_bench's;
  C cuda, C spin  cuframes_bench's cuda and cuda-spin paths, same size and subscribers (the floor).
Latency: the producer's pts (CLOCK_MONOTONIC just before it hands the frame over) to a usable
tensor: the subscriber's consumer stream synchronised after the import. "after": the same from
the publication (cuframes: the frame's publish_ns; torch-ipc, shm-h2d: the put), the subscriber's
side without the producer's copy, whose time varies with the GPU's clocks. Steps (p50): publish
(the producer's call; torch-ipc: copy + puts; shm-h2d: download + puts; cuframes: publish(tensor)
on every other frame, the tensor read through torch's C shim), pub exp (cuframes, the other
frames: publish(tensor) through torch's C export instead, _torch_view(False); numpy: __dlpack__
both), pub2pub (pts to publication), wake (publication or put to
next_frame()/get() returning), import (frame.torch("yuv"), or torch.from_dlpack(frame.yuv) for
cuframes-dlpack; host: numpy.from_dlpack; shm-h2d: the H2D copy), warm (--warm-import: the
import again on the same frame, out of the latency: what the first one pays for caches gone cold
while the subscriber slept), sync (frame.synchronize(); torch-ipc, shm-h2d, cuframes-torchsync:
stream.synchronize()), release (the tensor dropped, frame.release()). The wake split (cuframes
arms, a line under the table: _wake_probe): publication to the core's wait ending, then to the
GIL held again, then to next_frame() returned in Python (the clock read that ends it included).
The publish split (cuframes arms, the publish(tensor) calls: _publish_probe): the call to
publish() entered, then to the core's call (the tensor read, the GIL given up, the lock
taken), the core's call, and back in Python. CPU: each subscriber's process CPU time per
frame (every thread; the other threads' share in a line under the table), median over
subscribers and rounds. Arms round-robin (the first one
rotating), --rounds rounds; figures over all samples (each subscriber's first 10 frames of an
episode left out). Producer on CPU 0 (its publisher's service thread on the others),
subscribers (persistent processes) on CPUs 1..4, as cuframes_bench pins. The targets' lines
under the table give each difference over all rounds and, "by round", the median and range of
the rounds' own differences.

    python3 bench/python_bench.py [--rounds 3] [--seconds 1.5] [--sizes 1080p,4k] [--subs 1,4]
        [--memory cuda|host] [--c-bench build/bench/cuframes_bench] [--budget 270 (s)]
        [--warm-import] [--warm-us 300] [--arms cuframes,cuframes-spin,...]

--memory host (the default without CUDA): the host-memory twin, anywhere (host rings read with
numpy, shm without H2D, cuframes_bench's host path; torch-ipc skipped). Needs numpy and cuframes,
torch for cuda.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
# cuframes-mixed: the C subscribers' samples (from the pts, from the publication)
MIXED = ("c_lat", "c_after")
# cuframes arms, each publish(tensor) less the core's call inside it (_publish_probe): what the
# Python call adds to C's, frame by frame
WRAP = "p_wrap"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from python_bench_peers import (AFTER, CPU_PARTS, POOL, PUBLISH_PARTS, SAMPLED,  # noqa: E402
                                WAKE_PARTS, WARM, WARMUP, Samples, c_floor, ep_shm, ep_torch_ipc,
                                c_role_result, floor_publish_p50, kill_role, now_ns, parse_c_row,
                                run_c, run_c_producer, start_c_role)


def pin(cpu: int) -> None:
    n = os.cpu_count() or 1
    if n > 1:
        os.sched_setaffinity(0, {cpu % n})


@contextlib.contextmanager
def off_producer_cpu() -> Iterator[None]:
    """The publisher made on CPUs 1..n-1, then this thread back on CPU 0: its service thread
    inherits those CPUs and never preempts the producer, as cuframes_bench's OffProducerCpu."""
    n = os.cpu_count() or 1
    if n > 1:
        os.sched_setaffinity(0, set(range(1, n)))
    try:
        yield
    finally:
        pin(0)


def frame_rows(h: int) -> int:
    return h * 3 // 2


# ---------------------------------------------------------------------------------------------
# Subscriber processes: persistent, one per subscriber index; each episode is one command.


def worker_main(index: int, memory: str, cmds: Any, results: Any, data: Any) -> None:
    pin(1 + index)
    torch = None
    stream = None
    if memory == "cuda":
        import torch as _torch

        torch = _torch
        torch.cuda.init()
        stream = torch.cuda.Stream()
        torch.cuda.set_stream(stream)  # the consumer stream: from_dlpack passes it on
    import cuframes

    while True:
        cmd = cmds.get()
        if cmd is None:
            return
        arm, p = cmd
        try:
            out = EPISODES[arm](cuframes, torch, stream, data, results, index, p)
        except Exception as e:  # reported, not swallowed: the parent prints it
            out = {"error": f"{type(e).__name__}: {e}"}
        results.put(("result", index, p.get("episode"), out))


def cuframes_steps(raw: tuple) -> dict[str, int]:
    """ep_cuframes' clock readings of one frame as steps (Samples)."""
    t1, t2, t3, t3b, t4, core, gil, pts, pub, warm, cpu = raw
    x = "_x" if pts & 1 else ""  # odd pts: published through torch's C export (publish_paced)
    d = {"lat" + x: t3 - pts, "pub2pub" + x: pub - pts, "import": t2 - t1, AFTER: t3 - pub,
         "wake": t1 - pub, "sync": t3 - t2, "release": t4 - t3b, "w_core": core - pub,
         "w_gil": gil - core, "w_py": t1 - gil}
    if warm is not None:
        d[WARM] = warm
    if cpu is not None:
        d.update(zip(CPU_PARTS, cpu))
    return d


def ep_cuframes(cuframes: Any, torch: Any, stream: Any, data: Any, results: Any, index: int,
                p: dict[str, Any]) -> dict[str, Any]:
    s = Samples(cuframes_steps)
    consumer = stream.cuda_stream if stream is not None else 0
    cuframes._cuframes._torch_made_ahead(p["ahead"])
    cuframes._cuframes._torch_native(p["native"])
    cuframes._cuframes._wake_probe(True)
    cuframes._cuframes._spin_warm(p["spin_warm"])
    cuframes._cuframes._recycle_frames(p["recycle"])
    split = p["cpu_split"]  # cuframes-cpu: this thread's CPU time read between the steps
    tt = time.thread_time_ns
    c0 = c4 = tt()
    with cuframes.subscribe(p["key"], consumer_name=f"bench-{index}", connect_timeout_ms=10000,
                            consumer_stream=consumer, runtime_dir=p["dir"],
                            spin_us=p["spin_us"], warm_us=p["warm_us"]) as sub:
        results.put(("ready", index, p["episode"], None))
        while True:
            if split:
                c0 = tt()
            try:
                f = sub.next_frame(timeout_ms=10000)
            except (cuframes.CuframesPublisherGone, cuframes.CuframesFrameTimeout):
                break
            t1 = now_ns()
            if split:
                c1 = tt()
            if torch is not None:
                # on torch's current stream: the consumer stream
                x = torch.from_dlpack(f.yuv) if p["dlpack"] else f.torch("yuv")
                t2 = now_ns()
                if split:
                    c2 = tt()
                if p["torch_sync"]:
                    stream.synchronize()
                else:
                    f.synchronize()  # the consumer stream and the tensor's: the same one here
            else:
                x = np.from_dlpack(f.yuv)
                t2 = now_ns()
                if split:
                    c2 = tt()
            t3 = now_ns()
            if split:
                c3 = tt()
            warm = None
            if p["warm"]:  # the import once more, caches warm now (not in the latency)
                x2 = (np.from_dlpack(f.yuv) if torch is None else
                      torch.from_dlpack(f.yuv) if p["dlpack"] else f.torch("yuv"))
                warm = now_ns() - t3
                del x2
            t3b = now_ns()
            del x
            f.release()
            t4 = now_ns()
            cpu = None
            if split:  # book: the last frame's bookkeeping, from its release to this wait
                book, c4 = c0 - c4, tt()
            core, gil, _, refill = sub._wake_probe()
            if split:
                cpu = (c1 - c0, refill, c2 - c1, c3 - c2, c4 - c3, book)
            s.add((t1, t2, t3, t3b, t4, core, gil, f.pts_ns, f.publish_ns, warm, cpu))
            if p["drop"]:  # cuframes-drop: the frame object freed now, not when f is next bound
                del f
        taken = sub._torch_ahead()[1]
    return {**s.result(), "taken": taken, "seen": s.seen}


EPISODES = {"cuframes": ep_cuframes, "cuframes-spin": ep_cuframes, "cuframes-warm": ep_cuframes,
            "cuframes-warm-bare": ep_cuframes, "cuframes-cpu": ep_cuframes,
            "cuframes-drop": ep_cuframes, "cuframes-norecycle": ep_cuframes,
            "cuframes-fresh": ep_cuframes, "cuframes-bindings": ep_cuframes,
            "cuframes-dlpack": ep_cuframes, "cuframes-torchsync": ep_cuframes,
            "cuframes-spin-cold": ep_cuframes, "cuframes-cpub": ep_cuframes,
            "cuframes-pub0": ep_cuframes, "cuframes-mixed": ep_cuframes,
            "torch-ipc": ep_torch_ipc, "shm-h2d": ep_shm}


# ---------------------------------------------------------------------------------------------
# The producer (this process).


@dataclass
class Row:
    """All samples of one (size, subscribers, arm) over the rounds."""

    v: dict[str, list[int]] = field(
        default_factory=lambda: {k: [] for k in SAMPLED + ("pubexp", WRAP) + PUBLISH_PARTS
                                 + MIXED})
    cpu: list[float] = field(default_factory=list)  # per subscriber and episode, us/frame
    cpu_other: list[float] = field(default_factory=list)  # the same, threads other than the loop's
    frames: int = 0
    c: list[dict[str, float]] = field(default_factory=list)  # C arms: cuframes_bench's rows
    # per round: that episode's own p50s (p50, after, publish), for differences paired by round
    rounds: dict[int, dict[str, float]] = field(default_factory=dict)
    taken: int = 0  # frame.torch() calls that took a tensor made ahead, of seen frames
    seen: int = 0
    errors: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.memory = args.memory
        self.torch: Any = None
        if self.memory == "cuda":
            import torch
            import torch.multiprocessing as tmp

            self.torch = torch
            ctx = tmp.get_context("spawn")
        else:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
        import cuframes

        self.cuframes = cuframes
        self.dir = tempfile.mkdtemp(prefix="cuframes-pybench-")
        n = max(args.subs)
        self.results = ctx.Queue()
        self.cmds = [ctx.Queue() for _ in range(n)]
        self.data = [ctx.Queue() for _ in range(n)]
        self.procs = [ctx.Process(target=worker_main, daemon=True,
                                  args=(i, self.memory, self.cmds[i], self.results, self.data[i]))
                      for i in range(n)]
        for pr in self.procs:
            pr.start()
        self.sources: dict[str, Any] = {}
        self.round = 0  # the round being run (Row.rounds)
        # The episode being run: its subscribers' "ready" and "result" messages carry it, so
        # that those of an episode that failed half-way are not taken for the next one's.
        self.episode_no = 0

    def close(self) -> None:
        for q in self.cmds:
            q.put(None)
        for pr in self.procs:
            pr.join(timeout=20)
        try:
            os.rmdir(self.dir)
        except OSError:
            pass  # left-overs of a publisher that failed: kept for a look

    def source(self, size: str) -> Any:
        """The decoded frame as its producer holds it: NVDEC-style in device memory (rows padded
        to 256 bytes: pitch 2048 for 1920 wide, as cuframes_bench's), packed in host memory."""
        if size not in self.sources:
            w, h = SIZES[size]
            rows = frame_rows(h)
            if self.torch is not None:
                pitch = (w + 255) // 256 * 256
                t = self.torch.full((rows, pitch), 0x5A, dtype=self.torch.uint8, device="cuda")
                self.sources[size] = t[:, :w]
                self.torch.cuda.synchronize()
            else:
                self.sources[size] = np.full((rows, w), 0x5A, np.uint8)
        return self.sources[size]

    def start_subscribers(self, arm: str, p: dict[str, Any], ix: range) -> None:
        """The persistent subscriber processes ix sent arm's episode, once each is ready."""
        for i in ix:
            self.cmds[i].put((arm, p))
        self.wait_for("ready", len(ix))

    def wait_for(self, kind: str, n: int, timeout: float = 120.0) -> list[Any]:
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"timed out waiting for {n - len(got)} subscriber(s): {kind}")
            try:
                k, i, episode, payload = self.results.get(timeout=left)
            except queue.Empty:
                continue
            if episode != self.episode_no:  # left by an earlier episode that failed: not ours
                continue
            if k == "result" and kind == "ready":  # it failed before it was ready
                raise RuntimeError(f"subscriber {i}: {payload.get('error', payload)}")
            if k == kind:
                got.append(payload)
        return got

    def paced(self, seconds: float, once: Any) -> list[int]:
        """Calls once(pts) at --fps for `seconds` (sleep, then spin the last 300 us, as
        cuframes_bench paces); returns the calls' durations in ns."""
        period = int(1e9 / self.args.fps)
        nxt = now_ns()
        end = nxt + int(seconds * 1e9)
        took = []
        while nxt < end:
            nxt += period
            while nxt - now_ns() > 300_000:
                time.sleep(0.0001)
            while now_ns() < nxt:
                pass
            t0 = now_ns()
            once(t0)
            took.append(now_ns() - t0)
        return took

    def publish_paced(self, pub: Any, src: Any, row: Row, alternate: bool = True) -> list[int]:
        """The cuframes arms' producer: publish(src) on every frame, odd frames as publish() does
        by default (durations returned: the "publish" step, with its split), even frames through
        torch's C export instead of its C shim (_torch_view(False): the "pub exp" step); every
        frame as publish() does by default when not alternate."""
        C = self.cuframes._cuframes
        whole: list[int] = []
        k = [0]

        def once(pts: int) -> None:
            k[0] += 1
            view = bool(k[0] % 2) or not alternate
            C._torch_view(view)
            t0 = now_ns()
            pub.publish(src, pts & ~1 if view else pts | 1)  # the path, told by pts's parity
            t1 = now_ns()
            if not view:
                if k[0] > WARMUP:
                    row.v["pubexp"].append(t1 - t0)
                return
            whole.append(t1 - t0)
            if k[0] > WARMUP:
                entered, core, done = pub._publish_probe()
                for key, v in zip(PUBLISH_PARTS, (entered - t0, core - entered, done - core,
                                                  t1 - done)):
                    row.v[key].append(v)
                row.v[WRAP].append(t1 - t0 - (done - core))  # publish() less its C call

        C._publish_probe(True)
        try:
            self.paced(self.args.seconds, once)
        finally:
            C._publish_probe(False)
            C._torch_view(True)
        return whole

    def episode(self, arm: str, size: str, n: int, row: Row) -> None:
        if arm.startswith("C "):
            return self.c_episode(arm, size, n, row)
        w, h = SIZES[size]
        src = self.source(size)
        rows = frame_rows(h)
        p: dict[str, Any] = {"dir": self.dir, "key": f"bench-{size}", "rows": rows, "width": w,
                             "spin_us": self.args.spin_us if arm.startswith("cuframes-spin")
                             else 0,
                             "spin_warm": arm not in ("cuframes-spin-cold", "cuframes-warm-bare"),
                             "warm_us": self.args.warm_us if arm.startswith("cuframes-warm")
                             else 0, "cpu_split": arm == "cuframes-cpu",
                             "drop": arm == "cuframes-drop",
                             "recycle": arm not in ("cuframes-norecycle", "cuframes-drop"),
                             "warm": self.args.warm_import, "dlpack": arm == "cuframes-dlpack",
                             "ahead": arm != "cuframes-fresh",
                             "native": arm != "cuframes-bindings",
                             "torch_sync": arm == "cuframes-torchsync"}
        self.episode_no += 1
        p["episode"] = self.episode_no
        took: list[int] = []
        ring_slots = max(8, n + 4)  # a slot per subscriber, the newest and room to write
        if arm == "cuframes-cpub":  # C's publish() for the same Python subscribers
            took = run_c_producer(
                self.args.c_bench, ["--dir", self.dir, "--key", p["key"], "--sizes", size,
                                    "--subs", str(n), "--slots", str(ring_slots),
                                    "--seconds", str(self.args.seconds),
                                    "--fps", str(self.args.fps), "--path", self.memory],
                lambda: self.start_subscribers(arm, p, range(n)),
                timeout=self.args.seconds + 180)
        elif arm.startswith("cuframes"):
            with off_producer_cpu() if arm != "cuframes-pub0" else contextlib.nullcontext():
                pub = self.cuframes.publish(p["key"], w, h, slots=ring_slots,
                                            memory=self.memory, runtime_dir=self.dir)
            with pub:
                if arm == "cuframes-mixed":
                    return self.mixed(pub, src, p, n, row)
                self.start_subscribers(arm, p, range(n))
                took = self.publish_paced(pub, src, row)
            # closed: the subscribers get CuframesPublisherGone and report
        elif arm == "torch-ipc":
            torch = self.torch
            pool = [torch.empty((rows, w), dtype=torch.uint8, device="cuda") for _ in range(POOL)]
            self.start_subscribers(arm, p, range(n))
            k = [0]

            def once(pts: int) -> None:
                t = pool[k[0] % POOL]
                k[0] += 1
                t.copy_(src)
                put = now_ns()
                for q in self.data[:n]:
                    q.put((t, pts, put))

            took = self.paced(self.args.seconds, once)
            for q in self.data[:n]:
                q.put(None)
        elif arm == "shm-h2d":
            from multiprocessing import shared_memory

            nbytes = rows * w
            shm = shared_memory.SharedMemory(create=True, size=nbytes * POOL)
            slots = np.ndarray((POOL, rows, w), np.uint8, buffer=shm.buf)
            host = self.torch.from_numpy(slots) if self.torch is not None else None
            p.update(shm=shm.name, bytes=nbytes)
            self.start_subscribers(arm, p, range(n))
            k = [0]

            def once(pts: int) -> None:
                slot = k[0] % POOL
                k[0] += 1
                if host is not None:
                    host[slot].copy_(src)  # device -> pageable host memory, synchronous
                else:
                    slots[slot] = src
                put = now_ns()
                for q in self.data[:n]:
                    q.put((slot, pts, put))

            try:
                took = self.paced(self.args.seconds, once)
                for q in self.data[:n]:
                    q.put(None)
                results = self.wait_for("result", n)
            finally:
                del host, slots
                shm.close()
                shm.unlink()
            return self.collect(row, results, took)
        self.collect(row, self.wait_for("result", n), took)

    def mixed(self, pub: Any, src: Any, p: dict[str, Any], n: int, row: Row) -> None:
        """cuframes-mixed: on pub, k = max(1, n // 2) Python subscribers (as the cuframes arm's)
        and k C ones (cuframes_bench --role subscriber), attached C first in even rounds and
        Python first in odd ones (the Notes go out in attach order), on CPUs 1..k and k+1..2k,
        the two sets swapped every other pair of rounds (where there are 2k subscriber
        processes); every frame published as publish() does by default. The C subscribers'
        samples go to row.v's c_* lists."""
        k = max(1, n // 2)
        # Subscriber i (Python or C) runs on CPU 1 + i: the Python ones on the first k, then
        # from round 2 on every other pair of rounds on the next k, the C ones on the others.
        swap = (self.round // 2) % 2 == 1 and 2 * k <= len(self.cmds)
        py_ix = range(k, 2 * k) if swap else range(k)
        c_ix = range(k) if swap else range(k, 2 * k)
        c_args = ["--dir", self.dir, "--key", p["key"], "--path", self.memory]
        procs: list[Any] = []
        try:
            def c_first() -> None:
                for i in c_ix:
                    procs.append(start_c_role(self.args.c_bench, "subscriber",
                                              c_args + ["--index", str(i)]))

            def py_first() -> None:
                self.start_subscribers("cuframes-mixed", p, py_ix)

            for start in ((c_first, py_first) if self.round % 2 == 0 else (py_first, c_first)):
                start()
            took = self.publish_paced(pub, src, row, alternate=False)
        except BaseException:
            for pr in procs:
                kill_role(pr)
            raise
        pub.close()  # the subscribers, Python and C, report
        c = [c_role_result(pr, "subscriber", ("lat", "after"), 60) for pr in procs]
        lat = [x for r in c for x in r["lat"]]
        after = [x for r in c for x in r["after"]]
        row.v["c_lat"].extend(lat)
        row.v["c_after"].extend(after)
        self.collect(row, self.wait_for("result", k), took)
        row.rounds[self.round].update(c_p50=pct(lat, 0.5), c_after=pct(after, 0.5))

    def collect(self, row: Row, results: list[dict[str, Any]], took: list[int]) -> None:
        row.v["publish"].extend(took[WARMUP:])
        lat: list[int] = []
        after: list[int] = []
        for r in results:
            if "error" in r:
                row.errors.append(r["error"])
                continue
            lat.extend(r["lat"])
            after.extend(r[AFTER])
            row.frames += r["frames"]
            row.taken += r.get("taken", 0)
            row.seen += r.get("seen", 0)
            row.cpu.append(r["cpu_us"])
            row.cpu_other.append(r["cpu_other_us"])
            for k in SAMPLED:
                if k != "publish":
                    row.v[k].extend(r[k])
        row.rounds[self.round] = {"p50": pct(lat, 0.5), "after": pct(after, 0.5),
                                  "publish": pct(took[WARMUP:], 0.5)}

    def c_episode(self, arm: str, size: str, n: int, row: Row) -> None:
        path = {"C cuda": "cuda", "C spin": "cuda-spin", "C host": "host"}[arm]
        out = run_c(self.args.c_bench, ["--seconds", str(self.args.seconds), "--only", path,
                                        "--sizes", size, "--subs", str(n), "--floor", "0",
                                        "--spin-us", str(self.args.spin_us)])
        for line in out.splitlines():
            r = parse_c_row(line)
            if r is not None and r["size"] == size and r["path"] == path and r["subs"] == n:
                row.c.append(r)
                row.rounds[self.round] = {k: r[k] for k in ("p50", "after", "publish")}
                return
        row.errors.append(f"no {path} row in cuframes_bench's output")


def pct(v: list[int], q: float) -> float:
    if not v:
        return float("nan")
    s = sorted(v)
    return s[min(len(s) - 1, int(len(s) * q))] / 1e3


def fmt(x: float, width: int = 7) -> str:
    return f"{x:{width}.1f}" if x == x else f"{'-':>{width}}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.5, help="per episode")
    ap.add_argument("--fps", type=float, default=200.0)
    ap.add_argument("--sizes", default="1080p,4k")
    ap.add_argument("--subs", default="1,4")
    ap.add_argument("--spin-us", type=int, default=200)
    ap.add_argument("--warm-us", type=int, default=300, help="the cuframes-warm arm's warm_us")
    ap.add_argument("--memory", choices=("cuda", "host"), default=None)
    ap.add_argument("--arms", default=None, help="comma-separated subset of the arms")
    ap.add_argument("--warm-import", action="store_true",
                    help="cuframes arms: the import once more per frame (column warm), out of "
                         "the latency: the first import's cost of caches gone cold")
    ap.add_argument("--budget", type=float, default=270.0,
                    help="seconds of episodes: no round is started that would end past it")
    root = Path(__file__).resolve().parent.parent
    default_c = os.environ.get("CUFRAMES_BENCH_BIN",
                               str(Path(os.environ.get("BUILD", root / "build")) / "bench" /
                                   "cuframes_bench"))
    ap.add_argument("--c-bench", default=default_c, help="cuframes_bench (the C floor)")
    args = ap.parse_args()
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.subs = [int(s) for s in args.subs.split(",") if s]
    skipped: list[str] = []
    if args.memory is None:
        try:
            import torch

            args.memory = "cuda" if torch.cuda.is_available() else "host"
        except ImportError:
            args.memory = "host"
        if args.memory == "host":
            skipped.append("no CUDA device (or no torch): --memory host")
    # Every arm in the table's order; those of the second list only when asked for by name
    # (--arms): they answered a question once (docs/python.md) and are kept to ask it again.
    c_bench = os.access(args.c_bench, os.X_OK)
    cuda = args.memory == "cuda"
    arms = ["cuframes"] + (["cuframes-cpub", "cuframes-mixed"] if c_bench else []) + [
        "cuframes-warm", "cuframes-spin"] + (["torch-ipc"] if cuda else []) + ["shm-h2d"]
    asked = ["cuframes-norecycle", "cuframes-drop", "cuframes-pub0", "cuframes-cpu",
             "cuframes-warm-bare", "cuframes-spin-cold"] + (
        ["cuframes-fresh", "cuframes-bindings", "cuframes-torchsync", "cuframes-dlpack"]
        if cuda else [])
    c_arms = ["C cuda", "C spin"] if cuda else ["C host"]
    if c_bench:
        arms += c_arms
    else:
        skipped.append(f"the C path: {args.c_bench} not found (build it, or --c-bench)")
    if not cuda:
        skipped.append("torch-ipc: needs CUDA (torch.multiprocessing shares CUDA tensors)")
        skipped.append("shm-h2d: no H2D copy in host mode (the subscriber reads the slot)")
    if args.arms:
        want = args.arms.split(",")
        unknown = [a for a in want if a not in arms + asked]
        if unknown:
            ap.error(f"--arms: {', '.join(unknown)}: not an arm of a run on {args.memory} "
                     f"memory{'' if c_bench else ' without the C bench'}; its arms: "
                     f"{', '.join(arms + asked)}")
        arms = [a for a in arms[:1] + asked + arms[1:] if a in want]

    pin(0)
    print(f"python_bench: {args.memory} memory, {args.fps:.0f} fps, {args.seconds} s per "
          f"episode, {args.rounds} rounds, spin_us {args.spin_us}, warm_us {args.warm_us}; "
          f"arms: {', '.join(arms)}")
    for s in skipped:
        print(f"  skipped: {s}")
    sys.stdout.flush()
    floor: list[str] = []
    if args.memory == "cuda" and any(a in c_arms for a in arms):
        floor = c_floor(args.c_bench, args.sizes)
    bench = Bench(args)
    rows: dict[tuple[str, int, str], Row] = {}
    t_start = time.monotonic()
    try:
        for rnd in range(args.rounds):
            bench.round = rnd
            for size in args.sizes:
                for n in args.subs:
                    order = arms[rnd % len(arms):] + arms[:rnd % len(arms)]
                    for arm in order:
                        row = rows.setdefault((size, n, arm), Row())
                        try:
                            bench.episode(arm, size, n, row)
                        except Exception as e:
                            row.errors.append(f"{type(e).__name__}: {e}")
            elapsed = time.monotonic() - t_start
            print(f"  round {rnd + 1}/{args.rounds} done at {elapsed:.0f} s")
            sys.stdout.flush()
            if rnd + 1 < args.rounds and elapsed * (rnd + 2) / (rnd + 1) > args.budget:
                print(f"  stopping after {rnd + 1} round(s): another would end past --budget "
                      f"{args.budget:.0f} s")
                break
    finally:
        bench.close()

    print()
    if floor:
        print("The C floors (cuframes_bench, same run):")
        for line in floor:
            print("  " + line)
        print()
    print("Latency: producer's pts -> synchronised tensor in the subscriber, us (after: from the "
          "publication, p50). Steps: p50, us.")
    print("C rows: cuframes_bench, median of its rows (latency to the frame held and its "
          "consumer stream synchronised; publish: its p50).")
    hdr = (f"{'size':<6} {'subs':>4} {'arm':<15}| {'p50':>7} {'p99':>7} {'after':>7} | "
           f"{'CPU/fr':>7} | "
           f"{'publish':>7} {'pub p99':>7} {'pub exp':>7} {'pub2pub':>7} "
           f"{'wake':>7} {'wake99':>7} "
           f"{'import':>7} {'warm':>7} {'sync':>7} {'release':>7} | {'frames':>6}")
    print(hdr)
    print("-" * len(hdr))
    summary: dict[tuple[str, int, str], dict[str, float]] = {}
    for size in args.sizes:
        for n in args.subs:
            for arm in arms:
                row = rows.get((size, n, arm), Row())
                nan = float("nan")
                if row.c:  # the median of cuframes_bench's rows; no steps of its own
                    s = {k: sorted(r[k] for r in row.c)[len(row.c) // 2]
                         for k in ("p50", "p99", "after", "cpu", "publish", "wake", "wake99")}
                    steps = [nan, nan, nan, s["wake"], s["wake99"], nan, nan, nan, nan]
                else:
                    v = row.v
                    s = {"p50": pct(v["lat"], 0.5), "p99": pct(v["lat"], 0.99),
                         "after": pct(v[AFTER], 0.5),
                         "cpu": sorted(row.cpu)[len(row.cpu) // 2] if row.cpu else nan,
                         "publish": pct(v["publish"], 0.5), "wake": pct(v["wake"], 0.5),
                         "pubexp": pct(v["pubexp"], 0.5), "lat_x": pct(v["lat_x"], 0.5),
                         "wrap": pct(v[WRAP], 0.5),
                         "wake99": pct(v["wake"], 0.99)}
                    steps = [pct(v["publish"], 0.99), pct(v["pubexp"], 0.5),
                             pct(v["pub2pub"], 0.5), s["wake"],
                             s["wake99"], pct(v["import"], 0.5), pct(v[WARM], 0.5),
                             pct(v["sync"], 0.5), pct(v["release"], 0.5)]
                print(f"{size:<6} {n:>4} {arm:<15}| {fmt(s['p50'])} {fmt(s['p99'])} "
                      f"{fmt(s['after'])} | "
                      f"{fmt(s['cpu'])} | {fmt(s['publish'])} {' '.join(map(fmt, steps))} | "
                      f"{row.frames if row.frames else '':>6}")
                summary[(size, n, arm)] = s
                for e in sorted(set(row.errors)):
                    print(f"    error: {e}")
    mixed_c = [f"{size} {n} {pct(row.v['c_lat'], 0.5):.1f}/{pct(row.v['c_lat'], 0.99):.1f}/"
               f"{pct(row.v['c_after'], 0.5):.1f}"
               for (size, n, arm), row in rows.items()
               if arm == "cuframes-mixed" and row.v["c_lat"]]
    if mixed_c:
        print("cuframes-mixed's C subscribers, on the same frames as its row's Python ones "
              "(p50/p99/after, us): " + ", ".join(mixed_c))
    ahead = [f"{size} {n} {arm} {row.taken / row.seen:.0%}"
             for (size, n, arm), row in rows.items()
             if row.seen and arm.startswith("cuframes") and args.memory == "cuda"]
    if ahead:
        print("frame.torch() took a tensor made ahead for (share of frames, warm-up included): "
              + ", ".join(ahead))
    split = [f"{size} {n} {arm} " + "/".join(f"{pct(row.v[k], 0.5):.1f}" for k in WAKE_PARTS)
             for (size, n, arm), row in rows.items() if row.v["w_core"]]
    if split:
        print("The wake split (p50 us: publication -> the core's wait ended / -> the GIL back / "
              "-> in Python): " + ", ".join(split))
    split = [f"{size} {n} {arm} " + "/".join(f"{pct(row.v[k], 0.5):.1f}" for k in PUBLISH_PARTS)
             for (size, n, arm), row in rows.items() if row.v[PUBLISH_PARTS[0]]]
    if split:
        print("The publish split (p50 us: the call -> publish() entered / -> the core's call "
              "(source imported, GIL given up, lock taken) / -> it returned / -> back in Python): "
              + ", ".join(split))
    split = [f"{size} {n} {arm} " + "/".join(f"{pct(row.v[k], 0.5):.1f}" for k in CPU_PARTS)
             for (size, n, arm), row in rows.items() if row.v[CPU_PARTS[0]]]
    if split:
        print("The CPU split (cuframes-cpu; p50 us of the loop thread's CPU time: next_frame() / "
              "of which making tensors ahead (wall) / frame.torch() / synchronize() / tensor dropped "
              "+ release() / the bench's bookkeeping): " + ", ".join(split))
    other = [f"{size} {n} {arm} {sorted(row.cpu_other)[len(row.cpu_other) // 2]:.1f}"
             for (size, n, arm), row in rows.items() if row.cpu_other]
    if other:
        print("CPU/fr of the subscriber's other threads (median us per frame, in CPU/fr): "
              + ", ".join(other))
    print()
    print_targets(summary, rows, args, floor_publish_p50(floor))
    return 0


def paired(rows: dict[tuple[str, int, str], Row], size: str, n: int, a: str, b: str,
           key: str, key_b: str = "") -> str:
    """a's key - b's key_b (default: key) (Row.rounds) round by round, where both ran: the median
    of the differences, [the smallest and largest], or "" with fewer than two rounds."""
    ra, rb = rows.get((size, n, a)), rows.get((size, n, b))
    if ra is None or rb is None:
        return ""
    kb = key_b or key
    nan = float("nan")
    d = sorted(ra.rounds[k][key] - rb.rounds[k][kb] for k in ra.rounds
               if k in rb.rounds and ra.rounds[k].get(key, nan) == ra.rounds[k].get(key, nan)
               and rb.rounds[k].get(kb, nan) == rb.rounds[k].get(kb, nan))
    if len(d) < 2:
        return ""
    mid = (d[(len(d) - 1) // 2] + d[len(d) // 2]) / 2
    return f", by round {mid:+.1f} [{d[0]:+.1f}..{d[-1]:+.1f}]"


def print_targets(s: dict[tuple[str, int, str], dict[str, float]],
                  rows: dict[tuple[str, int, str], Row], args: argparse.Namespace,
                  c_publish: dict[str, float]) -> None:
    """The issue's targets, as differences and ratios of this run's medians (no verdicts). Each
    difference is that of the figures over all rounds; "by round": the median of the rounds'
    own differences (each round runs every arm of a cell back to back, so a drift of the machine
    between rounds falls out), with their range."""
    c_sleep, c_spin = ("C cuda", "C spin") if args.memory == "cuda" else ("C host", "C host")
    print("Against the targets (this run):")
    for size in args.sizes:
        for n in args.subs:
            py, spin = s.get((size, n, "cuframes")), s.get((size, n, "cuframes-spin"))
            c, cs = s.get((size, n, c_sleep)), s.get((size, n, c_spin))
            tip, shm = s.get((size, n, "torch-ipc")), s.get((size, n, "shm-h2d"))
            parts = []
            cp = s.get((size, n, "cuframes-cpub"))
            mx = rows.get((size, n, "cuframes-mixed"))
            if mx is not None and mx.v["c_lat"]:
                v = mx.v
                sub = pct(v["lat"], 0.5) - pct(v["c_lat"], 0.5)
                parts.append(
                    f"the same episodes (cuframes-mixed, {max(1, n // 2)} Python + "
                    f"{max(1, n // 2)} C subscribers): Python - C subscribers p50 (<= 25) from "
                    f"the pts {sub:+.1f} us"
                    + paired(rows, size, n, "cuframes-mixed", "cuframes-mixed", "p50", "c_p50")
                    + f", from the publication {pct(v[AFTER], 0.5) - pct(v['c_after'], 0.5):+.1f}"
                    f" us" + paired(rows, size, n, "cuframes-mixed", "cuframes-mixed", "after",
                                    "c_after"))
                # The whole Python path against C's, from the pts, composed of paired parts: what
                # publish() adds before its C call (the frames' pts is taken before it) and what
                # the subscriber adds on the same frames.
                before = pct(v["p_in"], 0.5) + pct(v["p_pre"], 0.5)
                parts.append(f"so the whole Python path - the C path from the pts, in parts "
                             f"measured on the same calls and frames: {before:.1f} (publish() "
                             f"before its C call) {sub:+.1f} = {before + sub:+.1f} us (<= 25)")
            if py and cp:
                parts.append(f"publish() p50 Python - C {py['publish'] - cp['publish']:+.1f} us"
                             + paired(rows, size, n, "cuframes", "cuframes-cpub", "publish")
                             + " (<= 15; C: cuframes-cpub, the same Python subscribers)")
            p0 = s.get((size, n, "cuframes-pub0"))
            if p0 and cp:
                parts.append(f"publisher made on CPU 0: publish() p50 Python - C "
                             f"{p0['publish'] - cp['publish']:+.1f} us"
                             + paired(rows, size, n, "cuframes-pub0", "cuframes-cpub", "publish"))
            if py and py["wrap"] == py["wrap"]:
                parts.append(f"publish() p50 less its own C call {py['wrap']:.1f} us (<= 15; the "
                             f"same calls)")
            if py and c:
                parts.append(f"publish() p50 Python - C {py['publish'] - c['publish']:+.1f} us "
                             f"(C: cuframes_bench's row, its own C subscribers)")
            if py and py["pubexp"] == py["pubexp"]:  # not NaN: the export's frames ran
                parts.append(f"publish() p50 {py['publish']:.1f} us, {py['pubexp']:.1f} through "
                             f"torch's C export (latency {py['p50']:.1f} vs {py['lat_x']:.1f})")
            if py and size in c_publish:
                floor = py["publish"] - c_publish[size]
                parts.append(f"publish() p50 Python - C floor {floor:+.1f} us (C's publish() "
                             f"with no subscriber)")
            if py and c:
                parts.append(f"latency p50 Python - C {py['p50'] - c['p50']:+.1f} us"
                             + paired(rows, size, n, "cuframes", c_sleep, "p50")
                             + f" (<= 25), from the publication {py['after'] - c['after']:+.1f} us"
                             + paired(rows, size, n, "cuframes", c_sleep, "after"))
            if cp and c:
                parts.append(f"C publisher, Python subscribers: latency p50 - C "
                             f"{cp['p50'] - c['p50']:+.1f} us, from the publication "
                             f"{cp['after'] - c['after']:+.1f} us")
            warm = s.get((size, n, "cuframes-warm"))
            if warm and c:
                parts.append(f"with warm_us: latency p50 Python - C {warm['p50'] - c['p50']:+.1f}"
                             f" us, from the publication {warm['after'] - c['after']:+.1f} us")
            if spin and cs and cs is not c:
                parts.append(f"with spin_us: latency p50 Python - C {spin['p50'] - cs['p50']:+.1f}"
                             f" us, from the publication {spin['after'] - cs['after']:+.1f} us")
            if spin:
                parts.append(f"spin wake p50 {spin['wake']:.1f} us (< 10"
                             + (f"; C {cs['wake']:.1f})" if cs else ")"))
            best = spin if spin and py and spin["p50"] < py["p50"] else py
            if py and tip:
                parts.append(f"vs torch-ipc: p50 {tip['p50'] / py['p50']:.1f}x lower (>= 4), "
                             f"p99 {py['p99']:.0f} us against torch-ipc's {tip['p99']:.0f} "
                             f"(lower), CPU "
                             f"{tip['cpu'] / max(py['cpu'], 1e-9):.1f}x lower (>= 4)")
            if best and shm:
                parts.append(f"vs shm-h2d: p50 {shm['p50'] / best['p50']:.1f}x lower")
            print(f"  {size} {n} sub: " + "; ".join(p for p in parts if p))


if __name__ == "__main__":
    sys.exit(main())
