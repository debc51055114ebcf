"""Camera snapshots over MQTT (docs/mqtt.md, "Snapshots"): a real mosquitto, the service on host
memory decoding an FFmpeg-made clip of pattern.py's picture. The image entity's discovery is
valid by Home Assistant's rules; the retained payload is a JPEG that decodes to the camera's
picture (barcode and box of a frame of the clip, scaled to snapshot_width); a stalled camera
publishes no new picture and its entity becomes unavailable; it resumes when frames flow."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import cuframes

import media
import mqtt_helpers as mh
from mqtt_helpers import broker, collector  # noqa: F401  (fixtures)
from snapshot_check import check_snapshot
import svc

NODE = "snap"
BASE = f"cuframes/{NODE}"
PREFIX = "homeassistant"
INTERVAL_S = 0.3
WIDTH = 640
NEWEST = cuframes.SubscriberMode.NEWEST_ONLY


def test_snapshot_entity_picture_and_stall(broker: Callable[..., mh.Broker],  # noqa: F811
                                           collector: Callable[..., mh.Collector],  # noqa: F811
                                           service: Callable[..., svc.Service],
                                           clip: Callable[[str], tuple[media.Clip, Path]],
                                           runtime_dir: str) -> None:
    c, path = clip("h264-1280x720")
    b = broker()
    col = collector(b)
    # Two slots and STRICT_WAIT: a subscriber holding both stops the camera (test_service_health).
    s = service({"cam": {"url": str(path), "loop": True, "realtime": True, "decoder": "software",
                         "slots": 2, "policy": "strict_wait", "wait_timeout": "30s",
                         "stall_timeout": "2s"}},
                mqtt={"host": "127.0.0.1", "port": b.port, "node_id": NODE,
                      "stats_interval": "500ms",
                      "snapshot_interval": f"{int(INTERVAL_S * 1000)}ms",
                      "snapshot_width": WIDTH})
    s.wait_state("cam", "streaming", 20)
    topic = f"{BASE}/cam/snapshot"
    config_topic = f"{PREFIX}/image/{NODE}/cuframes_{NODE}_cam_snapshot/config"

    # Discovery: the image entity with the rest of the camera's, valid by HA's rules.
    col.wait_msg(config_topic, lambda m: bool(m.payload), timeout=15, what="image discovery")
    configs = mh.discovery_configs(col.messages(), PREFIX)
    d = mh.validate_discovery(configs, prefix=PREFIX, node_id=NODE, base=BASE, cameras=["cam"])
    assert not d.problems, "\n".join(d.problems)
    img = [e for e in d.entities if e.component == "image"]
    assert len(img) == 1 and img[0].cfg["image_topic"] == topic, img

    # The pictures: retained JPEGs of the clip's frames, 640 wide, a new one every interval.
    first = col.wait_msg(topic, timeout=15, what="a snapshot", detail=s.describe)
    assert first.retain, "the snapshot is not retained"
    mark = col.mark()
    col.wait(lambda: len(col.messages(topic, since=mark)) >= 3, 10 * INTERVAL_S + 5,
             "3 more snapshots", s.describe)
    seen = {check_snapshot(m.payload, c.width, c.height, WIDTH, c.frames)
            for m in col.messages(topic)}
    assert len(seen) >= 2, f"every snapshot shows the same frame {seen}: the picture is not fresh"
    kept = mh.retained(b.port, prefix=topic)
    assert topic in kept, sorted(kept)
    check_snapshot(kept[topic], c.width, c.height, WIDTH, c.frames)

    # Stalled: a subscriber holds both slots, no frame reaches the ring; once reported stalled,
    # no picture comes for 5 intervals (it came every interval before), and the entity's
    # availability (the camera's state) says offline.
    with cuframes.subscribe("cam-cam", consumer_name="hog", mode=NEWEST, connect_timeout_ms=5000,
                            runtime_dir=runtime_dir) as sub:
        held = [sub.next_frame(timeout_ms=3000), sub.next_frame(timeout_ms=3000)]
        try:
            col.wait_msg(f"{BASE}/cam/state", lambda m: (m.obj() or {}).get("state") == "stalled",
                         timeout=15, what="stalled", detail=s.describe)
            after = col.mark()
            got = col.try_wait(lambda: col.messages(topic, since=after), 5 * INTERVAL_S)
            assert not got, f"{len(got)} snapshots of a stalled camera: {got}"
        finally:
            for f in held:
                f.release()
    resumed = col.mark()
    col.wait_msg(f"{BASE}/cam/state", lambda m: (m.obj() or {}).get("state") == "streaming",
                 since=resumed, timeout=15, what="streaming again", detail=s.describe)
    m = col.wait_msg(topic, since=resumed, timeout=10, what="a snapshot after the stall")
    check_snapshot(m.payload, c.width, c.height, WIDTH, c.frames)
    # The service's own reader is not a subscriber of the camera.
    cam = s.camera("cam")
    assert cam is not None and cam["subscribers"] == 0, cam
    s.assert_running()


def test_snapshots_off(broker: Callable[..., mh.Broker],  # noqa: F811
                       collector: Callable[..., mh.Collector],  # noqa: F811
                       service: Callable[..., svc.Service]) -> None:
    """snapshot_interval: 0: no image entity and no picture (while the states go on)."""
    b = broker()
    col = collector(b)
    s = service({"cam": mh.testsrc()},
                mqtt={"host": "127.0.0.1", "port": b.port, "node_id": NODE,
                      "stats_interval": "200ms", "snapshot_interval": 0})
    s.wait_state("cam", "streaming", 15)
    state = f"{BASE}/cam/state"
    col.wait(lambda: len(col.messages(state)) >= 5, 15, "5 camera states", s.describe)
    configs = mh.discovery_configs(col.messages(), PREFIX)
    d = mh.validate_discovery(configs, prefix=PREFIX, node_id=NODE, base=BASE, cameras=["cam"],
                              snapshots=False)
    assert not d.problems, "\n".join(d.problems)
    assert not col.messages(f"{BASE}/cam/snapshot"), "a snapshot with snapshot_interval 0"
    s.assert_running()


def test_bad_snapshot_config(workdir: Path, runtime_dir: str) -> None:
    for key, value, why in (("snapshot_interval", "50ms", "0 (off) or a duration of at least"),
                            ("snapshot_interval", "soon", "a duration"),
                            ("snapshot_width", 8, "a width 16..16384"),
                            ("snapshot_width", 20000, "a width 16..16384")):
        cfg = svc.write_config(workdir / "c.yaml", {"cam": mh.testsrc()}, runtime_dir,
                               mqtt={"host": "127.0.0.1", key: value})
        r = svc.run_service(["--config", str(cfg), "--check-config"])
        assert r.returncode == 2 and f"mqtt.{key}" in r.stderr and why in r.stderr, (key, r.stderr)
