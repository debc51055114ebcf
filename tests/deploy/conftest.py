"""Fixtures of the deployment suite (tests/deploy): the compose file, the Dockerfile, the
healthcheck and the example detector, run against the real cuframes-service (built in build/, or
CUFRAMES_SERVICE_BIN), the real `cuframes` CLI (build/cli/cuframes, or CUFRAMES_CLI) and a
real mosquitto. The service helpers are the service suite's (tests/service/svc.py,
mqtt_helpers.py)."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "service"))

import cuframes  # noqa: E402

import deploy_helpers as dh  # noqa: E402
import mqtt_helpers as mh  # noqa: E402
from mqtt_helpers import broker, collector  # noqa: E402,F401  (fixtures)
import svc  # noqa: E402


def pytest_report_header(config: pytest.Config) -> str:
    return (f"cuframes {cuframes.version_string()} from {os.path.dirname(cuframes.__file__)}; "
            f"service {svc.SERVICE_BIN}; cli {dh.CLI_BIN}; docker-compose {dh.COMPOSE}")


@pytest.fixture
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh rendezvous directory. No ring may outlive the test."""
    d = str(tmp_path_factory.mktemp("rt"))
    yield d
    gc.collect()
    assert cuframes.list_publishers(d) == [], "rings left behind in the runtime dir"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def service(workdir: Path, runtime_dir: str) -> Iterator[Callable[..., svc.Service]]:
    """start(cameras, **config) -> Service on workdir/cuframes.yaml (host memory by default);
    every service is stopped after the test, and one that exited unexpectedly fails it."""
    if not os.access(svc.SERVICE_BIN, os.X_OK):
        pytest.fail(f"{svc.SERVICE_BIN} is missing: build it (scripts/build.sh) first")
    started: list[svc.Service] = []

    def start(cameras: dict[str, dict[str, Any]], mqtt: Optional[dict[str, Any]] = None,
              **kw: Any) -> svc.Service:
        path = workdir / "cuframes.yaml"
        if mqtt is None:
            svc.write_config(path, cameras, runtime_dir, **kw)
        else:
            mh.write_mqtt_config(path, cameras, runtime_dir, mqtt, **kw)
        s = svc.Service(path, runtime_dir, workdir)
        started.append(s)
        return s

    yield start
    problems = [p for p in (s.cleanup() for s in started) if p]
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def detector(workdir: Path) -> Iterator[Callable[..., dh.Detector]]:
    """start(*args, env=None) -> a running examples/detector.py; all are killed after the test
    (a test that wants the summary stops or waits for it itself)."""
    started: list[dh.Detector] = []

    def start(*args: str, env: Optional[dict[str, str]] = None) -> dh.Detector:
        d = dh.Detector(workdir, list(args), env)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()
