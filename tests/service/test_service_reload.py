"""SIGHUP reloads: cameras added and removed while another camera's STRICT_ORDER subscriber
sees no gap and the same ring instance; a changed camera restarts; a bad config changes nothing."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Callable, Optional

import cuframes

import svc

STRICT = cuframes.SubscriberMode.STRICT_ORDER


def ts(w: int, h: int, fps: int = 30) -> dict[str, Any]:
    return {"url": f"testsrc://?width={w}&height={h}&fps={fps}"}


def _wait_frames(reader: svc.FrameReader, n: int, timeout: float, s: svc.Service) -> None:
    svc.wait_for(lambda: reader.count() >= n or reader.error is not None, timeout,
                 f"{n} frames on {reader.key}", s.describe)
    if reader.error is not None:
        reader.finish()


def _epoch(key: str, runtime_dir: str) -> int:
    return int(cuframes.observe(key, runtime_dir=runtime_dir)["epoch"])


def _epoch_or_none(key: str, runtime_dir: str) -> Optional[int]:
    try:
        return _epoch(key, runtime_dir)
    except cuframes.CuframesPublisherGone:
        return None


def test_sighup_adds_and_removes(service: Callable[..., svc.Service], runtime_dir: str,
                                 workdir: Path) -> None:
    s = service({"a": ts(640, 360), "b": ts(320, 240)})
    s.wait_state("a", "streaming", 10)
    s.wait_state("b", "streaming", 10)
    assert sorted(cuframes.list_publishers(runtime_dir)) == ["cam-a", "cam-b"]
    epoch_a = _epoch("cam-a", runtime_dir)
    reader = svc.FrameReader("cam-a", runtime_dir, 640, 360, consumer_name="reload-reader")
    reader.start()
    _wait_frames(reader, 30, 10, s)

    # Add c, remove b, a unchanged (service-wide settings change: no camera restarts for them).
    svc.write_config(s.config, {"a": ts(640, 360), "c": ts(480, 270, 15)}, runtime_dir,
                     status_interval="300ms", log_level="info")
    before = reader.count()
    s.send(signal.SIGHUP)
    s.wait_state("c", "streaming", 10)
    svc.wait_for(lambda: sorted(cuframes.list_publishers(runtime_dir)) == ["cam-a", "cam-c"],
                 10, "rings cam-a and cam-c only", s.describe)
    svc.wait_for(lambda: (s.camera("b") or {}).get("state", "stopped") == "stopped", 5,
                 "b gone from the status file (or stopped)", s.describe)
    with cuframes.subscribe("cam-c", mode=STRICT, connect_timeout_ms=5000,
                            runtime_dir=runtime_dir) as sub:
        for _ in range(5):
            with sub.next_frame(timeout_ms=3000) as f:
                svc.check_testsrc_frame(f, 480, 270)
    # a's subscriber went on through the reload: more frames, no gap, same ring.
    _wait_frames(reader, before + 60, 10, s)
    reader.finish()
    assert reader.seqs == list(range(reader.seqs[0], reader.seqs[0] + len(reader.seqs)))
    assert reader.gap_count == reader.gap_count_first, (reader.gap_count_first,
                                                        reader.gap_count)
    assert reader.overruns == 0
    assert _epoch("cam-a", runtime_dir) == epoch_a, "cam-a's ring was recreated"
    a = s.camera("a")
    assert a is not None and a["state"] == "streaming" and a["reconnects"] == 0, a
    st = s.status()
    assert st is not None
    assert "b" not in st["cameras"] or st["cameras"]["b"]["state"] == "stopped", st
    s.assert_running()


def test_sighup_restarts_only_changed(service: Callable[..., svc.Service], runtime_dir: str,
                                      workdir: Path) -> None:
    s = service({"a": ts(640, 360), "b": ts(320, 240)})
    s.wait_state("a", "streaming", 10)
    s.wait_state("b", "streaming", 10)
    epoch_b = _epoch("cam-b", runtime_dir)
    reader = svc.FrameReader("cam-a", runtime_dir, 640, 360, consumer_name="reload-reader")
    reader.start()
    _wait_frames(reader, 20, 10, s)
    with cuframes.subscribe("cam-b", mode=STRICT, connect_timeout_ms=5000,
                            runtime_dir=runtime_dir) as sub_b:
        with sub_b.next_frame(timeout_ms=3000) as f:
            svc.check_testsrc_frame(f, 320, 240)
        # b changes geometry; a does not change.
        svc.write_config(s.config, {"a": ts(640, 360), "b": ts(336, 200)}, runtime_dir)
        before = reader.count()
        s.send(signal.SIGHUP)
        # b's old subscriber learns its ring went away ...
        deadline_frames = 200
        gone = False
        for _ in range(deadline_frames):
            try:
                with sub_b.next_frame(timeout_ms=5000) as f:
                    pass
            except cuframes.CuframesPublisherGone:
                gone = True
                break
        assert gone, "b's old ring still publishing after b's geometry changed"
    # ... and a new subscriber sees the new one.
    svc.wait_for(lambda: _epoch_or_none("cam-b", runtime_dir) not in (None, epoch_b), 10,
                 "b's new ring", s.describe)
    s.wait_camera("b", lambda c: c["state"] == "streaming" and c["width"] == 336, 10,
                  "b streaming at its new size")
    with cuframes.subscribe("cam-b", mode=STRICT, connect_timeout_ms=5000,
                            runtime_dir=runtime_dir) as sub_b:
        with sub_b.next_frame(timeout_ms=3000) as f:
            svc.check_testsrc_frame(f, 336, 200)
    _wait_frames(reader, before + 30, 10, s)
    reader.finish()
    assert reader.gap_count == reader.gap_count_first
    s.assert_running()


def test_sighup_bad_config_keeps_running(service: Callable[..., svc.Service],
                                         runtime_dir: str, workdir: Path) -> None:
    s = service({"a": ts(640, 360), "b": ts(320, 240)})
    s.wait_state("a", "streaming", 10)
    s.wait_state("b", "streaming", 10)
    epochs = {k: _epoch(k, runtime_dir) for k in ("cam-a", "cam-b")}
    reader = svc.FrameReader("cam-a", runtime_dir, 640, 360, consumer_name="reload-reader")
    reader.start()
    _wait_frames(reader, 20, 10, s)
    # A config that removes b, adds c, and is invalid (c's slots): nothing may change.
    bad = svc.to_yaml({"runtime_dir": runtime_dir, "status_interval": "200ms",
                       "defaults": {"memory": "host"},
                       "cameras": {"a": ts(640, 360), "c": {**ts(320, 240), "slots": 999}}})
    tmp = s.config.with_name("tmp.yaml")
    tmp.write_text(bad)
    tmp.replace(s.config)
    before = reader.count()
    s.send(signal.SIGHUP)
    _wait_frames(reader, before + 45, 10, s)  # 1.5 s of frames after the reload attempt
    s.assert_running()
    assert sorted(cuframes.list_publishers(runtime_dir)) == ["cam-a", "cam-b"]
    assert {k: _epoch(k, runtime_dir) for k in ("cam-a", "cam-b")} == epochs
    st = s.status()
    assert st is not None and sorted(st["cameras"]) == ["a", "b"], st
    assert st["cameras"]["b"]["state"] == "streaming"
    log = s.log_path.read_text(errors="replace")
    assert "cameras.c.slots" in log, "the rejected reload's reason is not logged"

    # Then a good config is applied.
    svc.write_config(s.config, {"a": ts(640, 360), "c": ts(320, 240)}, runtime_dir)
    s.send(signal.SIGHUP)
    s.wait_state("c", "streaming", 10)
    svc.wait_for(lambda: sorted(cuframes.list_publishers(runtime_dir)) == ["cam-a", "cam-c"],
                 10, "rings cam-a and cam-c", s.describe)
    _wait_frames(reader, reader.count() + 15, 10, s)
    reader.finish()
    assert reader.gap_count == reader.gap_count_first
    assert _epoch("cam-a", runtime_dir) == epochs["cam-a"]

    # The reload's log line counts the cameras, singular for one.
    def logged(line: str) -> None:
        svc.wait_for(lambda: line + "\n" in s.log_path.read_text(errors="replace"), 10,
                     f"'{line}' in the log", s.describe)
    logged(f"reloaded {s.config} (2 cameras)")
    svc.write_config(s.config, {"a": ts(640, 360)}, runtime_dir)
    s.send(signal.SIGHUP)
    logged(f"reloaded {s.config} (1 camera)")
