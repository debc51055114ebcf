"""Fixtures of the CLI suite: a runtime directory per test, publishers (in this process, host
memory) and CLI processes, all closed after the test."""

from __future__ import annotations

import itertools
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))

import cuframes  # noqa: E402

import clitest  # noqa: E402
from runtime_dir_fixture import runtime_dir  # noqa: E402,F401  (fixture)

_counter = itertools.count()


def pytest_report_header(config: pytest.Config) -> str:
    return f"cuframes {cuframes.version_string()}; cli {clitest.CLI}"


@pytest.fixture(scope="session", autouse=True)
def cli_binary() -> Path:
    if not os.access(clitest.CLI, os.X_OK):
        pytest.fail(f"{clitest.CLI} is missing: build it (scripts/build.sh) first")
    return clitest.CLI


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"t{next(_counter)}-{name}".strip("-")


class Feeder:
    """Publishes a frame over and over on a thread of its own, at about fps."""

    def __init__(self, pub: Any, frame: np.ndarray, fps: float) -> None:
        self._pub, self._frame, self._period = pub, frame, 1.0 / fps
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):  # the pace of a camera, not a synchronisation
            self._pub.publish(self._frame)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the feeder thread did not stop"


@pytest.fixture
def publish(runtime_dir: str) -> Iterator[Callable[..., Any]]:
    """publish(key, width, height, fmt=NV12, **kw) -> an open host-memory publisher in
    runtime_dir; closed after the test."""
    pubs: list[Any] = []

    def make(key: str, width: int, height: int, fmt: int = cuframes.PixelFormat.NV12,
             **kw: Any) -> Any:
        p = cuframes.publish(key, width, height, fmt, memory="host", runtime_dir=runtime_dir,
                             **kw)
        pubs.append(p)
        return p

    yield make
    for p in pubs:
        p.close()


@pytest.fixture
def feed(publish: Callable[..., Any]) -> Iterator[Callable[..., Feeder]]:
    """feed(pub, frame, fps=30) -> a Feeder publishing until the test ends (or .stop()); stopped
    before the publishers close."""
    feeders: list[Feeder] = []

    def make(pub: Any, frame: np.ndarray, fps: float = 30.0) -> Feeder:
        f = Feeder(pub, frame, fps)
        feeders.append(f)
        return f

    yield make
    for f in feeders:
        f.stop()


@pytest.fixture
def cli_proc() -> Iterator[Callable[..., clitest.LineProc]]:
    """cli_proc(*args, pty=False) -> a running `cuframes ARGS`; killed after the test."""
    procs: list[clitest.LineProc] = []

    def start(*args: str, pty: bool = False) -> clitest.LineProc:
        p = clitest.LineProc([str(clitest.CLI), *args], pty=pty)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.close()
