"""examples/detector.py against the real cuframes-service (testsrc cameras in host memory, so no
GPU: the detector's NumPy path), outside Docker: every camera found and measured (the values
checked against the testsrc pattern of the very frame reported), cameras added later by a
reload, a detector started before the service, the service restarted or killed under it, and
its results over MQTT through a real mosquitto (Home Assistant discovery, availability, a
broker that refuses it or is not there)."""

from __future__ import annotations

import json
import re
import signal
from typing import Callable

import pytest

import deploy_helpers as dh
import mqtt_helpers as mh
import svc

CAMS = {"front": {"url": "testsrc://?width=200&height=120&fps=30"},
        "back": {"url": "testsrc://?width=328&height=184&fps=20"}}
GEOM = {"front": (200, 120, 30.0), "back": (328, 184, 20.0)}  # odd widths: padded pitches


def _check(summaries: dict[str, dict[str, str]], cams: list[str], **kw: object) -> None:
    assert sorted(summaries) == sorted(cams), summaries
    for cam in cams:
        w, h, fps = GEOM[cam]
        dh.check_summary(summaries[cam], w, h, fps, "host", "numpy", **kw)  # type: ignore[arg-type]


def test_every_camera_for_a_few_seconds(service: Callable[..., svc.Service],
                                        detector: Callable[..., dh.Detector],
                                        runtime_dir: str) -> None:
    s = service(CAMS)
    for cam in CAMS:
        s.wait_state(cam, "streaming", 15)
    d = detector("--runtime-dir", runtime_dir, "--seconds", "4")
    summaries = d.wait_exit(30)
    _check(summaries, ["front", "back"])
    for cam in CAMS:
        assert summaries[cam]["connects"] == "1", summaries[cam]
        assert summaries[cam]["key"] == f"cam-{cam}"
    # it was a subscriber of each ring under its name, and is gone from them
    st = s.status()
    assert st is not None
    for cam in CAMS:
        assert dh.subscriber(f"cam-{cam}", runtime_dir, "detector") is None


def test_camera_filter(service: Callable[..., svc.Service],
                       detector: Callable[..., dh.Detector], runtime_dir: str) -> None:
    s = service(CAMS)
    for cam in CAMS:
        s.wait_state(cam, "streaming", 15)
    d = detector("--runtime-dir", runtime_dir, "--cameras", "back", "--seconds", "2",
                 "--name", "only-back")
    _check(d.wait_exit(30), ["back"])


def test_camera_added_later(service: Callable[..., svc.Service],
                            detector: Callable[..., dh.Detector], runtime_dir: str) -> None:
    s = service({"front": CAMS["front"]})
    s.wait_state("front", "streaming", 15)
    d = detector("--runtime-dir", runtime_dir)
    dh.wait_frames("cam-front", runtime_dir, "detector", 5, 15, d.describe)
    svc.write_config(s.config, CAMS, runtime_dir)  # the same file, one camera more
    s.send(signal.SIGHUP)
    s.wait_state("back", "streaming", 15)
    dh.wait_frames("cam-back", runtime_dir, "detector", 5, 15, d.describe)
    summaries = d.stop()
    _check(summaries, ["front", "back"])
    assert summaries["front"]["connects"] == "1", summaries  # its ring was not touched


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_service_late_then_restarted(service: Callable[..., svc.Service],
                                     detector: Callable[..., dh.Detector], runtime_dir: str,
                                     how: int) -> None:
    # the detector first: the ring is not there yet, it waits
    d = detector("--runtime-dir", runtime_dir, "--cameras", "front,back")
    d.wait_log(r"camera back: starting", 15)
    d.assert_running()
    s = service(CAMS)
    first = {cam: dh.wait_frames(f"cam-{cam}", runtime_dir, "detector", 5, 20, d.describe)
             for cam in CAMS}
    s.stop(how)
    for cam in CAMS:
        d.wait_log(rf"cam-{cam}: publisher gone, reconnecting", 15)
    d.assert_running()
    s2 = service(CAMS)  # a new service: new rings, new epochs
    for cam in CAMS:
        s2.wait_state(cam, "streaming", 15)
        dh.wait_frames(f"cam-{cam}", runtime_dir, "detector", 5, 20, d.describe,
                       epoch_not=first[cam]["epoch"])
    summaries = d.stop()
    _check(summaries, ["front", "back"], min_frames=10)
    for cam in CAMS:
        assert summaries[cam]["connects"] == "2", summaries[cam]


