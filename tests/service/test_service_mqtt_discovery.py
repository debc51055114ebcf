"""The MQTT health monitor's Home Assistant discovery against docs/mqtt.md, with a real mosquitto
started by the tests and a real MQTT client: every discovery payload checked against HA's rules,
the JSON states against the value_templates, the same payloads after a restart; a custom prefix
and base topic, HA's birth message; ids of names HA refuses; several hosts (node_ids) on one
broker, QoS 0, discovery off; the defaults."""

from __future__ import annotations

import json
import re
import signal
import socket
from pathlib import Path
from typing import Callable, Optional

import pytest

import mqtt_helpers as mh
from mqtt_helpers import broker, collector  # noqa: F401  (fixtures)
from mqtt_service import (BASE, NODE, PREFIX, fail_on, latest_states, mq, payload_is, state_is,
                          wait_announced, wait_configs)
import svc


def _service_version(s: svc.Service) -> Optional[str]:
    st = s.status()
    return None if st is None else st.get("version")


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
    configs = wait_announced(col, s, list(cams))
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
    states = latest_states(col)
    problems += mh.check_values(d, states)

    # availability: online, retained
    st = col.wait_msg(f"{BASE}/status", payload_is(b"online"))
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
    after_cfgs = wait_announced(col, s2, list(cams), since=mark)
    after = {t: json.loads(p) for t, p in after_cfgs.items() if p}
    if set(after) != set(before):
        problems.append(f"after a restart the discovery topics differ: only before "
                        f"{sorted(set(before) - set(after))}, only after "
                        f"{sorted(set(after) - set(before))}")
    for t in sorted(set(before) & set(after)):
        if before[t] != after[t]:
            problems.append(f"{t}: payload changed across a restart:\n    before {before[t]}\n"
                            f"    after  {after[t]}")
    fail_on(problems, "discovery / states")


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
    configs = wait_announced(col, s, ["cam"], base=base, prefix=prefix, node=node)
    d = mh.validate_discovery(configs, prefix=prefix, node_id=node, base=base, cameras=["cam"])
    problems = d.problems + mh.check_values(d, latest_states(col, base))
    stray = [t for t in col.topics() if not t.startswith((base + "/", prefix + "/"))]
    if stray:
        problems.append(f"topics outside {base}/ and {prefix}/: {stray}")
    fail_on(problems, "custom prefix and base topic")
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
        configs = wait_configs(col, 8 * 2 + 3 + 3)
    finally:
        reader.finish()
    d = mh.validate_discovery(configs, prefix=PREFIX, node_id=NODE, base=BASE,
                              cameras=["front.door", "Back-Yard"],
                              subscribers={"front.door": ["Det.v2"]})
    ids = sorted(json.loads(p)["unique_id"] for p in configs.values())
    assert "cuframes_test_back_yard_fps" in ids and "cuframes_test_front_door_fps" in ids, ids
    assert "cuframes_test_front_door_sub_det_v2_frames" in ids, ids
    fail_on(d.problems + mh.check_values(d, latest_states(col)), "discovery for such names")
    s.stop()

    # front.door and Front_Door would both be front_door: refused before anything starts
    cfg = workdir / "clash.yaml"
    svc.write_config(cfg, {"front.door": mh.testsrc(), "Front_Door": mh.testsrc()},
                     runtime_dir, mqtt=mq(b))
    r = svc.run_service(["--config", str(cfg), "--check-config"])
    assert r.returncode == 2, r
    assert ("cameras 'front.door' and 'Front_Door' would share the id 'front_door'"
            in r.stderr), r.stderr


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
    c1 = wait_announced(col, s1, ["cam"], base="cuframes/n1", node="n1")
    c2 = wait_announced(col, s2, ["cam"], base="cuframes/n2", node="n2")
    col.wait_msg("cuframes/n3/status", payload_is(b"online"), timeout=10, detail=s3.describe)
    col.wait_msg("cuframes/n3/cam/state", state_is("streaming"), timeout=10,
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
    fail_on(problems, "several hosts on one broker")


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
    configs = wait_announced(col, s, ["cam"], base=base, node=node)
    d = mh.validate_discovery(configs, prefix=PREFIX, node_id=node, base=base, cameras=["cam"])
    fail_on(d.problems, "defaults")
    assert b.connects_of(f"cuframes-{node}"), b.log_tail()
    wrong_qos = [x for x in col.messages() if x.topic.startswith((base, PREFIX)) and x.qos != 1]
    assert not wrong_qos, wrong_qos[:3]
