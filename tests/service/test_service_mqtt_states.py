"""The MQTT health monitor's availability and subscriber states against docs/mqtt.md, with a real
mosquitto started by the tests and a real MQTT client: online and offline, retained, and the last
will after a SIGKILL; the state topic and sensors of each subscriber of a real Python detector,
and `"connected": false` once it leaves."""

from __future__ import annotations

import os
import signal
from typing import Callable

import mqtt_helpers as mh
from mqtt_helpers import broker, collector  # noqa: F401  (fixtures)
from mqtt_service import (BASE, NODE, PREFIX, fail_on, latest_states, mq, payload_is,
                          wait_announced, wait_configs)
import svc


# ---- availability ------------------------------------------------------------------------

def test_online_offline_and_last_will(broker: Callable[..., mh.Broker],
                                      collector: Callable[..., mh.Collector],
                                      service: Callable[..., svc.Service]) -> None:
    b = broker()
    col = collector(b)
    topic = f"{BASE}/status"
    s = service({"cam": mh.testsrc()}, mq(b))
    m = col.wait_msg(topic, payload_is(b"online"), timeout=10, detail=s.describe)
    assert m.retain, f"online not retained: {m}"
    assert mh.retained(b.port).get(topic) == b"online"

    # a clean SIGTERM publishes offline (retained) before the exit
    mark = col.mark()
    assert s.stop(signal.SIGTERM) == 0, s.log_tail()
    m = col.wait_msg(topic, payload_is(b"offline"), since=mark, timeout=5,
                     what="offline after SIGTERM", detail=s.log_tail)
    assert m.retain, f"offline not retained: {m}"
    assert mh.retained(b.port).get(topic) == b"offline"

    # online again on the next start; SIGKILL: the broker publishes the last will
    mark = col.mark()
    s2 = service({"cam": mh.testsrc()}, mq(b))
    col.wait_msg(topic, payload_is(b"online"), since=mark, timeout=10, detail=s2.describe)
    s2.wait_state("cam", "streaming", 10)
    mark = col.mark()
    s2.stop(signal.SIGKILL)
    m = col.wait_msg(topic, payload_is(b"offline"), since=mark, timeout=10,
                     what="the last will after SIGKILL", detail=b.log_tail)
    assert m.retain, f"the last will is not retained: {m}"
    assert mh.retained(b.port).get(topic) == b"offline"

    # and a third start after the kill takes over (rings and MQTT)
    mark = col.mark()
    s3 = service({"cam": mh.testsrc()}, mq(b))
    col.wait_msg(topic, payload_is(b"online"), since=mark, timeout=10, detail=s3.describe)
    s3.wait_state("cam", "streaming", 10)


# ---- subscribers -------------------------------------------------------------------------

def test_subscriber_sensors(broker: Callable[..., mh.Broker],
                            collector: Callable[..., mh.Collector],
                            service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """A Python detector subscribes: its state topic and 3 sensors appear, its counters move
    between two publications; when it leaves, `"connected": false` once."""
    b = broker()
    col = collector(b)
    s = service({"cam": mh.testsrc(320, 240, 30)}, mq(b))
    wait_announced(col, s, ["cam"])
    newest = svc.FrameReader("cam-cam", runtime_dir, 320, 240, consumer_name="det1",
                             strict=False)
    strict = svc.FrameReader("cam-cam", runtime_dir, 320, 240, consumer_name="rec-2",
                             strict=True)
    t1, t2 = f"{BASE}/cam/subscribers/det1", f"{BASE}/cam/subscribers/{mh.ha_id('rec-2')}"
    problems: list[str] = []
    newest.start()
    strict.start()
    try:
        newest.wait_frames(10, 10, s.describe)
        strict.wait_frames(10, 10, s.describe)

        def frames_of(m: mh.Msg) -> int:
            o = m.obj()
            return o.get("frames", -1) if isinstance(o, dict) else -1
        m1 = col.wait_msg(t1, lambda m: (m.obj() or {}).get("connected") is True
                          and frames_of(m) > 0, timeout=10, what="connected with frames",
                          detail=s.describe)
        m2 = col.wait_msg(t1, lambda m: m.idx > m1.idx and frames_of(m) > frames_of(m1),
                          since=m1.idx + 1, timeout=10, what="frames moving",
                          detail=s.describe)
        n_read = newest.count()
        col.wait_msg(t2, lambda m: (m.obj() or {}).get("connected") is True
                     and frames_of(m) > 0, timeout=10, detail=s.describe)
        col.wait_msg(f"{BASE}/cam/state",
                     lambda m: (m.obj() or {}).get("subscribers") == 2, timeout=10,
                     what="subscribers: 2", detail=s.describe)
        configs = wait_configs(col, mh.CAMERA_ENTITIES + 2 * 3)
    finally:
        newest.finish()
        strict.finish()

    for m in (m1, m2):
        problems += mh.check_subscriber_state(m.obj(), m.topic)
        if not m.retain:
            problems.append(f"subscriber state not retained: {m}")
    o2 = m2.obj()
    if isinstance(o2, dict):
        want = {"connected": True, "mode": "newest_only", "pid": os.getpid()}
        for k, v in want.items():
            if o2.get(k) != v:
                problems.append(f"{t1}: {k} = {o2.get(k)!r}, expected {v!r}")
        if isinstance(o2.get("frames"), int) and o2["frames"] > n_read + 1:
            problems.append(f"{t1}: frames {o2['frames']} but the detector had read {n_read}")
        if not isinstance(o2.get("fps"), (int, float)) or not o2["fps"] > 0:
            problems.append(f"{t1}: fps {o2.get('fps')!r} while reading ~30 fps")
    m3 = col.latest(t2)
    assert m3 is not None
    o3 = m3.obj()
    problems += mh.check_subscriber_state(o3, t2)
    if isinstance(o3, dict):
        if o3.get("mode") != "strict_order":
            problems.append(f"{t2}: mode {o3.get('mode')!r}, expected 'strict_order'")
        if o3.get("gaps") != 0 or o3.get("overruns") != 0:
            problems.append(f"{t2}: gaps/overruns {o3.get('gaps')}/{o3.get('overruns')} for a "
                            f"STRICT_ORDER reader that saw consecutive seqs")
    d = mh.validate_discovery(configs, prefix=PREFIX, node_id=NODE, base=BASE, cameras=["cam"],
                              subscribers={"cam": ["det1", "rec-2"]})
    problems += d.problems + mh.check_values(d, latest_states(col))

    # they left: "connected": false once (retained), then nothing more on their topics
    for t in (t1, t2):
        m = col.wait_msg(t, lambda m: (m.obj() or {}).get("connected") is False, since=m2.idx,
                         timeout=10, what='"connected": false after it left',
                         detail=s.describe)
        if not m.retain:
            problems.append(f"the leaving message is not retained: {m}")
        problems += mh.check_subscriber_state(m.obj(), t)
    col.wait_msg(f"{BASE}/cam/state", lambda m: (m.obj() or {}).get("subscribers") == 0,
                 since=m2.idx, timeout=10, what="subscribers: 0", detail=s.describe)
    # two more intervals: nothing on the leavers' topics
    mark = col.mark()
    st = f"{BASE}/cam/state"
    first = col.wait_msg(st, since=mark, timeout=5, detail=s.describe)
    col.wait_msg(st, since=first.idx + 1, timeout=5, detail=s.describe)
    for t in (t1, t2):
        late = col.messages(t, since=mark)
        if late:
            problems.append(f"{t}: published after it had left: {late}")
    fail_on(problems, "subscriber sensors")