# ---- MQTT --------------------------------------------------------------------------------

BASE = "cuframes/detector/detector"


def test_results_over_mqtt(service: Callable[..., svc.Service],
                           detector: Callable[..., dh.Detector],
                           broker: Callable[..., mh.Broker],
                           collector: Callable[..., mh.Collector], runtime_dir: str) -> None:
    b = broker(users={"cuframes": "det pw", "ha": "ha pw"})
    col = collector(b)
    s = service(CAMS)
    for cam in CAMS:
        s.wait_state(cam, "streaming", 15)
    d = detector("--runtime-dir", runtime_dir, f"--mqtt=127.0.0.1:{b.port}",
                 "--mqtt-interval", "0.3",
                 env={"CUFRAMES_MQTT_USERNAME": "cuframes", "CUFRAMES_MQTT_PASSWORD": "det pw"})
    col.wait_msg(f"{BASE}/status", lambda m: m.payload == b"online" and m.retain,
                 timeout=15, detail=d.describe)
    states = {}
    for cam in CAMS:
        m = col.wait_msg(f"{BASE}/{cam}", lambda m: (m.obj() or {}).get("frames", 0) >= 5,
                         timeout=15, detail=d.describe)
        st = m.json()
        states[cam] = m.payload
        w, h, _ = GEOM[cam]
        luma, edges = dh.expected_values(w, h, st["seq"])
        assert abs(st["luma"] - luma) < 1e-3 and abs(st["edges"] - edges) < 1e-3, (st, luma)
        assert st["memory"] == "host" and st["backend"] == "numpy" and st["connected"], st
        assert st["fps"] > 0 and st["motion"] > 0, st
    # Home Assistant discovery: a sensor per camera and value, rendering against the state
    for cam in CAMS:
        for value in ("motion", "fps", "luma", "edges", "frames"):
            topic = f"homeassistant/sensor/cuframes_detector_detector/{cam}_{value}/config"
            cfg = col.wait_msg(topic, lambda m: m.retain, timeout=10).json()
            assert cfg["state_topic"] == f"{BASE}/{cam}", cfg
            assert cfg["availability_topic"] == f"{BASE}/status", cfg
            assert cfg["unique_id"] == f"cuframes_detector_detector_{cam}_{value}", cfg
            v = mh.render(cfg["value_template"], states[cam])
            assert float(v) == pytest.approx(float(json.loads(states[cam])[value])), (cfg, v)
    # Home Assistant comes back: everything is announced again
    mark = col.mark()
    col.publish("homeassistant/status", b"online")
    col.wait_msg("homeassistant/sensor/cuframes_detector_detector/back_motion/config",
                 since=mark, timeout=10)
    summaries = d.stop()
    _check(summaries, ["front", "back"])
    # a clean exit says offline (retained); the last will would say it after a crash
    col.wait_msg(f"{BASE}/status", lambda m: m.payload == b"offline", since=mark, timeout=10)
    assert mh.retained(b.port, "ha", "ha pw", prefix=f"{BASE}/status") == {
        f"{BASE}/status": b"offline"}


@pytest.mark.parametrize("trouble", ["wrong-password", "no-broker"])
def test_mqtt_trouble_does_not_stop_the_frames(service: Callable[..., svc.Service],
                                               detector: Callable[..., dh.Detector],
                                               broker: Callable[..., mh.Broker],
                                               runtime_dir: str, trouble: str) -> None:
    if trouble == "wrong-password":
        b = broker(users={"cuframes": "right"})
        port = b.port
    else:
        port = svc.free_port()  # nothing listens there
    s = service(CAMS)
    for cam in CAMS:
        s.wait_state(cam, "streaming", 15)
    d = detector("--runtime-dir", runtime_dir, f"--mqtt=127.0.0.1:{port}",
                 "--mqtt-interval", "0.2",
                 env={"CUFRAMES_MQTT_USERNAME": "cuframes", "CUFRAMES_MQTT_PASSWORD": "wrong"})
    if trouble == "wrong-password":
        m = d.wait_log(r"MQTT: the broker 127\.0\.0\.1:\d+ refused the connection: (.*) \(check",
                       15)
        assert re.search(r"not authori[sz]ed|bad user name or password", m.group(1), re.I), m
    for cam in CAMS:
        dh.wait_frames(f"cam-{cam}", runtime_dir, "detector", 10, 15, d.describe)
    _check(d.stop(), ["front", "back"])
