"""What the MQTT tests of cuframes-service (test_service_mqtt_*.py) share: the `mqtt:` section
for a test broker, the topics of node "test", waits for what the service announces (online, its
states, its discovery configs), and the warning and error lines of its log."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

import mqtt_helpers as mh
import svc

PREFIX = "homeassistant"
NODE = "test"
BASE = f"cuframes/{NODE}"
STATS_INTERVAL_S = 0.5


def mq(b: mh.Broker, node: Optional[str] = NODE, **kw: Any) -> dict[str, Any]:
    """An `mqtt:` section for broker b."""
    d: dict[str, Any] = {"host": "127.0.0.1", "port": b.port}
    if node is not None:
        d["node_id"] = node
    d["stats_interval"] = f"{int(STATS_INTERVAL_S * 1000)}ms"
    d.update(kw)
    return d


def payload_is(payload: bytes) -> Callable[[mh.Msg], bool]:
    return lambda m: m.payload == payload


def state_is(state: str) -> Callable[[mh.Msg], bool]:
    def pred(m: mh.Msg) -> bool:
        o = m.obj()
        return isinstance(o, dict) and o.get("state") == state
    return pred


def configs_of(col: mh.Collector, prefix: str = PREFIX, since: int = 0,
               node: str = NODE) -> dict[str, bytes]:
    """The latest discovery config per topic of node `node` since `since`."""
    return {t: p for t, p in mh.discovery_configs(col.messages(since=since), prefix).items()
            if t.split("/")[2:3] == [node]}


def wait_configs(col: mh.Collector, n: int, prefix: str = PREFIX, since: int = 0,
                 node: str = NODE, timeout: float = 10.0) -> dict[str, bytes]:
    """Waits for n non-empty discovery configs (the contract's count); returns what came by
    the deadline: the validation then names what is missing."""
    col.try_wait(lambda: len([p for p in configs_of(col, prefix, since, node).values() if p]) >= n,
                 timeout)
    return configs_of(col, prefix, since, node)


def latest_states(col: mh.Collector, base: str = BASE) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for m in col.messages():
        if m.topic.startswith(base + "/"):
            out[m.topic] = m.payload
    return out


def wait_announced(col: mh.Collector, s: svc.Service, cameras: list[str], since: int = 0,
                   base: str = BASE, prefix: str = PREFIX, node: str = NODE,
                   timeout: float = 15.0) -> dict[str, bytes]:
    """online, a streaming state per camera and the discovery configs (8 per camera) since
    `since`; returns the configs."""
    col.wait_msg(f"{base}/status", payload_is(b"online"), since, timeout, "online", s.describe)
    col.wait_msg(f"{base}/stats", since=since, timeout=timeout, what="service stats",
                 detail=s.describe)
    for cam in cameras:
        col.wait_msg(f"{base}/{cam}/state", state_is("streaming"), since, timeout,
                     "state streaming", s.describe)
    return wait_configs(col, 8 * len(cameras), prefix, since, node, timeout)


def fail_on(problems: list[str], header: str) -> None:
    if problems:
        raise AssertionError(f"{header}: {len(problems)} problem(s)\n  " + "\n  ".join(problems))


def log_lines(s: svc.Service) -> list[str]:
    s._log.flush()
    return s.log_path.read_text(errors="replace").splitlines()


LEVEL_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (\w+)")


def is_problem_line(ln: str) -> bool:
    """A warning, error or critical line of the service's log (not a camera's)."""
    m = LEVEL_RE.match(ln)
    return m is not None and m.group(1) in ("warning", "error", "critical") and "[cam " not in ln
