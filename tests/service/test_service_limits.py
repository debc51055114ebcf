"""The service's own process limits: it raises its open-file soft limit to the hard limit at
start (128+ cameras with rings and subscribers need more than the usual 1024), and says so."""

from __future__ import annotations

import resource
from typing import Callable

import svc


def open_file_limits(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError(f"no 'Max open files' in /proc/{pid}/limits")


def test_open_file_soft_limit_raised_to_the_hard_one(
        service: Callable[..., svc.Service]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))  # the service inherits it
    try:
        s = service({"ts": {"url": "testsrc://?width=320&height=240&fps=10"}})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    s.wait_state("ts", "streaming", 10)
    assert open_file_limits(s.pid) == (hard, hard)
    if low < hard:
        assert f"open-file limit raised from {low} to {hard}" in s.log_tail(200), s.log_tail()
    s.assert_running()
