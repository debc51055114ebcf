"""The MQTT health monitor against docs/mqtt.md, with a real mosquitto started by the tests and
a real MQTT client: Home Assistant discovery checked payload by payload against HA's rules, the
JSON states against the value_templates, availability and the last will, subscriber sensors of a
real Python detector, a camera removed by SIGHUP, a broker outage (frames go on, memory stays
bounded, nothing queued, everything announced again), the stale entities of a camera removed
while the service was stopped, a broker with a password, a TLS broker (and one whose certificate
the CA does not vouch for), bad `mqtt:` config values."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import cuframes

import mqtt_helpers as mh
from mqtt_helpers import broker, collector  # noqa: F401  (fixtures)
import svc

PREFIX = "homeassistant"
NODE = "test"
BASE = f"cuframes/{NODE}"
STATS_INTERVAL_S = 0.5
# The contract's backoff: 1 s doubling to 30 s (plus a margin for the announcement).
RECONNECT_S = 40.0
# docs/mqtt.md: a removed entity's retained states are cleared this long after its discovery
# configs were deleted (Home Assistant removes entities asynchronously).
CLEAR_STATES_AFTER_S = 5.0


# ---- fixtures ----------------------------------------------------------------------------

def mq(b: mh.Broker, node: Optional[str] = NODE, **kw: Any) -> dict[str, Any]:
    """An `mqtt:` section for broker b."""
    d: dict[str, Any] = {"host": "127.0.0.1", "port": b.port}
    if node is not None:
        d["node_id"] = node
    d["stats_interval"] = f"{int(STATS_INTERVAL_S * 1000)}ms"
    d.update(kw)
    return d


# ---- helpers -----------------------------------------------------------------------------

def _is(payload: bytes) -> Callable[[mh.Msg], bool]:
    return lambda m: m.payload == payload


def _state_is(state: str) -> Callable[[mh.Msg], bool]:
    def pred(m: mh.Msg) -> bool:
        o = m.obj()
        return isinstance(o, dict) and o.get("state") == state
    return pred


def _configs(col: mh.Collector, prefix: str = PREFIX, since: int = 0,
             node: str = NODE) -> dict[str, bytes]:
    """The latest discovery config per topic of node `node` since `since`."""
    return {t: p for t, p in mh.discovery_configs(col.messages(since=since), prefix).items()
            if t.split("/")[2:3] == [node]}


def _wait_configs(col: mh.Collector, n: int, prefix: str = PREFIX, since: int = 0,
                  node: str = NODE, timeout: float = 10.0) -> dict[str, bytes]:
    """Waits for n non-empty discovery configs (the contract's count); returns what came by
    the deadline: the validation then names what is missing."""
    col.try_wait(lambda: len([p for p in _configs(col, prefix, since, node).values() if p]) >= n,
                 timeout)
    return _configs(col, prefix, since, node)


def _latest_states(col: mh.Collector, base: str = BASE) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for m in col.messages():
        if m.topic.startswith(base + "/"):
            out[m.topic] = m.payload
    return out


def _wait_announced(col: mh.Collector, s: svc.Service, cameras: list[str], since: int = 0,
                    base: str = BASE, prefix: str = PREFIX, node: str = NODE,
                    timeout: float = 15.0) -> dict[str, bytes]:
    """online, a streaming state per camera and the discovery configs (8 per camera) since
    `since`; returns the configs."""
    col.wait_msg(f"{base}/status", _is(b"online"), since, timeout, "online", s.describe)
    col.wait_msg(f"{base}/stats", since=since, timeout=timeout, what="service stats",
                 detail=s.describe)
    for cam in cameras:
        col.wait_msg(f"{base}/{cam}/state", _state_is("streaming"), since, timeout,
                     "state streaming", s.describe)
    return _wait_configs(col, 8 * len(cameras), prefix, since, node, timeout)


def _fail_on(problems: list[str], header: str) -> None:
    if problems:
        raise AssertionError(f"{header}: {len(problems)} problem(s)\n  " + "\n  ".join(problems))


def _removal_order(col: mh.Collector, since: int, configs: list[str], states: list[str],
                   detail: Callable[[], str]) -> list[str]:
    """Waits for the deletion (an empty retained payload) of every discovery config in
    `configs` and every state topic in `states` since message `since`, and returns what is
    wrong with their order: Home Assistant removes an entity asynchronously after its empty
    config, and an empty state reaching an entity not yet removed fails its value_template
    ("'value_json' is undefined") and its attributes ("Erroneous JSON"). So every config goes
    first, and the states follow only CLEAR_STATES_AFTER_S later (half of it as the bound: the
    arrival times are the test client's)."""
    def first_empty(t: str) -> Optional[mh.Msg]:
        ms = col.messages(t, since=since, pred=lambda m: m.payload == b"")
        return ms[0] if ms else None

    def missing() -> list[str]:
        return [t for t in configs + states if first_empty(t) is None]
    if col.try_wait(lambda: not missing(), CLEAR_STATES_AFTER_S + 15) is None:
        return [f"no empty retained payload within {CLEAR_STATES_AFTER_S + 15} s on: "
                f"{missing()}\n{detail()}"]
    problems: list[str] = []
    cfg_msgs = [first_empty(t) for t in configs]
    state_msgs = [first_empty(t) for t in states]
    last_cfg = max(cfg_msgs, key=lambda m: m.idx)  # type: ignore[union-attr]
    first_state = min(state_msgs, key=lambda m: m.idx)  # type: ignore[union-attr]
    assert last_cfg is not None and first_state is not None
    if first_state.idx < last_cfg.idx:
        problems.append(f"a state was cleared before the last discovery config was deleted: "
                        f"{first_state} before {last_cfg}")
    gap = first_state.t - last_cfg.t
    if gap < CLEAR_STATES_AFTER_S / 2:
        problems.append(f"states cleared {gap:.2f} s after the last config deletion (Home "
                        f"Assistant may not have removed the entities yet): {first_state}")
    for m in cfg_msgs + state_msgs:
        if m is not None and not m.retain:
            problems.append(f"the deletion is not retained (HA keeps the entity): {m}")
    print(f"removal: {len(configs)} configs deleted, then {len(states)} states cleared "
          f"{gap:.2f} s later")
    return problems


def _service_version(s: svc.Service) -> Optional[str]:
    st = s.status()
    return None if st is None else st.get("version")


def _log_lines(s: svc.Service) -> list[str]:
    s._log.flush()
    return s.log_path.read_text(errors="replace").splitlines()


LEVEL_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (\w+)")


def _is_problem_line(ln: str) -> bool:
    """A warning, error or critical line of the service's log (not a camera's)."""
    m = LEVEL_RE.match(ln)
    return m is not None and m.group(1) in ("warning", "error", "critical") and "[cam " not in ln


# ---- discovery ---------------------------------------------------------------------------

def test_discovery_follows_ha_rules(broker: Callable[..., mh.Broker],
                                    collector: Callable[..., mh.Collector],
                                    service: Callable[..., svc.Service]) -> None:
    """Every discovery payload against HA's rules and docs/mqtt.md's tables; every state topic
    published, retained, JSON, and every value_template renders to what its entity needs;
    the same payloads after a restart (stable identifiers)."""
    b = broker()
    col = collector(b)
    cams = {"cam1": mh.testsrc(320, 240, 30), "cam2": mh.testsrc(352, 288, 15)}
    s = service(cams, mq(b))
    for c in cams:
        s.wait_state(c, "streaming", 10)
    configs = _wait_announced(col, s, list(cams))
    # a second round of states, so every state topic has had its interval
    mark = col.mark()
    for c in cams:
        col.wait_msg(f"{BASE}/{c}/state", since=mark, timeout=5, detail=s.describe)
    col.wait_msg(f"{BASE}/stats", timeout=5, detail=s.describe)
    version = _service_version(s)
    problems: list[str] = []

    d = mh.validate_discovery(configs, prefix=PREFIX, node_id=NODE, base=BASE,
                              cameras=list(cams), sw_version=version)
    problems += d.problems
    states = _latest_states(col)
    problems += mh.check_values(d, states)

    # availability: online, retained
    st = col.wait_msg(f"{BASE}/status", _is(b"online"))
    if not st.retain:
        problems.append(f"{BASE}/status online not retained: {st}")
    # the states: JSON per the contract, retained, QoS 1 (the default)
    for c, spec in cams.items():
        m = col.latest(f"{BASE}/{c}/state")
        assert m is not None
        o = m.obj()
        problems += mh.check_camera_state(o, m.topic)
        if isinstance(o, dict):
            w, h = (320, 240) if c == "cam1" else (352, 288)
            want = {"state": "streaming", "connected": True, "resolution": f"{w}x{h}",
                    "width": w, "height": h, "format": "NV12", "codec": "testsrc",
                    "decoder": "testsrc", "memory": "host", "slots": 8, "subscribers": 0}
            for k, v in want.items():
                if o.get(k) != v:
                    problems.append(f"{m.topic}: {k} = {o.get(k)!r}, expected {v!r}")
            if not isinstance(o.get("frames"), int) or o["frames"] <= 0:
                problems.append(f"{m.topic}: frames {o.get('frames')!r} while streaming")
            fps = (30 if c == "cam1" else 15)
            if not isinstance(o.get("fps"), (int, float)) or not 0.6 * fps <= o["fps"] <= 1.4 * fps:
                problems.append(f"{m.topic}: fps {o.get('fps')!r}, the camera runs at {fps}")
    stats = col.latest(f"{BASE}/stats")
    assert stats is not None
    so = stats.obj()
    problems += mh.check_stats(so, stats.topic, NODE)
    if isinstance(so, dict):
        for k, v in (("cameras", 2), ("streaming", 2), ("version", version)):
            if so.get(k) != v:
                problems.append(f"{stats.topic}: {k} = {so.get(k)!r}, expected {v!r}")
    for m in col.messages(since=0):
        if m.topic.startswith(BASE + "/") or m.topic.startswith(PREFIX + "/"):
            if not m.retain and m.payload:
                problems.append(f"not retained: {m}")
            if m.qos != 1:
                problems.append(f"QoS {m.qos}, expected 1 (the default): {m}")
    # nothing under other prefixes; the client id is the default cuframes-<node_id>
    others = [t for t in col.topics() if not t.startswith((BASE + "/", PREFIX + "/"))]
    if others:
        problems.append(f"topics outside {BASE}/ and {PREFIX}/: {others}")
    if not b.connects_of(f"cuframes-{NODE}"):
        problems.append(f"no connection from client id cuframes-{NODE} (the default) in the "
                        f"broker log:\n{b.log_tail()}")
    # the broker's retained store holds every config and state
    store = mh.retained(b.port)
    for t in list(configs) + [f"{BASE}/{c}/state" for c in cams] + [f"{BASE}/stats",
                                                                   f"{BASE}/status"]:
        if t not in store:
            problems.append(f"{t}: not in the broker's retained store")

    # a restart: the same discovery payloads (identifiers stable)
    before = {t: json.loads(p) for t, p in store.items() if t.startswith(PREFIX + "/") and p}
    assert s.stop(signal.SIGTERM) == 0, s.log_tail()
    mark = col.mark()
    s2 = service(cams, mq(b))
    after_cfgs = _wait_announced(col, s2, list(cams), since=mark)
    after = {t: json.loads(p) for t, p in after_cfgs.items() if p}
    if set(after) != set(before):
        problems.append(f"after a restart the discovery topics differ: only before "
                        f"{sorted(set(before) - set(after))}, only after "
                        f"{sorted(set(after) - set(before))}")
    for t in sorted(set(before) & set(after)):
        if before[t] != after[t]:
            problems.append(f"{t}: payload changed across a restart:\n    before {before[t]}\n"
                            f"    after  {after[t]}")
    _fail_on(problems, "discovery / states")


def test_custom_prefix_base_and_ha_birth(broker: Callable[..., mh.Broker],
                                         collector: Callable[..., mh.Collector],
                                         service: Callable[..., svc.Service]) -> None:
    """discovery_prefix and base_topic are honoured; `<prefix>/status` = online (Home
    Assistant's birth message) makes the service send every discovery config again."""
    b = broker()
    col = collector(b)
    prefix, base, node = "hass", "site/nvr1", "nvr1"
    s = service({"cam": mh.testsrc()},
                mq(b, node, discovery_prefix=prefix, base_topic=base))
    configs = _wait_announced(col, s, ["cam"], base=base, prefix=prefix, node=node)
    d = mh.validate_discovery(configs, prefix=prefix, node_id=node, base=base, cameras=["cam"])
    problems = d.problems + mh.check_values(d, _latest_states(col, base))
    stray = [t for t in col.topics() if not t.startswith((base + "/", prefix + "/"))]
    if stray:
        problems.append(f"topics outside {base}/ and {prefix}/: {stray}")
    _fail_on(problems, "custom prefix and base topic")
    assert configs, "no discovery config"

    for round_ in range(2):
        mark = col.mark()
        col.publish(f"{prefix}/status", b"online", retain=False)
        missing = lambda: [t for t in configs  # noqa: E731
                           if not col.messages(t, since=mark, pred=lambda m: bool(m.payload))]
        col.wait(lambda: not missing(), 10,
                 f"every discovery config re-sent after {prefix}/status online "
                 f"(round {round_ + 1})", lambda: f"not re-sent: {missing()}\n{s.log_tail()}")
        for t, p in configs.items():
            again = col.messages(t, since=mark)[-1]
            assert json.loads(again.payload) == json.loads(p), (t, p, again)
            assert again.retain, again
    s.assert_running()


def test_ha_ids_for_names_with_dots_dashes_and_capitals(
        broker: Callable[..., mh.Broker], collector: Callable[..., mh.Collector],
        service: Callable[..., svc.Service], runtime_dir: str, workdir: Path) -> None:
    """Camera and subscriber names may hold '.', '-' and capitals, which HA refuses in ids: the
    ids are the names made HA ids (front.door -> front_door), every rule still holds, and two
    cameras that would share an id are a config error naming both."""
    b = broker()
    col = collector(b)
    s = service({"front.door": mh.testsrc(), "Back-Yard": mh.testsrc()}, mq(b))
    s.wait_state("front.door", "streaming", 10)
    reader = svc.FrameReader("cam-front.door", runtime_dir, 320, 240, consumer_name="Det.v2",
                             strict=False)
    reader.start()
    try:
        reader.wait_frames(5, 10, s.describe)
        # the topic level is the subscriber's id, the JSON keeps its name as given
        t = f"{BASE}/front.door/subscribers/det_v2"
        m = col.wait_msg(t, timeout=10, detail=s.describe)
        assert m.json()["name"] == "Det.v2", m
        configs = _wait_configs(col, 8 * 2 + 3 + 3)
    finally:
        reader.finish()
    d = mh.validate_discovery(configs, prefix=PREFIX, node_id=NODE, base=BASE,
                              cameras=["front.door", "Back-Yard"],
                              subscribers={"front.door": ["Det.v2"]})
    ids = sorted(json.loads(p)["unique_id"] for p in configs.values())
    assert "cuframes_test_back_yard_fps" in ids and "cuframes_test_front_door_fps" in ids, ids
    assert "cuframes_test_front_door_sub_det_v2_frames" in ids, ids
    _fail_on(d.problems + mh.check_values(d, _latest_states(col)), "discovery for such names")
    s.stop()

    # front.door and Front_Door would both be front_door: refused before anything starts
    cfg = workdir / "clash.yaml"
    svc.write_config(cfg, {"front.door": mh.testsrc(), "Front_Door": mh.testsrc()},
                     runtime_dir, mqtt=mq(b))
    r = svc.run_service(["--config", str(cfg), "--check-config"])
    assert r.returncode == 2, r
    assert ("cameras 'front.door' and 'Front_Door' would share the id 'front_door'"
            in r.stderr), r.stderr


def test_entities_of_a_camera_removed_while_stopped_are_swept(
        broker: Callable[..., mh.Broker], collector: Callable[..., mh.Collector],
        service: Callable[..., svc.Service]) -> None:
    """A camera removed from the config while the service was stopped: on the next start its
    retained discovery configs and state are deleted from the broker (docs/mqtt.md), even when
    its id extends a remaining camera's ("front_door" vs "front"); the rest stay. The configs
    go first, the state CLEAR_STATES_AFTER_S later (Home Assistant's removal is asynchronous)."""
    b = broker()
    col = collector(b)
    s = service({"front": mh.testsrc(), "front_door": mh.testsrc()}, mq(b))
    _wait_announced(col, s, ["front", "front_door"])
    assert s.stop(signal.SIGTERM) == 0, s.log_tail()
    gone = "cuframes_test_front_door_"
    before = mh.retained(b.port)
    assert [t for t in before if gone in t] and f"{BASE}/front_door/state" in before, before

    gone_cfgs = [t for t in before if gone in t]
    mark = col.mark()
    s2 = service({"front": mh.testsrc()}, mq(b), name="second.yaml")
    _wait_announced(col, s2, ["front"], since=mark)
    _fail_on(_removal_order(col, mark, gone_cfgs, [f"{BASE}/front_door/state"], s2.describe),
             "the sweep's removal order")

    def left() -> list[str]:
        return [t for t in mh.retained(b.port) if gone in t or t == f"{BASE}/front_door/state"]
    col.wait(lambda: not left(), 10, "front_door's retained configs and state deleted",
             lambda: f"still retained: {left()}\n{s2.log_tail()}")
    after = mh.retained(b.port)
    kept = [t for t in after if t.startswith(f"{PREFIX}/") and "cuframes_test_front_" in t]
    assert len(kept) == mh.CAMERA_ENTITIES, sorted(after)  # front's own entities are untouched
    s2.assert_running()


def test_tls_broker(workdir: Path, collector: Callable[..., mh.Collector],
                    service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """mqtt.tls: a broker's TLS listener verified against tls.ca_file (hostname included)
    works; a broker whose certificate another CA signed is refused with an error line naming
    TLS, retried, and the service keeps running."""
    files = mh.make_tls_files(workdir / "tls", "broker")
    other = mh.make_tls_files(workdir / "tls", "other")
    b = mh.Broker(workdir, tls=files).start()
    try:
        col = collector(b)
        s = service({"cam": mh.testsrc()},
                    mq(b, port=b.tls_port, tls={"ca_file": str(files["cafile"])}))
        _wait_announced(col, s, ["cam"])
        assert any(f"MQTT: connected to ssl://127.0.0.1:{b.tls_port}" in ln
                   for ln in _log_lines(s)), s.log_tail()

        bad = service({"cam2": mh.testsrc()},
                      mq(b, "wrong_ca", port=b.tls_port,
                         tls={"ca_file": str(other["cafile"])}),
                      rt=runtime_dir + "-2", name="bad.yaml")
        pat = f"error MQTT: cannot connect to ssl://127.0.0.1:{b.tls_port}: "
        col.wait(lambda: [ln for ln in _log_lines(bad) if pat in ln], 20,
                 "an error line for the refused certificate", bad.log_tail)
        line = next(ln for ln in _log_lines(bad) if pat in ln)
        assert "TLS" in line or "SSL" in line or "certificate" in line, line
        print(f"refused: {line}")
        assert not col.messages("cuframes/wrong_ca/status"), "connected despite the wrong CA"
        bad.assert_running()
        s.assert_running()
    finally:
        b.stop()


# ---- availability ------------------------------------------------------------------------

def test_online_offline_and_last_will(broker: Callable[..., mh.Broker],
                                      collector: Callable[..., mh.Collector],
                                      service: Callable[..., svc.Service]) -> None:
    b = broker()
    col = collector(b)
    topic = f"{BASE}/status"
    s = service({"cam": mh.testsrc()}, mq(b))
    m = col.wait_msg(topic, _is(b"online"), timeout=10, detail=s.describe)
    assert m.retain, f"online not retained: {m}"
    assert mh.retained(b.port).get(topic) == b"online"

    # a clean SIGTERM publishes offline (retained) before the exit
    mark = col.mark()
    assert s.stop(signal.SIGTERM) == 0, s.log_tail()
    m = col.wait_msg(topic, _is(b"offline"), since=mark, timeout=5,
                     what="offline after SIGTERM", detail=s.log_tail)
    assert m.retain, f"offline not retained: {m}"
    assert mh.retained(b.port).get(topic) == b"offline"

    # online again on the next start; SIGKILL: the broker publishes the last will
    mark = col.mark()
    s2 = service({"cam": mh.testsrc()}, mq(b))
    col.wait_msg(topic, _is(b"online"), since=mark, timeout=10, detail=s2.describe)
    s2.wait_state("cam", "streaming", 10)
    mark = col.mark()
    s2.stop(signal.SIGKILL)
    m = col.wait_msg(topic, _is(b"offline"), since=mark, timeout=10,
                     what="the last will after SIGKILL", detail=b.log_tail)
    assert m.retain, f"the last will is not retained: {m}"
    assert mh.retained(b.port).get(topic) == b"offline"

    # and a third start after the kill takes over (rings and MQTT)
    mark = col.mark()
    s3 = service({"cam": mh.testsrc()}, mq(b))
    col.wait_msg(topic, _is(b"online"), since=mark, timeout=10, detail=s3.describe)
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
    _wait_announced(col, s, ["cam"])
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
        configs = _wait_configs(col, mh.CAMERA_ENTITIES + 2 * 3)
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
    problems += d.problems + mh.check_values(d, _latest_states(col))

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
    _fail_on(problems, "subscriber sensors")


# ---- a camera removed --------------------------------------------------------------------

def test_camera_removed_by_sighup(broker: Callable[..., mh.Broker],
                                  collector: Callable[..., mh.Collector],
                                  service: Callable[..., svc.Service],
                                  runtime_dir: str) -> None:
    """SIGHUP without camera b: each of b's discovery topics (its subscriber's too) gets an
    empty retained payload, then, CLEAR_STATES_AFTER_S later, its state topics are cleared
    (never in the same burst: Home Assistant would still have the entities); a's entities
    stay as they were."""
    b = broker()
    col = collector(b)
    cams = {"a": mh.testsrc(320, 240, 30), "b": mh.testsrc(320, 240, 30)}
    s = service(cams, mq(b))
    _wait_announced(col, s, ["a", "b"])
    reader = svc.FrameReader("cam-b", runtime_dir, 320, 240, consumer_name="det-b", strict=False)
    reader.start()
    reader.wait_frames(5, 10, s.describe)
    col.wait_msg(f"{BASE}/b/subscribers/det_b", timeout=10, detail=s.describe)
    configs = _wait_configs(col, 8 * 2 + 3)
    store = mh.retained(b.port)

    def owner(t: str, p: bytes) -> Optional[str]:
        o = json.loads(p) if p else {}
        ids = mh.identifiers(mh.expand(o).get("device"))
        return next((c for c in cams if f"cuframes_{NODE}_{c}" in ids), None)
    b_cfgs = [t for t, p in configs.items() if p and owner(t, p) == "b"]
    a_cfgs = {t: p for t, p in configs.items() if p and owner(t, p) == "a"}
    b_states = [t for t in store if t.startswith(f"{BASE}/b/")]
    assert len(b_cfgs) >= mh.CAMERA_ENTITIES + 3, f"b's configs before the reload: {b_cfgs}"
    assert f"{BASE}/b/state" in b_states and f"{BASE}/b/subscribers/det_b" in b_states, store

    mark = col.mark()
    svc.write_config(s.config, {"a": cams["a"]}, runtime_dir, mqtt=mq(b))
    s.send(signal.SIGHUP)
    svc.wait_for(lambda: s.status() is not None and "b" not in (s.status() or {}).get(
        "cameras", {}), 10, "b gone from the status file", s.describe)
    reader.join(timeout=10)
    assert isinstance(reader.error, cuframes.CuframesPublisherGone), repr(reader.error)

    problems = _removal_order(col, mark, b_cfgs, b_states, s.describe)
    # a: another state after the reload, its configs untouched
    col.wait_msg(f"{BASE}/a/state", _state_is("streaming"), since=mark, timeout=5,
                 detail=s.describe)
    for t in a_cfgs:
        if col.messages(t, since=mark, pred=lambda m: m.payload == b""):
            problems.append(f"{t}: camera a's entity was deleted")
    after = mh.retained(b.port)
    left = sorted(t for t in after if t.startswith(f"{BASE}/b/") or t in b_cfgs)
    if left:
        problems.append(f"b's topics still retained by the broker: {left}")
    for t, p in a_cfgs.items():
        if t not in after:
            problems.append(f"{t}: a's config is gone from the retained store")
        elif json.loads(after[t]) != json.loads(p):
            problems.append(f"{t}: a's config changed: {p!r} -> {after[t]!r}")
    # nothing of b comes back after its deletion
    for t in b_cfgs + b_states:
        ms = col.messages(t, since=mark)
        last_empty = max((m.idx for m in ms if m.payload == b""), default=None)
        back = [m for m in ms if m.payload and last_empty is not None and m.idx > last_empty]
        if back:
            problems.append(f"{t}: published again after its deletion: {back[:2]}")
    _fail_on(problems, "camera removed by SIGHUP")


def test_camera_back_before_its_states_are_cleared(broker: Callable[..., mh.Broker],
                                                   collector: Callable[..., mh.Collector],
                                                   service: Callable[..., svc.Service],
                                                   runtime_dir: str) -> None:
    """A camera removed by SIGHUP and put back by another before its states were due to be
    cleared: its entities are announced again and its state is never cleared afterwards."""
    b = broker()
    col = collector(b)
    cams = {"a": mh.testsrc(320, 240, 30), "b": mh.testsrc(320, 240, 30)}
    s = service(cams, mq(b))
    configs = _wait_announced(col, s, ["a", "b"])
    b_cfg = next(t for t, p in configs.items() if p and "cuframes_test_b_connectivity" in t)

    mark = col.mark()
    svc.write_config(s.config, {"a": cams["a"]}, runtime_dir, mqtt=mq(b))
    s.send(signal.SIGHUP)
    gone = col.wait_msg(b_cfg, _is(b""), since=mark, timeout=10, what="deleted",
                        detail=s.describe)
    svc.write_config(s.config, cams, runtime_dir, mqtt=mq(b))
    s.send(signal.SIGHUP)
    back = col.wait_msg(b_cfg, lambda m: m.payload != b"", since=gone.idx, timeout=10,
                        what="announced again", detail=s.describe)
    assert back.t - gone.t < CLEAR_STATES_AFTER_S, (
        f"b came back {back.t - gone.t:.1f} s after its removal: too late for this test")
    # Past the time its states were due: b's state keeps coming, never cleared.
    late = col.wait_msg(f"{BASE}/b/state",
                        lambda m: m.t > gone.t + CLEAR_STATES_AFTER_S + 1 and m.payload != b"",
                        since=back.idx, timeout=CLEAR_STATES_AFTER_S + 10,
                        what="a state after the clearing would have been due",
                        detail=s.describe)
    cleared = col.messages(f"{BASE}/b/state", since=gone.idx, pred=lambda m: m.payload == b"")
    assert not cleared, f"b's state was cleared though b was back within the wait: {cleared}"
    assert (late.obj() or {}).get("state") == "streaming", late
    assert mh.retained(b.port).get(f"{BASE}/b/state", b""), "b's state is not retained"


# ---- the broker goes away ----------------------------------------------------------------

def test_broker_restart(broker: Callable[..., mh.Broker], collector: Callable[..., mh.Collector],
                        service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """mosquitto SIGKILLed for ~6 s (many stats intervals) and started again on its port: the
    service does not exit, a STRICT_ORDER subscriber sees consecutive seqs throughout, RSS
    stays flat, nothing published while down is delivered later (dropped, not queued), the
    failure is logged once, and online + discovery + states come again."""
    interval_s = 0.1
    b = broker()
    col = collector(b)
    cfg = mq(b, stats_interval=f"{int(interval_s * 1000)}ms")
    s = service({"ts": mh.testsrc(320, 240, 30)}, cfg)
    configs = _wait_announced(col, s, ["ts"])
    reader = svc.FrameReader("cam-ts", runtime_dir, 320, 240, consumer_name="outage-reader")
    reader.start()
    reader.wait_frames(30, 10, s.describe)
    rss: list[dict[str, int]] = [mh.vm_rss_kib(s.pid)]
    log_before = len(_log_lines(s))

    b.kill()
    t_kill = time.monotonic()
    cam = s.camera("ts") or {}
    frames_at_kill = cam.get("frames", 0)
    n_at_kill = reader.count()
    # Down for 6 s: sample memory every interval; the cameras must not notice.
    down_s = 6.0
    while time.monotonic() - t_kill < down_s:
        time.sleep(interval_s)  # the outage's length, not a synchronisation
        s.assert_running()
        rss.append(mh.vm_rss_kib(s.pid))
        if reader.error is not None:
            reader.finish()
    cam = s.wait_state("ts", "streaming", 1)
    frames_at_restart = cam["frames"]
    n_during = reader.count() - n_at_kill
    mark = col.mark()
    subs_before = col.subscribed_gen
    b.start()
    col.wait_subscribed(subs_before + 1, 15)
    t_back = time.monotonic()
    problems: list[str] = []

    # announced again
    col.wait_msg(f"{BASE}/status", _is(b"online"), since=mark, timeout=RECONNECT_S,
                 what="online after the broker came back", detail=s.describe)
    t_online = time.monotonic() - t_back
    again = _wait_configs(col, len(configs), since=mark)
    if set(configs) - set(again):  # (again may hold more: the reader's entities)
        problems.append(f"discovery not re-sent after reconnecting: missing "
                        f"{sorted(set(configs) - set(again))}")
    col.wait_msg(f"{BASE}/ts/state", _state_is("streaming"), since=mark, timeout=10,
                 detail=s.describe)
    col.wait_msg(f"{BASE}/stats", since=mark, timeout=10, detail=s.describe)
    col.wait_msg(f"{BASE}/ts/subscribers/outage_reader", since=mark, timeout=10,
                 detail=s.describe)

    # nothing queued while down reached the broker afterwards: every state since the restart
    # is newer than the outage (a state in flight at the kill may come again, so the first
    # second after the kill is not counted)
    lo, hi = frames_at_kill + 30, frames_at_restart - 15
    stale = [m for m in col.messages(f"{BASE}/ts/state", since=mark)
             if isinstance(m.obj(), dict) and lo < m.obj().get("frames", 0) < hi]
    if stale:
        problems.append(f"{len(stale)} camera states from the outage (frames between {lo} and "
                        f"{hi}) delivered after the reconnect: queued, not dropped: "
                        f"{stale[:3]}")

    # frames never stopped
    reader.wait_frames(reader.count() + 30, 10, s.describe)
    reader.finish()
    seqs = reader.seqs
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap in the seqs"
    if n_during < 0.7 * 30 * down_s:
        problems.append(f"only {n_during} frames read in {down_s} s of outage at 30 fps")
    gaps = [round(b2 - a2, 3) for a2, b2 in zip(reader.times, reader.times[1:]) if b2 - a2 > 0.5]
    if gaps:
        problems.append(f"frames paused for {gaps} s during the run")

    # memory: flat while down
    base_kib = rss[1]["VmRSS"] if len(rss) > 1 else rss[0]["VmRSS"]
    peak = max(r["VmRSS"] for r in rss)
    growth = peak - base_kib
    if growth > 4 * 1024:
        problems.append(f"VmRSS grew by {growth} KiB while the broker was down "
                        f"({rss[0]} -> {rss[-1]})")

    # logged, but once: the service's warnings and errors while the broker was down
    lines = _log_lines(s)[log_before:]
    bad = [ln for ln in lines if _is_problem_line(ln)]
    if not bad:
        problems.append("the broker failure was not logged (no warning/error line)")
    elif len(bad) > 2:
        problems.append(f"the failure was logged {len(bad)} times (docs: once, then retries "
                        f"with backoff):\n    " + "\n    ".join(bad[:10]))
    s.assert_running()
    print(f"outage {down_s} s: {n_during} frames read, RSS {rss[0]['VmRSS']} -> "
          f"{rss[-1]['VmRSS']} KiB (peak growth {growth} KiB), online {t_online:.1f} s after "
          f"the broker came back")
    _fail_on(problems, "broker restart")


def test_broker_down_at_start(broker: Callable[..., mh.Broker],
                              collector: Callable[..., mh.Collector],
                              service: Callable[..., svc.Service],
                              workdir: Path, runtime_dir: str) -> None:
    """No broker when the service starts: the cameras stream anyway; when the broker appears
    the service connects and announces."""
    port = svc.free_port()
    s = service({"ts": mh.testsrc()}, {"host": "127.0.0.1", "port": port,
                                       "node_id": NODE, "stats_interval": "500ms"})
    s.wait_state("ts", "streaming", 10)
    with cuframes.subscribe("cam-ts", connect_timeout_ms=5000, runtime_dir=runtime_dir) as sub:
        for _ in range(10):
            with sub.next_frame(timeout_ms=3000) as f:
                svc.check_testsrc_frame(f, 320, 240)
    svc.wait_for(lambda: any(_is_problem_line(ln) for ln in _log_lines(s)),
                 10, "a warning/error line about the unreachable broker", s.describe)
    b = mh.Broker(workdir, port=port)
    try:
        b.start()
        col = mh.Collector(b.port)
        try:
            _wait_announced(col, s, ["ts"], timeout=RECONNECT_S)
        finally:
            col.close()
    finally:
        b.stop()
    s.assert_running()


# ---- a broker with a password ------------------------------------------------------------

USERS = {"cuframes": "s3cret-Pa55", "ha": "ha-pass"}


def test_auth_ok(broker: Callable[..., mh.Broker], collector: Callable[..., mh.Collector],
                 service: Callable[..., svc.Service]) -> None:
    b = broker(USERS)
    col = collector(b, "ha", USERS["ha"])
    s = service({"cam": mh.testsrc()},
                mq(b, username="cuframes", password=USERS["cuframes"]))
    configs = _wait_announced(col, s, ["cam"])
    assert len(configs) == mh.CAMERA_ENTITIES + 3, sorted(configs)  # the camera's and the service's
    assert b.connects_of(f"cuframes-{NODE}"), b.log_tail()
    assert not b.refused_connects(), b.refused_connects()
    leaked = [ln for ln in _log_lines(s) if USERS["cuframes"] in ln]
    assert not leaked, f"the password is in the service's log: {leaked}"


def test_auth_wrong_password(broker: Callable[..., mh.Broker],
                             collector: Callable[..., mh.Collector],
                             service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """A wrong password: a clear log line with the broker's answer, retries with backoff, no
    exit, frames flow. Fixed by SIGHUP: the client reconnects, the camera is not restarted."""
    b = broker(USERS)
    col = collector(b, "ha", USERS["ha"])
    s = service({"cam": mh.testsrc(320, 240, 30)},
                mq(b, username="cuframes", password="wrong-password"))
    s.wait_state("cam", "streaming", 10)
    reader = svc.FrameReader("cam-cam", runtime_dir, 320, 240, consumer_name="auth-reader")
    reader.start()
    reader.wait_frames(10, 10, s.describe)
    said = svc.wait_for(
        lambda: [ln for ln in _log_lines(s)
                 if re.search(r"not authori[sz]ed|bad user ?name or password", ln, re.I)],
        10, 'a log line with the broker\'s answer ("not authorized")', s.describe)
    assert _is_problem_line(said[0]), f"not a warning/error line: {said[0]}"
    # retries: several refused CONNECTs, not a tight loop (1 s doubling)
    t0 = time.monotonic()
    svc.wait_for(lambda: len(b.refused_connects()) >= 3, 15,
                 "3 refused connection attempts (retries)", lambda: b.log_tail() + s.log_tail())
    took = time.monotonic() - t0
    n = len(b.refused_connects())
    assert n <= 8, f"{n} attempts: no backoff\n{b.log_tail()}"
    s.assert_running()
    reader.wait_frames(reader.count() + 30, 10, s.describe)
    assert not col.messages(f"{BASE}/status"), "something was published with a wrong password?"
    leaked = [ln for ln in _log_lines(s) if "wrong-password" in ln]
    assert not leaked, f"the password is in the service's log: {leaked}"
    print(f"refused attempts: {n} (3rd after {took:.1f} s); log: {said[0]}")

    # the right password, by SIGHUP: connects; the camera's ring goes on without a gap
    epoch = cuframes.observe("cam-cam", runtime_dir=runtime_dir)["epoch"]
    mark = col.mark()
    svc.write_config(s.config, {"cam": mh.testsrc(320, 240, 30)}, runtime_dir,
                     mqtt=mq(b, username="cuframes", password=USERS["cuframes"]))
    s.send(signal.SIGHUP)
    _wait_announced(col, s, ["cam"], since=mark, timeout=10)
    reader.wait_frames(reader.count() + 30, 10, s.describe)
    reader.finish()
    seqs = reader.seqs
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap across the reload"
    assert cuframes.observe("cam-cam", runtime_dir=runtime_dir)["epoch"] == epoch, (
        "the camera restarted for an mqtt change")


# ---- configuration -----------------------------------------------------------------------

HEAD = 'runtime_dir: "{rt}"\nstatus_interval: 1s\ncameras:\n  a:\n    url: "testsrc://"\nmqtt:\n'
#       line 1                  line 2               line 3     line 4  line 5              line 6
H = HEAD + "  host: 127.0.0.1\n"  # line 7; the bad key is on line 8
BAD = [
    ("port-not-a-number", H + '  port: "abc"\n', 8, r"mqtt\.port"),
    ("port-out-of-range", H + "  port: 70000\n", 8, r"mqtt\.port"),
    ("port-zero", H + "  port: 0\n", 8, r"mqtt\.port"),
    ("qos-3", H + "  qos: 3\n", 8, r"mqtt\.qos"),
    ("qos-word", H + "  qos: once\n", 8, r"mqtt\.qos"),
    ("unknown-key", H + "  bogus: 1\n", 8, r"mqtt\.bogus"),
    ("unknown-key-typo", H + "  usename: u\n", 8, r"mqtt\.usename"),
    ("unknown-tls-key", H + "  tls:\n    ca: /etc/hostname\n", 9, r"mqtt\.tls\.ca"),
    ("bad-node-id", H + '  node_id: "my node"\n', 8, r"mqtt\.node_id"),
    ("bad-node-id-slash", H + '  node_id: "a/b"\n', 8, r"mqtt\.node_id"),
    ("bad-stats-interval", H + "  stats_interval: soon\n", 8, r"mqtt\.stats_interval"),
    ("bad-keepalive", H + "  keepalive: forever\n", 8, r"mqtt\.keepalive"),
    ("bad-discovery-bool", H + "  discovery: maybe\n", 8, r"mqtt\.discovery"),
    ("bad-tls-insecure", H + "  tls:\n    insecure: perhaps\n", 9, r"mqtt\.tls\.insecure"),
    ("missing-host", HEAD + "  port: 1883\n", (6, 7), r"mqtt(\.host)?"),
    ("empty-host", HEAD + '  host: ""\n', 7, r"mqtt\.host"),
    ("mqtt-not-a-map", HEAD.replace("mqtt:\n", "mqtt: 5\n"), 6, r"mqtt"),
]


def _expect_message(stderr: str, path: Path, line: int | tuple[int, ...], key: str) -> None:
    lines = "|".join(str(n) for n in (line if isinstance(line, tuple) else (line,)))
    pat = rf"{re.escape(str(path))}:({lines}):\d+: {key}: \S"
    assert re.search(pat, stderr, re.M), (
        f"expected a line matching {pat!r} on stderr; got:\n{stderr}")


@pytest.mark.parametrize("text,line,key", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_mqtt_config_rejected(text: str, line: int | tuple[int, ...], key: str,
                                  workdir: Path, runtime_dir: str) -> None:
    path = workdir / "bad.yaml"
    path.write_text(text.format(rt=runtime_dir))
    for extra in ([], ["--check-config"]):
        r = svc.run_service(["--config", str(path), *extra])
        assert r.returncode == 2, (f"{extra}: exit code {r.returncode}, expected 2\n"
                                   f"stdout: {r.stdout}\nstderr: {r.stderr}")
        _expect_message(r.stderr, path, line, key)
    assert cuframes.list_publishers(runtime_dir) == []


def test_check_config_mqtt_good(workdir: Path, runtime_dir: str) -> None:
    """docs/mqtt.md's example section (TLS files that exist) passes --check-config, and so
    does the smallest one (host only)."""
    cert = workdir / "ca.crt"
    cert.write_text("not checked at load time\n")
    full = {"host": "localhost", "port": 1883, "client_id": "cuframes-nvr",
            "username": "cuframes", "password": "secret",
            "tls": {"ca_file": str(cert), "cert_file": str(cert), "key_file": str(cert),
                    "insecure": False},
            "keepalive": "30s", "node_id": "nvr", "base_topic": "cuframes/nvr",
            "stats_interval": "10s", "discovery": True, "discovery_prefix": "homeassistant",
            "qos": 1}
    for name, section in (("full", full), ("host-only", {"host": "broker.lan"}),
                          ("qos0", {"host": "localhost", "qos": 0, "port": 8883,
                                    "tls": {"insecure": True}})):
        path = svc.write_config(workdir / f"{name}.yaml", {"a": mh.testsrc()}, runtime_dir,
                                mqtt=section)
        r = svc.run_service(["--config", str(path), "--check-config"])
        assert r.returncode == 0, (name, r.returncode, r.stdout, r.stderr)


# ---- several hosts, QoS 0, discovery off, defaults ---------------------------------------

def test_node_ids_share_a_broker(broker: Callable[..., mh.Broker],
                                 collector: Callable[..., mh.Collector],
                                 service: Callable[..., svc.Service],
                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two hosts (node_id n1 with qos 0, n2) with the same camera name share a broker: their
    topics and unique_ids do not collide; n3 with discovery off publishes states only."""
    b = broker()
    col = collector(b)
    rts = [str(tmp_path_factory.mktemp("rt")) for _ in range(3)]
    s1 = service({"cam": mh.testsrc()}, mq(b, "n1", qos=0), rt=rts[0], name="n1.yaml")
    s2 = service({"cam": mh.testsrc()}, mq(b, "n2"), rt=rts[1], name="n2.yaml")
    s3 = service({"cam": mh.testsrc()}, mq(b, "n3", discovery=False), rt=rts[2],
                 name="n3.yaml")
    c1 = _wait_announced(col, s1, ["cam"], base="cuframes/n1", node="n1")
    c2 = _wait_announced(col, s2, ["cam"], base="cuframes/n2", node="n2")
    col.wait_msg("cuframes/n3/status", _is(b"online"), timeout=10, detail=s3.describe)
    col.wait_msg("cuframes/n3/cam/state", _state_is("streaming"), timeout=10,
                 detail=s3.describe)
    col.wait_msg("cuframes/n2/stats", timeout=10, detail=s2.describe)
    problems: list[str] = []
    for node, cfgs in (("n1", c1), ("n2", c2)):
        d = mh.validate_discovery(cfgs, prefix=PREFIX, node_id=node, base=f"cuframes/{node}",
                                  cameras=["cam"])
        problems += [f"[{node}] {p}" for p in d.problems]
    uids1 = {json.loads(p).get("unique_id") for p in c1.values() if p}
    uids2 = {json.loads(p).get("unique_id") for p in c2.values() if p}
    if uids1 & uids2:
        problems.append(f"unique_ids shared by two hosts: {sorted(uids1 & uids2)}")
    if set(c1) & set(c2):
        problems.append(f"discovery topics shared by two hosts: {sorted(set(c1) & set(c2))}")
    n3_cfgs = [m for m in col.messages() if (m.topic.startswith(PREFIX + "/")
                                              and "/n3/" in m.topic)
               or b"cuframes_n3" in m.payload]
    if n3_cfgs:
        problems.append(f"discovery: false, yet discovery was published: {n3_cfgs[:3]}")
    for m in col.messages():
        if m.topic.startswith("cuframes/n1/") or "/n1/" in m.topic:
            if m.qos != 0:
                problems.append(f"qos: 0 configured, message at QoS {m.qos}: {m}")
        elif m.topic.startswith("cuframes/n2/") and m.qos != 1:
            problems.append(f"QoS {m.qos} with the default qos 1: {m}")
    if not b.connects_of("cuframes-n1") or not b.connects_of("cuframes-n2"):
        problems.append(f"client ids cuframes-n1/cuframes-n2 not in the broker log\n"
                        f"{b.log_tail()}")
    _fail_on(problems, "several hosts on one broker")


def test_mqtt_defaults(broker: Callable[..., mh.Broker], collector: Callable[..., mh.Collector],
                       service: Callable[..., svc.Service]) -> None:
    """Only host and port: node_id is the host name, base cuframes/<node_id>, client id
    cuframes-<node_id>, discovery on under homeassistant/, QoS 1."""
    b = broker()
    col = collector(b)
    s = service({"cam": mh.testsrc()}, {"host": "127.0.0.1", "port": b.port})
    m = col.wait(lambda: next((x for x in col.messages() if re.fullmatch(
        r"cuframes/[^/]+/status", x.topic) and x.payload == b"online"), None), 10,
        "online on cuframes/<node_id>/status", s.describe)
    node = m.topic.split("/")[1]
    host = socket.gethostname()
    if re.fullmatch(r"[A-Za-z0-9_-]+", host):
        assert node == host, f"node_id {node!r}, expected the host name {host!r}"
    else:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", node), f"node_id {node!r} from host {host!r}"
    base = f"cuframes/{node}"
    configs = _wait_announced(col, s, ["cam"], base=base, node=node)
    d = mh.validate_discovery(configs, prefix=PREFIX, node_id=node, base=base, cameras=["cam"])
    _fail_on(d.problems, "defaults")
    assert b.connects_of(f"cuframes-{node}"), b.log_tail()
    wrong_qos = [x for x in col.messages() if x.topic.startswith((base, PREFIX)) and x.qos != 1]
    assert not wrong_qos, wrong_qos[:3]
