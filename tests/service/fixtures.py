"""Fixtures shared by the service suite (tests/service) and the deployment suite (tests/deploy),
imported by their conftests: a runtime directory (tests/common/runtime_dir_fixture.py, the CLI
suite's too) and a work directory per test, and the service process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))

from runtime_dir_fixture import runtime_dir  # noqa: E402,F401  (fixture, re-exported)
import svc  # noqa: E402


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def service(workdir: Path, runtime_dir: str) -> Iterator[Callable[..., svc.Service]]:
    """start(cameras, mqtt=None, *, args=(), rt=None, name="cuframes.yaml", **config) -> Service:
    writes workdir/<name> (svc.write_config's config, with an `mqtt:` section when mqtt is
    given) for runtime dir rt (default: runtime_dir), and starts the service on it. Every
    service is stopped after the test; one that exited by itself while the test did not expect
    it fails the test."""
    if not os.access(svc.SERVICE_BIN, os.X_OK):
        pytest.fail(f"{svc.SERVICE_BIN} is missing: build it (scripts/build.sh) first")
    started: list[svc.Service] = []

    def start(cameras: dict[str, dict[str, Any]], mqtt: Optional[dict[str, Any]] = None, *,
              args: tuple[str, ...] = (), rt: Optional[str] = None, name: str = "cuframes.yaml",
              **kw: Any) -> svc.Service:
        rt = rt or runtime_dir
        cfg = svc.write_config(workdir / name, cameras, rt, mqtt=mqtt, **kw)
        s = svc.Service(cfg, rt, workdir, args)
        started.append(s)
        return s

    yield start
    problems = [p for p in (s.cleanup() for s in started) if p]
    if problems:
        pytest.fail("\n".join(problems))
