"""Deadlines the suites share: wait_for, the one polling loop for shared state that has no event
to wait on (a status file, a subscriber table, a process's state), and stop_process, a child
stopped with SIGTERM, then SIGKILL."""

from __future__ import annotations

import subprocess
import time
from typing import Any, Callable


def wait_for(pred: Callable[[], Any], timeout: float, what: str,
             detail: Callable[[], str] = lambda: "", poll_s: float = 0.02) -> Any:
    """Polls pred every poll_s until it returns something truthy (returned); AssertionError
    naming `what` (and detail(), when it says something) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            extra = detail()
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}"
                                 + (f"\n{extra}" if extra else ""))
        time.sleep(poll_s)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> int:
    """SIGTERM unless it has exited, up to timeout seconds for it to go, then SIGKILL; its exit
    status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode
