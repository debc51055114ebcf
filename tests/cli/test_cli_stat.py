"""`cuframes stat` against real publishers (host memory, no GPU): once (text and --json) with two
subscribers, without subscribers, --watch on a pipe, on a terminal and as JSON lines, and a
publisher that goes away while watched."""

from __future__ import annotations

import json
import os
import re
import signal
from typing import Any, Callable

import pytest

import cuframes

import clitest
from clitest import NV12, P010, run_cli


def test_stat_once(runtime_dir: str, key: str, publish: Callable[..., Any],
                   cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 1366, 768, NV12, slots=6)
    frame = clitest.make_frame(NV12, 1366, 768)
    for _ in range(3):
        pub.publish(frame)
    # Two subscribers: one here (strict, holding a frame), one the CLI's own `sub`.
    cli_sub = cli_proc("sub", key, "--runtime-dir", runtime_dir, "--name", "det-cli")
    cli_sub.expect(r"^subscribed to ")
    with cuframes.subscribe(key, consumer_name="det-py", mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=5000, runtime_dir=runtime_dir) as sub:
        held = sub.next_frame(timeout_ms=5000)
        assert held.seq == 3
        clitest.wait_for(lambda: (clitest.subscriber_entry(key, runtime_dir, "det-cli")
                                  or {}).get("last_seq") == 3, 10, "the CLI subscriber's frame")

        r = run_cli("stat", key, "--runtime-dir", runtime_dir)
        assert r.returncode == 0, r.stderr
        text = r.stdout
        assert text.startswith(f"{key}: publisher pid {os.getpid()}, up ")
        for pattern in [r"\n  geometry +NV12 1366x768, 1 byte/sample, pitch Y 1408 UV 1408, "
                        rf"{1408 * 768 * 3 // 2} bytes/frame\n",
                        r"\n  memory +host, transport memfd\n",
                        r"\n  policy +drop\n",
                        r"\n  slots +6, 1 held \(occupancy 16%\)\n",
                        r"\n  published +3, last seq 3, \S+ \S+ ago\n",
                        r"\n  dropped +0\n",
                        r"\n  fps +average (\d+\.\d|-) since start\n",
                        r"\n  waiting +no\n",
                        r"\n  subscribers +2 of 64\n"]:
            assert re.search(pattern, text), (pattern, text)
        table = text.split("\n\n", 1)[1].splitlines()
        assert table[0].split() == ["NAME", "PID", "MODE", "FRAMES", "GAPS", "TIMEOUTS",
                                    "ERRORS", "OVERRUNS", "LAG", "LATENCY", "HELD", "HEARTBEAT"]
        rows = {ln.split()[0]: ln.split() for ln in table[1:]}
        assert set(rows) == {"det-py", "det-cli"}
        assert rows["det-py"][1:9] == [str(os.getpid()), "strict_order", "1", "0", "0", "0", "0", "0"]
        assert rows["det-py"][11] == "1"  # held
        assert rows["det-cli"][1:9] == [str(cli_sub.proc.pid), "newest_only", "1", "0", "0", "0", "0",
                                        "0"]
        assert rows["det-cli"][11] == "0"

        r = run_cli("stat", key, "--runtime-dir", runtime_dir, "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        held.release()
    ring = doc["ring"]
    assert ring["key"] == key and ring["publisher_pid"] == os.getpid()
    assert (ring["format"], ring["width"], ring["height"]) == ("NV12", 1366, 768)
    assert (ring["pitch_y"], ring["pitch_uv"], ring["bytes_per_sample"]) == (1408, 1408, 1)
    assert (ring["memory"], ring["transport"], ring["policy"]) == ("host", "memfd", "drop")
    assert (ring["slots"], ring["held_slots"], ring["max_subscribers"]) == (6, 1, 64)
    assert (ring["published"], ring["dropped"], ring["last_seq"]) == (3, 0, 3)
    assert ring["waiting"] is False and ring["packet_ring"] is False
    assert ring["fps"] is None and ring["fps_window_s"] is None
    assert ring["age_s"] > 0
    assert ring["last_publish_age_ms"] >= 0
    subs = {s["name"]: s for s in doc["subscribers"]}
    py = subs["det-py"]
    assert (py["pid"], py["mode"], py["frames"], py["held"], py["last_seq"]) == (
        os.getpid(), "strict_order", 1, 1, 3)
    assert (py["gaps"], py["timeouts"], py["errors"], py["overruns"], py["lag"]) == (0, 0, 0, 0, 0)
    assert py["last_latency_ns"] > 0 and py["heartbeat_age_ms"] >= 0 and py["fps"] is None
    assert (subs["det-cli"]["pid"], subs["det-cli"]["mode"], subs["det-cli"]["held"]) == (
        cli_sub.proc.pid, "newest_only", 0)
    rc, _ = clitest.stop(cli_sub)
    assert rc == 0


def test_stat_no_subscribers(runtime_dir: str, key: str, publish: Callable[..., Any]) -> None:
    publish(key, 320, 240, P010)
    r = run_cli("stat", key, "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    assert "2 bytes/sample" in r.stdout and "published    0\n" in r.stdout
    assert r.stdout.endswith("\n\n  (no subscribers)\n")
    doc = json.loads(run_cli("stat", key, "--runtime-dir", runtime_dir, "--json").stdout)
    assert doc["subscribers"] == [] and doc["ring"]["last_publish_age_ms"] is None


def test_stat_watch_pipe(runtime_dir: str, key: str, publish: Callable[..., Any],
                         feed: Callable[..., Any],
                         cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 640, 480)
    feed(pub, clitest.make_frame(NV12, 640, 480))
    watch = cli_proc("stat", key, "--runtime-dir", runtime_dir, "--watch", "0.2")
    header = rf"^cuframes stat {re.escape(key)}, every 0.2 s, \d\d:\d\d:\d\d \(Ctrl-C to quit\)$"
    watch.expect(header)
    watch.expect(r"^  fps +average ")  # the first refresh has no window yet
    watch.expect(header)
    watch.expect(r"^  fps +\d+\.\d over 0\.\d\d s \(average \d+\.\d since start\)$")
    rc, _ = clitest.stop(watch)
    assert rc == 0, watch.stderr_text()
    assert not any("\x1b" in line for line in watch.seen)  # no terminal codes on a pipe


def test_stat_watch_terminal(runtime_dir: str, key: str, publish: Callable[..., Any],
                             cli_proc: Callable[..., clitest.LineProc]) -> None:
    publish(key, 640, 480)
    watch = cli_proc("stat", key, "--runtime-dir", runtime_dir, "--watch", "0.1", pty=True)
    clear = "\x1b[H\x1b[2J"
    watch.read_text(clear)
    refresh = watch.read_text(clear)  # a whole refresh, up to the next screen clear
    assert f"cuframes stat {key}, every 0.1 s" in refresh
    assert "(no subscribers)" in refresh
    watch.signal(signal.SIGINT)
    assert watch.wait() == 0


def test_stat_watch_json(runtime_dir: str, key: str, publish: Callable[..., Any],
                         feed: Callable[..., Any],
                         cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 640, 480)
    feed(pub, clitest.make_frame(NV12, 640, 480))
    with cuframes.subscribe(key, consumer_name="det", connect_timeout_ms=5000,
                            runtime_dir=runtime_dir):
        watch = cli_proc("stat", key, "--runtime-dir", runtime_dir, "--watch", "0.25", "--json")
        first = json.loads(watch.readline() or "")
        second = json.loads(watch.readline() or "")
        rc, rest = clitest.stop(watch)
    assert rc == 0, watch.stderr_text()
    for line in rest:
        json.loads(line)
    assert first["ring"]["fps"] is None
    assert second["time_ns"] > first["time_ns"]
    ring = second["ring"]
    assert ring["fps"] is not None and ring["fps"] > 0
    assert ring["fps_window_s"] == pytest.approx((second["time_ns"] - first["time_ns"]) / 1e9,
                                                 rel=1e-3)
    assert [s["name"] for s in second["subscribers"]] == ["det"]
    assert second["subscribers"][0]["fps"] == 0  # attached, but reads nothing


def test_stat_watch_publisher_gone(runtime_dir: str, key: str, publish: Callable[..., Any],
                                   cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 64, 48)
    watch = cli_proc("stat", key, "--runtime-dir", runtime_dir, "--watch", "0.1")
    watch.expect(r"^cuframes stat ")
    pub.close()
    watch.rest()
    assert watch.wait() == 1
    assert f"cuframes stat: the publisher of '{key}' is gone" in watch.stderr_text()
