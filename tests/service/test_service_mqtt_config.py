"""The `mqtt:` section of cuframes-service's config (docs/mqtt.md): bad values refused with the
file, line and key named (exit 2, nothing started), and docs/mqtt.md's example and the smallest
sections accepted by --check-config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cuframes

import mqtt_helpers as mh
import svc


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
