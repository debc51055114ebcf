"""Fixtures of the cuframes-service integration suite: a runtime directory per test, the service
process (stopped after the test; an unexpected exit fails it), the RTSP server, the test clips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cuframes  # noqa: E402

import media  # noqa: E402
import svc  # noqa: E402
from fixtures import runtime_dir, service, workdir  # noqa: E402,F401  (fixtures)


def pytest_report_header(config: pytest.Config) -> str:
    return (f"cuframes {cuframes.version_string()} from {os.path.dirname(cuframes.__file__)}; "
            f"service {svc.SERVICE_BIN}; gpu: {svc.gpu_present()}")


@pytest.fixture(scope="session", autouse=True)
def service_binary() -> Path:
    if not os.access(svc.SERVICE_BIN, os.X_OK):
        pytest.fail(f"{svc.SERVICE_BIN} is missing: build it (scripts/build.sh) first")
    return svc.SERVICE_BIN


@pytest.fixture
def rtsp_server(workdir: Path) -> Iterator[Callable[..., svc.RtspServer]]:
    """make(mounts) -> a started RtspServer; all are stopped after the test."""
    if not os.access(svc.GI_PYTHON, os.X_OK) or subprocess.run(
            [svc.GI_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer"], capture_output=True).returncode != 0:
        pytest.fail(f"{svc.GI_PYTHON} cannot import GstRtspServer: run scripts/install-deps.sh")
    servers: list[svc.RtspServer] = []

    def make(mounts: list[str], **kw: Any) -> svc.RtspServer:
        s = svc.RtspServer(workdir, mounts, **kw)
        servers.append(s)
        s.start()
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the clips are made: once per session, or kept in CUFRAMES_TEST_MEDIA_DIR."""
    d = os.environ.get("CUFRAMES_TEST_MEDIA_DIR")
    return Path(d) if d else tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip(media_dir: Path) -> Callable[[str], tuple[media.Clip, Path]]:
    def get(name: str) -> tuple[media.Clip, Path]:
        c = media.CLIPS[name]
        return c, media.make(c, media_dir)
    return get
