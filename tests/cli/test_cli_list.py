"""`cuframes list` against real publishers (host memory, no GPU): no publishers, a runtime
directory that is not there (named, not created), and two rings as a table and as JSON."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Callable

import cuframes

import clitest
from clitest import CLI, GRAY8, NV12, run_cli


def test_list_empty(runtime_dir: str) -> None:
    r = run_cli("list", "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"no live publishers in {runtime_dir}\n"
    r = run_cli("list", "--runtime-dir", runtime_dir, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_list_looks_without_creating(tmp_path: Path) -> None:
    """A directory that is not there: named (the default one too), and not created (issue 20)."""
    missing = tmp_path / "rt2"
    r = run_cli("list", "--runtime-dir", str(missing))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"no live publishers in {missing} (no such directory: no publisher has made it yet)\n"
    assert not missing.exists()
    r = subprocess.run([str(CLI), "list"], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if k != "CUFRAMES_RUNTIME_DIR"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("no live publishers in /") or "KEY" in r.stdout, r.stdout


def test_list(runtime_dir: str, key: str, publish: Callable[..., Any]) -> None:
    a = publish(key + "-a", 640, 480, NV12, slots=4)
    b = publish(key + "-b", 1365, 767, GRAY8, policy=cuframes.PublisherPolicy.STRICT_WAIT)
    for _ in range(3):
        a.publish(clitest.make_frame(NV12, 640, 480))
    b.publish(clitest.make_frame(GRAY8, 1365, 767))
    with cuframes.subscribe(key + "-a", consumer_name="det", connect_timeout_ms=5000,
                            runtime_dir=runtime_dir):
        r = run_cli("list", "--runtime-dir", runtime_dir)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].split() == ["KEY", "FORMAT", "SIZE", "MEMORY", "TRANSPORT", "SLOTS",
                                    "SUBSCRIBERS", "PUBLISHED", "DROPPED"]
        assert [ln.split() for ln in lines[1:]] == [
            [key + "-a", "NV12", "640x480", "host", "memfd", "4", "1", "3", "0"],
            [key + "-b", "GRAY8", "1365x767", "host", "memfd", "8", "0", "1", "0"],
        ]

        r = run_cli("list", "--runtime-dir", runtime_dir, "--json")
        assert r.returncode == 0, r.stderr
        rings = json.loads(r.stdout)
    assert [x["key"] for x in rings] == [key + "-a", key + "-b"]
    ra, rb = rings
    assert ra["format"] == "NV12" and (ra["width"], ra["height"]) == (640, 480)
    assert (ra["memory"], ra["device"], ra["transport"]) == ("host", -1, "memfd")
    assert (ra["slots"], ra["subscribers"], ra["published"], ra["dropped"]) == (4, 1, 3, 0)
    assert ra["pitch_y"] == a.pitch_y and ra["publisher_pid"] == os.getpid()
    assert rb["format"] == "GRAY8" and (rb["width"], rb["height"]) == (1365, 767)
    assert rb["policy"] == "strict_wait" and rb["pitch_uv"] == 0
