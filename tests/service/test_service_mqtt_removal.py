"""A camera's MQTT entities removed (docs/mqtt.md), with a real mosquitto started by the tests and
a real MQTT client: a camera removed by SIGHUP, a camera put back before its states were cleared,
the stale entities of a camera removed while the service was stopped; the discovery configs are
deleted first, the states only later (Home Assistant removes entities asynchronously)."""

from __future__ import annotations

import json
import signal
from typing import Callable, Optional

import cuframes

import mqtt_helpers as mh
from mqtt_helpers import broker, collector  # noqa: F401  (fixtures)
from mqtt_service import (BASE, NODE, PREFIX, fail_on, mq, payload_is, state_is, wait_announced,
                          wait_configs)
import svc

# docs/mqtt.md: a removed entity's retained states are cleared this long after its discovery
# configs were deleted (Home Assistant removes entities asynchronously).
CLEAR_STATES_AFTER_S = 5.0

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
    wait_announced(col, s, ["front", "front_door"])
    assert s.stop(signal.SIGTERM) == 0, s.log_tail()
    gone = "cuframes_test_front_door_"
    before = mh.retained(b.port)
    assert [t for t in before if gone in t] and f"{BASE}/front_door/state" in before, before

    gone_cfgs = [t for t in before if gone in t]
    mark = col.mark()
    s2 = service({"front": mh.testsrc()}, mq(b), name="second.yaml")
    wait_announced(col, s2, ["front"], since=mark)
    fail_on(_removal_order(col, mark, gone_cfgs, [f"{BASE}/front_door/state"], s2.describe),
            "the sweep's removal order")

    def left() -> list[str]:
        return [t for t in mh.retained(b.port) if gone in t or t == f"{BASE}/front_door/state"]
    col.wait(lambda: not left(), 10, "front_door's retained configs and state deleted",
             lambda: f"still retained: {left()}\n{s2.log_tail()}")
    after = mh.retained(b.port)
    kept = [t for t in after if t.startswith(f"{PREFIX}/") and "cuframes_test_front_" in t]
    assert len(kept) == mh.CAMERA_ENTITIES, sorted(after)  # front's own entities are untouched
    s2.assert_running()


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
    wait_announced(col, s, ["a", "b"])
    reader = svc.FrameReader("cam-b", runtime_dir, 320, 240, consumer_name="det-b", strict=False)
    reader.start()
    reader.wait_frames(5, 10, s.describe)
    col.wait_msg(f"{BASE}/b/subscribers/det_b", timeout=10, detail=s.describe)
    configs = wait_configs(col, 8 * 2 + 3)
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
    col.wait_msg(f"{BASE}/a/state", state_is("streaming"), since=mark, timeout=5,
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
    fail_on(problems, "camera removed by SIGHUP")


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
    configs = wait_announced(col, s, ["a", "b"])
    b_cfg = next(t for t, p in configs.items() if p and "cuframes_test_b_connectivity" in t)

    mark = col.mark()
    svc.write_config(s.config, {"a": cams["a"]}, runtime_dir, mqtt=mq(b))
    s.send(signal.SIGHUP)
    gone = col.wait_msg(b_cfg, payload_is(b""), since=mark, timeout=10, what="deleted",
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
