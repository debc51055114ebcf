"""The `cuframes` command-line tool on a ring of cuframes-service (testsrc, host memory, no GPU):
list, snapshot and stat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

import cuframes

import clitest
from clitest import run_cli


def test_service_ring(runtime_dir: str, tmp_path: Path) -> None:
    """list, stat and snapshot on a ring of cuframes-service (testsrc, host memory)."""
    if not os.access(clitest.SERVICE_BIN, os.X_OK):
        pytest.fail(f"{clitest.SERVICE_BIN} is missing: build it (scripts/build.sh) first")
    config = tmp_path / "cuframes.yaml"
    config.write_text(f'runtime_dir: "{runtime_dir}"\n'
                      "cameras:\n"
                      '  demo: {url: "testsrc://?width=640&height=480&fps=30", memory: host}\n')
    with open(tmp_path / "service.log", "wb") as log:
        service = subprocess.Popen([str(clitest.SERVICE_BIN), "--config", str(config)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        clitest.wait_for(lambda: "cam-demo" in cuframes.list_publishers(runtime_dir), 30,
                         "the service's ring")
        r = run_cli("list", "--runtime-dir", runtime_dir)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[1].split()[:5] == ["cam-demo", "NV12", "640x480", "host",
                                                        "memfd"]
        out = tmp_path / "demo.jpg"
        r = run_cli("snapshot", "cam-demo", str(out), "--runtime-dir", runtime_dir)
        assert r.returncode == 0, r.stderr
        assert clitest.probe(out) == {"codec_name": "mjpeg", "width": 640, "height": 480}
        r = run_cli("stat", "cam-demo", "--runtime-dir", runtime_dir, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["ring"]["published"] > 0
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(30) == 0, (tmp_path / "service.log").read_text(errors="replace")
