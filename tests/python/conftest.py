"""Shared fixtures: a private runtime directory per test, unique keys, peer processes."""

from __future__ import annotations

import gc
import itertools
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cuframes  # noqa: E402

from helpers import Peer  # noqa: E402

_counter = itertools.count()


@pytest.fixture
def runtime_dir(tmp_path_factory: pytest.TempPathFactory,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh rendezvous directory, also exported as CUFRAMES_RUNTIME_DIR so that calls without
    runtime_dir= (and peer processes) use it. No publisher may be left running in it."""
    d = str(tmp_path_factory.mktemp("rt"))
    monkeypatch.setenv("CUFRAMES_RUNTIME_DIR", d)
    yield d
    gc.collect()
    assert cuframes.list_publishers(d) == [], "a test left publishers running"


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"t{next(_counter)}-{name}".rstrip("-")


@pytest.fixture
def peers(runtime_dir: str) -> Iterator[list[Peer]]:
    """Peer processes started by a test; all of them are stopped (killed if need be) after it."""
    started: list[Peer] = []
    yield started
    for p in started:
        p.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return (f"cuframes {cuframes.version_string()} from {os.path.dirname(cuframes.__file__)}")
