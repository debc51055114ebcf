"""SIGTERM and SIGINT: the service exits 0 promptly, also with a camera hanging in its RTSP
handshake and a file camera decoding; every ring is gone, subscribers are told, and the runtime
directory is left empty. SIGKILL leaves only what the next start cleans."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest

import cuframes

import media
import svc

PROMPT_S = 5.0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop(sig: int, service: Callable[..., svc.Service],
                       clip: Callable[[str], tuple[media.Clip, Path]], runtime_dir: str) -> None:
    _, path = clip("h264-1280x720")
    hole = svc.Blackhole()
    try:
        s = service({
            "ts": {"url": "testsrc://?width=320&height=240&fps=30"},
            "file": {"url": str(path), "loop": True, "realtime": True},
            # Hangs in the RTSP handshake for up to open_timeout: must not delay the exit.
            "hang": {"url": f"rtsp://127.0.0.1:{hole.port}/x", "open_timeout": "30s"},
        })
        s.wait_state("ts", "streaming", 10)
        s.wait_state("file", "streaming", 20)
        s.wait_state("hang", "connecting", 10)
        assert sorted(cuframes.list_publishers(runtime_dir)) == ["cam-file", "cam-ts"]
        with cuframes.subscribe("cam-ts", connect_timeout_ms=5000,
                                runtime_dir=runtime_dir) as sub:
            with sub.next_frame(timeout_ms=3000) as f:
                svc.check_testsrc_frame(f, 320, 240)
            t = time.monotonic()
            rc = s.stop(sig, timeout=PROMPT_S)
            took = time.monotonic() - t
            assert rc == 0, f"exit code {rc} after {signal.Signals(sig).name}\n{s.log_tail()}"
            # The subscriber is told (after any frames still queued).
            with pytest.raises(cuframes.CuframesPublisherGone):
                for _ in range(100):
                    with sub.next_frame(timeout_ms=2000):
                        pass
        assert cuframes.list_publishers(runtime_dir) == []
        # Nothing left behind: no socket, no lock file, no status file.
        assert sorted(os.listdir(runtime_dir)) == [], "left in the runtime dir"
        print(f"{signal.Signals(sig).name}: exit 0 in {took:.2f} s")
    finally:
        hole.close()


def test_sigterm_while_starting(service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """SIGTERM right after start (cameras still connecting) is as graceful."""
    s = service({"ts": {"url": "testsrc://?width=320&height=240&fps=30"},
                 "dead": {"url": f"rtsp://127.0.0.1:{svc.free_port()}/x"}})
    svc.wait_for(lambda: s.status() is not None, 10, "the status file", s.describe)
    assert s.stop(signal.SIGTERM, timeout=PROMPT_S) == 0, s.log_tail()
    assert cuframes.list_publishers(runtime_dir) == []


def test_sigkill_leaves_only_what_the_next_start_cleans(service: Callable[..., svc.Service],
                                                        runtime_dir: str) -> None:
    """A crash cannot clean up: the rings' sockets and lock files and the status file stay, but
    nothing lists a dead ring, and the next start of the same cameras takes them over, so that
    its clean stop leaves the directory empty."""
    cams = {"a": {"url": "testsrc://?width=320&height=240&fps=30"},
            "b": {"url": "testsrc://?width=160&height=120&fps=30"}}
    s = service(cams)
    for name in cams:
        s.wait_state(name, "streaming", 10)
    assert s.stop(signal.SIGKILL) == -signal.SIGKILL
    left = set(os.listdir(runtime_dir))
    assert left <= {"cam-a.sock", "cam-a.lock", "cam-b.sock", "cam-b.lock",
                    svc.STATUS_FILE}, left
    assert cuframes.list_publishers(runtime_dir) == []
    with pytest.raises(cuframes.CuframesPublisherGone):
        cuframes.subscribe("cam-a", connect_timeout_ms=0, runtime_dir=runtime_dir)

    s = service(cams)
    for name in cams:
        s.wait_state(name, "streaming", 10)
    with cuframes.subscribe("cam-a", connect_timeout_ms=5000, runtime_dir=runtime_dir) as sub:
        with sub.next_frame(timeout_ms=3000) as f:
            svc.check_testsrc_frame(f, 320, 240)
    assert s.stop(signal.SIGTERM, timeout=PROMPT_S) == 0, s.log_tail()
    assert sorted(os.listdir(runtime_dir)) == [], "left in the runtime dir"
