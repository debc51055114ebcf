"""MQTT helpers of the service suite: a real mosquitto broker (anonymous, or with a password
file), a real MQTT client that records every message it sees, the broker's retained store, the
service's config with an `mqtt:` section, and Home Assistant's discovery rules as docs/mqtt.md
states them. Every wait has a deadline; nothing sleeps in place of synchronisation.

Standalone check of the broker and client helpers (no service needed):
    python3 tests/service/mqtt_helpers.py
"""

from __future__ import annotations

import json
import math
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import pytest

import jinja2
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

import svc

MOSQUITTO = os.environ.get("CUFRAMES_MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = os.environ.get("CUFRAMES_MOSQUITTO_PASSWD",
                                  shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd")
POLL_S = 0.02


# ---- the broker --------------------------------------------------------------------------

def mqtt_connack(port: int, username: Optional[str] = None, password: Optional[str] = None,
                 timeout: float = 2.0) -> int:
    """One MQTT 3.1.1 CONNECT on a plain socket: the CONNACK return code (0 accepted, 4 bad
    user name or password, 5 not authorised). Raises OSError when nothing listens or the
    broker closes the connection without answering."""
    def utf8(s: str) -> bytes:
        b = s.encode()
        return len(b).to_bytes(2, "big") + b
    flags = 0x02  # clean session
    payload = utf8(f"cuframes-test-probe-{uuid.uuid4().hex[:8]}")
    if username is not None:
        flags |= 0x80
        payload += utf8(username)
        if password is not None:
            flags |= 0x40
            payload += utf8(password)
    var = utf8("MQTT") + bytes([4, flags]) + (10).to_bytes(2, "big")
    body = var + payload
    assert len(body) < 128
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(bytes([0x10, len(body)]) + body)
        ack = b""
        while len(ack) < 4:
            chunk = s.recv(4 - len(ack))
            if not chunk:
                raise ConnectionResetError("the broker closed the connection before CONNACK")
            ack += chunk
        assert ack[0] == 0x20 and ack[1] == 2, f"not a CONNACK: {ack!r}"
        try:
            s.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        return ack[3]


class Broker:
    """A mosquitto process on 127.0.0.1:port with a generated config (persistence off, so a
    restart starts with an empty retained store). users: {name: password} makes it require
    them (password_file from mosquitto_passwd, allow_anonymous false)."""

    def __init__(self, workdir: Path, users: Optional[dict[str, str]] = None,
                 port: int = 0, tls: Optional[dict[str, Path]] = None) -> None:
        self.workdir = workdir
        self.users = dict(users or {})
        self.port = port or svc.free_port()
        # tls: {"cafile", "certfile", "keyfile"} adds a TLS listener on tls_port
        self.tls = tls
        self.tls_port = svc.free_port() if tls else 0
        self.proc: Optional[subprocess.Popen[bytes]] = None
        tag = f"mosquitto-{self.port}"
        self.conf_path = workdir / f"{tag}.conf"
        self.log_path = workdir / f"{tag}.log"
        self.passwd_path = workdir / f"{tag}.passwd"
        self.starts = 0

    @property
    def auth(self) -> tuple[Optional[str], Optional[str]]:
        """Credentials a test client uses (the first user), or (None, None)."""
        for u, p in self.users.items():
            return u, p
        return None, None

    def _write_config(self) -> None:
        lines = [f"listener {self.port} 127.0.0.1", "persistence false",
                 f"log_dest file {self.log_path}", "log_type all", "connection_messages true",
                 "log_timestamp true", "log_timestamp_format %H:%M:%S",
                 # Run as root, mosquitto would switch to user "mosquitto", which cannot read
                 # the test's private directory; as another user this line does nothing.
                 f"user {pwd.getpwuid(os.geteuid()).pw_name}"]
        if self.users:
            self.passwd_path.unlink(missing_ok=True)
            first = True
            for u, p in self.users.items():
                args = [MOSQUITTO_PASSWD, *(["-c"] if first else []), "-b", str(self.passwd_path),
                        u, p]
                r = subprocess.run(args, capture_output=True, text=True, timeout=20)
                assert r.returncode == 0, f"mosquitto_passwd failed: {r.stdout}{r.stderr}"
                first = False
            lines += ["allow_anonymous false", f"password_file {self.passwd_path}"]
        else:
            lines += ["allow_anonymous true"]
        if self.tls:
            lines += [f"listener {self.tls_port} 127.0.0.1",
                      *(f"{k} {v}" for k, v in self.tls.items())]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 15.0) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        assert os.access(MOSQUITTO, os.X_OK), (
            f"{MOSQUITTO} is missing: run scripts/install-deps.sh (apt package mosquitto)")
        self._write_config()
        out = open(self.workdir / f"mosquitto-{self.port}.out", "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_path)],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.close()
        self.starts += 1
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Connects in a loop until the broker answers a CONNECT (with the first user's
        credentials when it has users), or fails with its log."""
        deadline = time.monotonic() + timeout
        last: object = None
        user, pw = self.auth
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}\n"
                                     f"{self.log_tail()}")
            try:
                rc = mqtt_connack(self.port, user, pw)
                if rc == 0:
                    return
                last = f"CONNACK {rc}"
            except OSError as e:
                last = e
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"mosquitto on port {self.port} not ready within "
                                     f"{timeout} s (last: {last})\n{self.log_tail()}")
            time.sleep(POLL_S)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: every connection drops at once, the retained store is lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            svc.stop_process(self.proc)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 30) -> str:
        lines = self.log_text().splitlines()
        return "mosquitto log (last lines):\n  " + "\n  ".join(lines[-n:])

    def connects_of(self, client_id: str) -> list[str]:
        """Log lines of accepted CONNECTs from client_id ("New client connected from ... as
        ID (p2, c1, k30, u'user')")."""
        pat = re.compile(rf"New client connected from \S+ as {re.escape(client_id)} \(")
        return [ln for ln in self.log_text().splitlines() if pat.search(ln)]

    def refused_connects(self) -> list[str]:
        """Log lines of refused CONNECTs (mosquitto 2.0 names no client id for them: "Client
        <unknown> disconnected, not authorised.")."""
        return [ln for ln in self.log_text().splitlines() if "not authori" in ln]


# ---- the client --------------------------------------------------------------------------

@dataclass
class Msg:
    idx: int
    t: float  # time.monotonic() at arrival
    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.payload)

    def obj(self) -> Any:
        """The payload as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.payload)
        except ValueError:
            return None

    def __repr__(self) -> str:
        p = self.text if len(self.payload) < 300 else self.text[:300] + "..."
        return f"Msg(#{self.idx} {self.topic} retain={int(self.retain)} qos={self.qos} {p!r})"


class Collector:
    """A paho-mqtt 2.x MQTT 5 client subscribed to `#` with retain-as-published, so the
    retain flag it records is the one the publisher set (on a live message too). Records every
    message (topic, payload, retain, qos) under a lock; reconnects and resubscribes by itself
    after a broker restart. Waits take a predicate and a deadline."""

    def __init__(self, port: int, username: Optional[str] = None,
                 password: Optional[str] = None, topic: str = "#",
                 client_id: Optional[str] = None, timeout: float = 10.0) -> None:
        self.port = port
        self.topic = topic
        self.cond = threading.Condition()
        self.msgs: list[Msg] = []
        self.subscribed_gen = 0  # SUBACKs received (one per connection)
        self.connects = 0
        self.disconnects = 0
        self.last_connect_rc: Any = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"cuframes-test-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        self.wait_subscribed(1, timeout)

    # callbacks (paho's network thread)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        with self.cond:
            self.last_connect_rc = rc
            if not rc.is_failure:
                self.connects += 1
            self.cond.notify_all()
        if not rc.is_failure:
            client.subscribe([(self.topic, SubscribeOptions(qos=1, retainAsPublished=True))])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: Any,
                      props: Any = None) -> None:
        with self.cond:
            if all(not r.is_failure for r in rcs):
                self.subscribed_gen += 1
            self.cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.msgs.append(Msg(len(self.msgs), time.monotonic(), m.topic, bytes(m.payload),
                                 bool(m.retain), int(m.qos)))
            self.cond.notify_all()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                       props: Any = None) -> None:
        with self.cond:
            self.disconnects += 1
            self.cond.notify_all()

    # queries
    def mark(self) -> int:
        """The index the next message will get: `since=mark()` means "from now on"."""
        with self.cond:
            return len(self.msgs)

    def messages(self, topic: Optional[str] = None, since: int = 0,
                 pred: Callable[[Msg], bool] = lambda m: True) -> list[Msg]:
        with self.cond:
            ms = self.msgs[since:]
        return [m for m in ms if (topic is None or m.topic == topic) and pred(m)]

    def latest(self, topic: str, since: int = 0) -> Optional[Msg]:
        ms = self.messages(topic, since)
        return ms[-1] if ms else None

    def topics(self, since: int = 0, prefix: str = "") -> list[str]:
        seen: dict[str, None] = {}
        for m in self.messages(since=since):
            if m.topic.startswith(prefix):
                seen[m.topic] = None
        return list(seen)

    def describe(self, since: int = 0, n: int = 40) -> str:
        ms = self.messages(since=since)
        return (f"MQTT messages since #{since}: {len(ms)}; last {min(n, len(ms))}:\n  "
                + "\n  ".join(repr(m) for m in ms[-n:]))

    # waits
    def wait(self, pred: Callable[[], Any], timeout: float, what: str,
             detail: Callable[[], str] = lambda: "") -> Any:
        """Waits (on the message condition, woken by each message) until pred() is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with self.cond:  # woken by the next message (or 0.1 s: pred may look elsewhere)
                self.cond.wait(min(left, 0.1))
        extra = detail()
        raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}\n"
                             f"{self.describe()}" + (f"\n{extra}" if extra else ""))

    def try_wait(self, pred: Callable[[], Any], timeout: float) -> Any:
        """wait() that returns None at the deadline instead of failing (the caller then
        reports precisely what is missing)."""
        try:
            return self.wait(pred, timeout, "")
        except AssertionError:
            return None

    def wait_msg(self, topic: str, pred: Callable[[Msg], Any] = lambda m: True, since: int = 0,
                 timeout: float = 10.0, what: str = "",
                 detail: Callable[[], str] = lambda: "") -> Msg:
        """The first message on topic since `since` for which pred holds."""
        def check() -> Optional[Msg]:
            for m in self.messages(topic, since):
                if pred(m):
                    return m
            return None
        return self.wait(check, timeout, f"a message on {topic}" + (f": {what}" if what else ""),
                         detail)

    def wait_subscribed(self, gen: int, timeout: float) -> None:
        def ok() -> bool:
            with self.cond:
                return self.subscribed_gen >= gen
        deadline = time.monotonic() + timeout
        while not ok():
            if time.monotonic() > deadline:
                raise AssertionError(f"MQTT test client on port {self.port} not subscribed "
                                     f"within {timeout} s (connect rc {self.last_connect_rc}, "
                                     f"{self.connects} connects)")
            with self.cond:
                self.cond.wait(0.1)

    def publish(self, topic: str, payload: bytes | str, retain: bool = False, qos: int = 1,
                timeout: float = 5.0) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)
        assert info.is_published(), f"publish to {topic} not acknowledged within {timeout} s"

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            # loop_stop can win the race against the DISCONNECT: then paho leaves its socket
            # open, and the GC's ResourceWarning fails whichever test runs then (-W error).
            sock = self.client.socket()
            if sock is not None:
                sock.close()
            # loop_start's wake-up pair (a localhost TCP pair) is closed only by the client's
            # __del__: in a reference cycle the GC may finalize the sockets first, and their
            # ResourceWarning then fails the next test (seen in CI). Closed here, at once.
            for name in ("_sockpairR", "_sockpairW"):
                pair_end = getattr(self.client, name, None)
                if pair_end is not None:
                    pair_end.close()


