"""The built-in testsrc end to end: every byte of every frame a subscriber receives, the
geometry, consecutive seqs in STRICT_ORDER, and the status file's contract."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import cuframes

import svc

STRICT = cuframes.SubscriberMode.STRICT_ORDER
# 650 wide: the host ring's pitch (64-byte aligned: 704) is not the width.
W, H = 650, 362


def _read_verified(sub: Any, n: int, width: int, height: int) -> list[int]:
    seqs: list[int] = []
    for _ in range(n):
        with sub.next_frame(timeout_ms=3000) as f:
            svc.check_testsrc_frame(f, width, height)
            seqs.append(f.seq)
    return seqs


def test_testsrc_frames_verified(service: Callable[..., svc.Service], runtime_dir: str) -> None:
    s = service({"ts": {"url": f"testsrc://?width={W}&height={H}&fps=30"},
                 "keys": {"url": "testsrc://", "width": 320, "height": 240, "fps": 20}})
    s.wait_state("ts", "streaming", 10)
    with cuframes.subscribe("cam-ts", consumer_name="verifier", mode=STRICT,
                            connect_timeout_ms=10000, runtime_dir=runtime_dir) as sub:
        assert (sub.width, sub.height, sub.format, sub.memory) == (
            W, H, cuframes.PixelFormat.NV12, "host")
        seqs = _read_verified(sub, 90, W, H)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        assert sub.overruns == 0 and sub.errors == 0
        cam = s.wait_camera("ts", lambda c: c.get("subscribers") == 1, 5,
                            "the status file counts the subscriber")
    # Geometry from the camera's width/height/fps keys.
    with cuframes.subscribe("cam-keys", mode=STRICT, connect_timeout_ms=10000,
                            runtime_dir=runtime_dir) as sub:
        seqs = _read_verified(sub, 20, 320, 240)
        assert seqs == list(range(seqs[0], seqs[0] + 20)), seqs
    cam = s.wait_camera("ts", lambda c: c.get("frames", 0) >= 90, 5, "frames counted")
    assert cam["key"] == "cam-ts"
    assert cam["state"] == "streaming"
    assert cam["decoder"] == "testsrc"
    assert (cam["width"], cam["height"]) == (W, H)
    assert cam["format"] == "NV12" and cam["memory"] == "host"
    assert cam["dropped"] == 0 and cam["decode_errors"] == 0 and cam["reconnects"] == 0
    assert 20 <= cam["fps"] <= 40, cam["fps"]
    keys = s.camera("keys")
    assert keys is not None and (keys["width"], keys["height"]) == (320, 240), keys
    assert 12 <= keys["fps"] <= 28, keys["fps"]
    assert sorted(cuframes.list_publishers(runtime_dir)) == ["cam-keys", "cam-ts"]
    s.assert_running()


def test_status_file_contract(service: Callable[..., svc.Service], runtime_dir: str,
                              workdir: Path) -> None:
    s = service({"ts": {"url": "testsrc://?width=320&height=240&fps=25"}},
                status_interval="200ms")
    first = s.wait_camera("ts", lambda c: c.get("state") == "streaming"
                          and c.get("frames", 0) > 0, 10, "streaming with frames")
    st = s.status()
    assert st is not None
    assert isinstance(st["version"], str) and st["version"], st
    assert st["pid"] == s.pid
    assert Path(st["config"]).resolve() == (workdir / "cuframes.yaml").resolve(), st["config"]
    assert isinstance(st["uptime_s"], (int, float)) and st["uptime_s"] >= 0
    types: dict[str, Any] = {
        "key": str, "state": str, "url": str, "codec": str, "decoder": str, "width": int,
        "height": int, "format": str, "memory": str, "fps": (int, float), "frames": int,
        "dropped": int, "decode_errors": int, "reconnects": int, "subscribers": int,
        "occupancy": int, "last_frame_age_ms": int}
    for k, t in types.items():
        assert k in first, f"status camera entry lacks {k!r}: {first}"
        assert isinstance(first[k], t) and not isinstance(first[k], bool), (k, first[k])
    assert "error" in first and first["error"] in ("", None), first
    assert first["state"] in svc.STATES
    assert 0 <= first["last_frame_age_ms"] < 2000, first

    # Rewritten every status_interval: uptime and frames move on without any state change.
    up0, frames0 = st["uptime_s"], first["frames"]
    svc.wait_for(lambda: (x := s.status()) is not None and x["uptime_s"] > up0
                 and x["cameras"]["ts"]["frames"] > frames0, 3, "the status file to be rewritten",
                 s.describe)
    # Atomic rewrites: read it as fast as possible for a while; every read is whole JSON.
    deadline = time.monotonic() + 1.5
    reads = 0
    while time.monotonic() < deadline:
        assert s.status() is not None
        reads += 1
    assert reads > 10
    # The status file lives in the runtime dir next to the rings.
    assert os.path.exists(os.path.join(runtime_dir, svc.STATUS_FILE))


def test_memory_auto_without_gpu(service: Callable[..., svc.Service], runtime_dir: str) -> None:
    if svc.gpu_present():
        pytest.skip("a GPU is present: memory auto picks cuda")
    s = service({"ts": {"url": "testsrc://?width=320&height=240&fps=25", "memory": "auto",
                        "decoder": "auto"}})
    cam = s.wait_state("ts", "streaming", 10)
    assert cam["memory"] == "host", cam
    with cuframes.subscribe("cam-ts", mode=STRICT, connect_timeout_ms=10000,
                            runtime_dir=runtime_dir) as sub:
        assert sub.memory == "host"
        _read_verified(sub, 5, 320, 240)


def test_newest_only_subscriber_and_slow_reader(service: Callable[..., svc.Service],
                                                runtime_dir: str) -> None:
    """A subscriber that holds frames: the ring's occupancy shows in the status file and the
    drop policy drops (counted) instead of stalling the camera."""
    s = service({"ts": {"url": "testsrc://?width=320&height=240&fps=60", "slots": 3}})
    s.wait_state("ts", "streaming", 10)
    with cuframes.subscribe("cam-ts", connect_timeout_ms=10000, runtime_dir=runtime_dir) as sub:
        held = [sub.next_frame(timeout_ms=2000), ]
        for _ in range(2):
            f = sub.next_frame(timeout_ms=2000)
            held.append(f)
        for f in held:
            svc.check_testsrc_frame(f, 320, 240)
        # Every slot is held: the camera must drop, and say so.
        cam = s.wait_camera("ts", lambda c: c["dropped"] > 0 and c["occupancy"] >= 3, 5,
                            "dropped frames and occupancy 3 while a subscriber holds 3 slots")
        assert cam["state"] == "streaming", cam
        for f in held:
            f.release()
        # Frames flow again once released, content still right.
        with sub.next_frame(timeout_ms=2000) as f:
            svc.check_testsrc_frame(f, 320, 240)
            seq = f.seq
        with sub.next_frame(timeout_ms=2000) as f:
            assert f.seq > seq
            svc.check_testsrc_frame(f, 320, 240)
