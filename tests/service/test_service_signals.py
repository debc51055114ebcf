"""SIGTERM and SIGINT: the service exits 0 promptly, also with a camera hanging in its RTSP
handshake and a file camera decoding; every ring is gone and subscribers are told."""

from __future__ import annotations

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
        socks = sorted(p.name for p in Path(runtime_dir).glob("*.sock"))
        assert socks == [], f"sockets left in the runtime dir: {socks}"
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
