"""Fixtures of the deployment suite (tests/deploy): the compose file, the Dockerfile, the
healthcheck and the example detector, run against the real cuframes-service (built in build/, or
CUFRAMES_SERVICE_BIN), the real `cuframes` CLI (build/cli/cuframes, or CUFRAMES_CLI) and a
real mosquitto. The service helpers are the service suite's (tests/service/svc.py,
mqtt_helpers.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "service"))

import cuframes  # noqa: E402

import deploy_helpers as dh  # noqa: E402
from fixtures import runtime_dir, service, workdir  # noqa: E402,F401  (fixtures)
from mqtt_helpers import broker, collector  # noqa: E402,F401  (fixtures)
import svc  # noqa: E402


def pytest_report_header(config: pytest.Config) -> str:
    return (f"cuframes {cuframes.version_string()} from {os.path.dirname(cuframes.__file__)}; "
            f"service {svc.SERVICE_BIN}; cli {dh.CLI_BIN}; docker-compose {dh.COMPOSE}")


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
