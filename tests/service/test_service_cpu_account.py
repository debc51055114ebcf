"""The ingest thread's CPU account (service/src/cpu_account.h) in the status file: per camera,
the thread's CPU by stage of its loop. Software decode of a real clip: the stages a software
file camera must use are non-zero, and they add up to the thread's own CPU clock, which agrees
with what the kernel says of the thread named "cam:NAME". No timed assertions: CPU amounts
only, compared with each other."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import media
import svc

STAGES = ("open", "read", "decode", "pace", "convert", "publish", "other")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_thread_cpu_us(pid: int, tid: int) -> tuple[str, float]:
    """(name, utime + stime in us) of thread tid of pid, from /proc."""
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        raw = f.read()
    name = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw.rsplit(")", 1)[1].split()
    return name, (int(fields[11]) + int(fields[12])) * 1e6 / CLK_TCK


def test_stages_add_up_to_the_ingest_thread(clip: Callable[[str], tuple[media.Clip, Path]],
                                            service: Callable[..., svc.Service]) -> None:
    c, path = clip("h264-1280x720")
    s = service({"soft": {"url": str(path), "decoder": "software", "memory": "host",
                          "loop": True, "realtime": True},
                 "pattern": {"url": "testsrc://?width=320&height=240&fps=30"}},
                status_interval="200ms")
    # A whole pass and more: the loop's seek and drain are in it too.
    cam = s.wait_camera("soft", lambda x: x["frames"] >= c.frames + 20, 60,
                        "more than one pass over the clip")
    cpu = cam["cpu"]
    assert cpu["tid"] > 0 and cpu["frames"] >= c.frames + 20, cpu
    stages = {k: cpu[f"{k}_us"] for k in STAGES}
    # Software decode of a file in real time: it opened, read, decoded, converted (yuv420p ->
    # NV12 with swscale), waited for its frames' times and published them.
    for k in ("open", "read", "decode", "pace", "convert", "publish"):
        assert stages[k] > 0, f"stage {k} is 0: {cpu}"
    # Every lap charges the CPU since the one before: the stages are the thread's CPU, less the
    # lap still open when the status file was written (at most a frame's work, a few ms).
    total = sum(stages.values())
    assert total <= cpu["thread_us"] + 1, cpu
    assert cpu["thread_us"] - total <= max(0.05 * cpu["thread_us"], 20000), cpu
    # The same thread as the kernel sees it: its name, and CPU at least what the status said
    # (read later; the kernel's clock ticks at 1/CLK_TCK s).
    name, proc_us = proc_thread_cpu_us(s.pid, cpu["tid"])
    assert name == "cam:soft", name
    assert proc_us >= cpu["thread_us"] - 2e6 / CLK_TCK, (proc_us, cpu)

    # testsrc: drawing stands in for decoding; nothing is read or converted.
    ts = s.wait_camera("pattern", lambda x: x["frames"] >= 30, 10, "testsrc frames")["cpu"]
    assert ts["decode_us"] > 0 and ts["publish_us"] > 0 and ts["pace_us"] > 0, ts
    assert ts["read_us"] == 0 and ts["convert_us"] == 0, ts
    assert ts["tid"] != cpu["tid"]
    s.assert_running()