def retained(port: int, username: Optional[str] = None, password: Optional[str] = None,
             prefix: str = "", timeout: float = 10.0) -> dict[str, bytes]:
    """The broker's retained store (topic -> payload, topics starting with prefix): a fresh
    client subscribes to `#`, then publishes a marker; the broker sends the retained messages
    of a new subscription before anything published after it, so the marker ends the set."""
    marker = f"cuframes-test/marker/{uuid.uuid4().hex}"
    c = Collector(port, username, password, timeout=timeout)
    try:
        c.publish(marker, b"end", qos=1)
        c.wait_msg(marker, timeout=timeout, what="the marker after the retained messages")
        out: dict[str, bytes] = {}
        for m in c.messages():
            if m.topic == marker:
                break
            if m.retain and m.topic.startswith(prefix):
                out[m.topic] = m.payload
        return out
    finally:
        c.close()


# ---- the service's config ----------------------------------------------------------------

def testsrc(w: int = 320, h: int = 240, fps: int = 30) -> dict[str, Any]:
    return {"url": f"testsrc://?width={w}&height={h}&fps={fps}"}


def vm_rss_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile, RssShmem of a process, in KiB."""
    out: dict[str, int] = {}
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = ln.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[k] = int(v.split()[0])
    return out

# Home Assistant's discovery rules and the state payloads' types, in modules of their own; `mh.*`
# names them as before.
from ha_discovery import *  # noqa: E402,F401,F403
from ha_discovery import render  # noqa: E402  (the self-test)
from mqtt_payloads import *  # noqa: E402,F401,F403

# ---- standalone self-test ----------------------------------------------------------------

def _selftest() -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        w = Path(td)
        b = Broker(w).start()
        c = Collector(b.port)
        c.publish("a/retained", b"r1", retain=True)
        c.publish("a/live", b"l1")
        c.wait_msg("a/retained", lambda m: m.retain and m.payload == b"r1")
        c.wait_msg("a/live", lambda m: not m.retain)
        assert retained(b.port) == {"a/retained": b"r1"}, retained(b.port)
        c.publish("a/retained", b"", retain=True)
        c.wait_msg("a/retained", lambda m: m.retain and m.payload == b"")
        assert retained(b.port) == {}
        # a restart: the collector comes back by itself; nothing retained survives
        c.publish("a/retained", b"r2", retain=True)
        b.kill()
        b.start()
        c.wait_subscribed(2, 15)
        assert retained(b.port) == {}
        mk = c.mark()
        c.publish("a/live", b"l2")
        c.wait_msg("a/live", lambda m: m.payload == b"l2", since=mk)
        c.close()
        b.stop()
        # a broker with a password
        a = Broker(w, users={"u1": "good pw"}).start()
        assert mqtt_connack(a.port, "u1", "good pw") == 0
        assert mqtt_connack(a.port, "u1", "bad") in (4, 5)
        assert mqtt_connack(a.port) in (4, 5)
        c = Collector(a.port, "u1", "good pw")
        c.publish("x", b"1", retain=True)
        assert retained(a.port, "u1", "good pw") == {"x": b"1"}
        c.close()
        print(a.refused_connects())
        a.stop()
        # the renderer
        assert render("{{ value_json.fps }}", b'{"fps": 29.97}') == "29.97"
        assert render("{{ 'ON' if value_json.state == 'streaming' else 'OFF' }}",
                      b'{"state": "streaming"}') == "ON"
        try:
            render("{{ value_json.nope }}", b'{"fps": 1}')
            raise AssertionError("a missing field rendered")
        except jinja2.UndefinedError:
            pass
        print("mqtt_helpers self-test OK")


if __name__ == "__main__":
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    _selftest()


def make_tls_files(d: Path, name: str) -> dict[str, Path]:
    """A CA of its own and a server certificate it signed for 127.0.0.1 (CN and IP SAN), made
    with the openssl CLI: {"cafile", "certfile", "keyfile"} for a Broker's TLS listener."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = (d / f"{name}-ca.key", d / f"{name}-ca.pem", d / f"{name}.key",
                                 d / f"{name}.csr", d / f"{name}.pem")
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1\n")

    def ossl(*args: str) -> None:
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         f"/CN={name} test CA", "-keyout", str(ca_key), "-out", str(ca))
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
         "-out", str(csr))
    ossl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return {"cafile": ca, "certfile": crt, "keyfile": key}


# ---- fixtures (imported by the conftest or test module that uses them) ----------------------

@pytest.fixture
def broker(workdir: Path) -> Iterator[Callable[..., "Broker"]]:
    """make(users=None) -> a started mosquitto; all are stopped after the test."""
    made: list[Broker] = []

    def make(users: Optional[dict[str, str]] = None) -> Broker:
        b = Broker(workdir, users)
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def collector() -> Iterator[Callable[..., "Collector"]]:
    """make(broker) -> an MQTT client subscribed to `#` on it (with its first user, unless
    username/password are given); all are closed after the test."""
    made: list[Collector] = []

    def make(b: Broker, username: Optional[str] = None,
             password: Optional[str] = None) -> Collector:
        if username is None:
            username, password = b.auth
        c = Collector(b.port, username, password)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
