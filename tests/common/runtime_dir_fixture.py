"""The `runtime_dir` fixture of the service, deployment and CLI suites (imported by their
conftests; the Python package's suite has its own, which also exports CUFRAMES_RUNTIME_DIR): a
fresh rendezvous directory per test, in which no publisher may outlive the test."""

from __future__ import annotations

import gc
from typing import Iterator

import pytest

import cuframes


@pytest.fixture
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = str(tmp_path_factory.mktemp("rt"))
    yield d
    gc.collect()
    assert cuframes.list_publishers(d) == [], "a test left publishers (rings) in the runtime dir"
