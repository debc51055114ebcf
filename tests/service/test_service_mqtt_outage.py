"""The MQTT broker goes away (docs/mqtt.md), with a real mosquitto started by the tests and a real
MQTT client: a broker outage (frames go on, memory stays bounded, nothing queued, the failure
logged once, everything announced again), and no broker at the service's start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import cuframes

import mqtt_helpers as mh
from mqtt_helpers import broker, collector  # noqa: F401  (fixtures)
from mqtt_service import (BASE, NODE, fail_on, is_problem_line, log_lines, mq, payload_is,
                          state_is, wait_announced, wait_configs)
import svc

# The contract's backoff: 1 s doubling to 30 s (plus a margin for the announcement).
RECONNECT_S = 40.0

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
    configs = wait_announced(col, s, ["ts"])
    reader = svc.FrameReader("cam-ts", runtime_dir, 320, 240, consumer_name="outage-reader")
    reader.start()
    reader.wait_frames(30, 10, s.describe)
    rss: list[dict[str, int]] = [mh.vm_rss_kib(s.pid)]
    log_before = len(log_lines(s))

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
    col.wait_msg(f"{BASE}/status", payload_is(b"online"), since=mark, timeout=RECONNECT_S,
                 what="online after the broker came back", detail=s.describe)
    t_online = time.monotonic() - t_back
    again = wait_configs(col, len(configs), since=mark)
    if set(configs) - set(again):  # (again may hold more: the reader's entities)
        problems.append(f"discovery not re-sent after reconnecting: missing "
                        f"{sorted(set(configs) - set(again))}")
    col.wait_msg(f"{BASE}/ts/state", state_is("streaming"), since=mark, timeout=10,
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
    lines = log_lines(s)[log_before:]
    bad = [ln for ln in lines if is_problem_line(ln)]
    if not bad:
        problems.append("the broker failure was not logged (no warning/error line)")
    elif len(bad) > 2:
        problems.append(f"the failure was logged {len(bad)} times (docs: once, then retries "
                        f"with backoff):\n    " + "\n    ".join(bad[:10]))
    s.assert_running()
    print(f"outage {down_s} s: {n_during} frames read, RSS {rss[0]['VmRSS']} -> "
          f"{rss[-1]['VmRSS']} KiB (peak growth {growth} KiB), online {t_online:.1f} s after "
          f"the broker came back")
    fail_on(problems, "broker restart")


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
    svc.wait_for(lambda: any(is_problem_line(ln) for ln in log_lines(s)),
                 10, "a warning/error line about the unreachable broker", s.describe)
    b = mh.Broker(workdir, port=port)
    try:
        b.start()
        col = mh.Collector(b.port)
        try:
            wait_announced(col, s, ["ts"], timeout=RECONNECT_S)
        finally:
            col.close()
    finally:
        b.stop()
    s.assert_running()
