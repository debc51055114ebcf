"""A broker that checks who connects (docs/mqtt.md), with a real mosquitto started by the tests
and a real MQTT client: a broker with a password (the right one, a wrong one fixed by SIGHUP,
the password never in the log), a TLS broker (and one whose certificate the CA does not vouch
for)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Callable

import cuframes

import mqtt_helpers as mh
from mqtt_helpers import broker, collector  # noqa: F401  (fixtures)
from mqtt_service import BASE, NODE, is_problem_line, log_lines, mq, wait_announced
import svc


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
        wait_announced(col, s, ["cam"])
        assert any(f"MQTT: connected to ssl://127.0.0.1:{b.tls_port}" in ln
                   for ln in log_lines(s)), s.log_tail()

        bad = service({"cam2": mh.testsrc()},
                      mq(b, "wrong_ca", port=b.tls_port,
                         tls={"ca_file": str(other["cafile"])}),
                      rt=runtime_dir + "-2", name="bad.yaml")
        pat = f"error MQTT: cannot connect to ssl://127.0.0.1:{b.tls_port}: "
        col.wait(lambda: [ln for ln in log_lines(bad) if pat in ln], 20,
                 "an error line for the refused certificate", bad.log_tail)
        line = next(ln for ln in log_lines(bad) if pat in ln)
        assert "TLS" in line or "SSL" in line or "certificate" in line, line
        print(f"refused: {line}")
        assert not col.messages("cuframes/wrong_ca/status"), "connected despite the wrong CA"
        bad.assert_running()
        s.assert_running()
    finally:
        b.stop()


# ---- a broker with a password ------------------------------------------------------------

USERS = {"cuframes": "s3cret-Pa55", "ha": "ha-pass"}


def test_auth_ok(broker: Callable[..., mh.Broker], collector: Callable[..., mh.Collector],
                 service: Callable[..., svc.Service]) -> None:
    b = broker(USERS)
    col = collector(b, "ha", USERS["ha"])
    s = service({"cam": mh.testsrc()},
                mq(b, username="cuframes", password=USERS["cuframes"]))
    configs = wait_announced(col, s, ["cam"])
    assert len(configs) == mh.CAMERA_ENTITIES + 3, sorted(configs)  # the camera's and the service's
    assert b.connects_of(f"cuframes-{NODE}"), b.log_tail()
    assert not b.refused_connects(), b.refused_connects()
    leaked = [ln for ln in log_lines(s) if USERS["cuframes"] in ln]
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
        lambda: [ln for ln in log_lines(s)
                 if re.search(r"not authori[sz]ed|bad user ?name or password", ln, re.I)],
        10, 'a log line with the broker\'s answer ("not authorized")', s.describe)
    assert is_problem_line(said[0]), f"not a warning/error line: {said[0]}"
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
    leaked = [ln for ln in log_lines(s) if "wrong-password" in ln]
    assert not leaked, f"the password is in the service's log: {leaked}"
    print(f"refused attempts: {n} (3rd after {took:.1f} s); log: {said[0]}")

    # the right password, by SIGHUP: connects; the camera's ring goes on without a gap
    epoch = cuframes.observe("cam-cam", runtime_dir=runtime_dir)["epoch"]
    mark = col.mark()
    svc.write_config(s.config, {"cam": mh.testsrc(320, 240, 30)}, runtime_dir,
                     mqtt=mq(b, username="cuframes", password=USERS["cuframes"]))
    s.send(signal.SIGHUP)
    wait_announced(col, s, ["cam"], since=mark, timeout=10)
    reader.wait_frames(reader.count() + 30, 10, s.describe)
    reader.finish()
    seqs = reader.seqs
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap across the reload"
    assert cuframes.observe("cam-cam", runtime_dir=runtime_dir)["epoch"] == epoch, (
        "the camera restarted for an mqtt change")
