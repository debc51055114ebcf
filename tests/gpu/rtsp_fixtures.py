"""What the tests of mini_rtsp.py share: the clips of tests/service/media.py, servers and
cuframes-service processes as fixtures (import them by name: `from rtsp_fixtures import clips,
rtsp, service`), whether this is a GPU machine, and the check of every picture a subscriber
reads. The importer puts tests/service and tests/gpu on sys.path first."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

import cuframes
import media
import mini_rtsp
import pattern
import svc

CLIPS = ["h264-1280x720", "hevc-2688x1520", "hevc10-1280x720"]
STRICT = cuframes.SubscriberMode.STRICT_ORDER
# The service publishes the frames of its 0.5 s probe in a burst: a ring larger than the burst
# that waits for its STRICT_ORDER subscriber (as tests/service/test_service_rtsp.py does).
VERIFIED = {"policy": "strict_wait", "slots": 8, "wait_timeout": "5s"}
EXPECT_GPU = os.environ.get("CUFRAMES_TEST_EXPECT_GPU") == "1"


# ---- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The clips of tests/service/media.py: from CUFRAMES_TEST_MEDIA_DIR (made with the ffmpeg
    CLI where it is missing and the CLI exists), else made in a temporary directory."""
    d = os.environ.get("CUFRAMES_TEST_MEDIA_DIR")
    out_dir = Path(d) if d else tmp_path_factory.mktemp("media")
    paths = {}
    for name in CLIPS:
        c = media.CLIPS[name]
        p = out_dir / c.filename
        if not p.exists():
            if shutil.which("ffmpeg") is None:
                pytest.fail(f"{p} is missing and there is no ffmpeg CLI to make it: make it "
                            f"with `python3 tests/service/media.py {out_dir}` and carry it")
            media.make(c, out_dir)
        paths[name] = p
    return paths


@pytest.fixture
def rtsp(clips: dict[str, Path]) -> Iterator[Callable[..., mini_rtsp.MiniRtspServer]]:
    """make(mounts={name: clip name}) -> a started MiniRtspServer; all stopped afterwards, with
    every connection closed."""
    servers: list[mini_rtsp.MiniRtspServer] = []

    def make(mounts: dict[str, str]) -> mini_rtsp.MiniRtspServer:
        s = mini_rtsp.MiniRtspServer({m: clips[c] for m, c in mounts.items()})
        servers.append(s)
        s.start()
        return s

    yield make
    for s in servers:
        s.stop()
        assert s.sessions() == 0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[..., svc.Service]]:
    """start(cameras, defaults=...) -> a cuframes-service on tmp_path/svc.yaml (host memory
    unless the defaults say otherwise); stopped after the test, an unexpected exit fails it."""
    started: list[svc.Service] = []
    run = str(tmp_path / "run")

    def start(cameras: dict[str, dict[str, Any]], **kw: Any) -> svc.Service:
        cfg = svc.write_config(tmp_path / "svc.yaml", cameras, run, **kw)
        s = svc.Service(cfg, run, tmp_path)
        started.append(s)
        return s

    if not os.access(svc.SERVICE_BIN, os.X_OK):
        pytest.fail(f"{svc.SERVICE_BIN} is missing: build it, or set CUFRAMES_SERVICE_BIN")
    yield start
    problems = [p for p in (s.cleanup() for s in started) if p]
    if problems:
        pytest.fail("\n".join(problems))


def gpu_here() -> bool:
    """A GPU machine: CUFRAMES_TEST_EXPECT_GPU=1 says so (tests/gpu/run.sh), else /dev/nvidia*."""
    return EXPECT_GPU or svc.gpu_present()


def host_decoder() -> str:
    """For a host ring: auto (software) without a GPU, software on a GPU machine (where auto
    would pick NVDEC, whose frames a host ring refuses: docs/configuration.md)."""
    return "software" if gpu_here() else "auto"


def check_run(read: Callable[[], tuple[np.ndarray, np.ndarray, tuple[int, int, Any, int]]],
              count: int,
              clip: media.Clip) -> list[int]:
    """count frames read with read() -> (y, uv, (width, height, format, seq)): geometry,
    format, every picture; the barcode advances by one, back to 0 after the file's last
    picture."""
    codes: list[int] = []
    want_fmt = (cuframes.PixelFormat.P010 if clip.bit_depth > 8 else cuframes.PixelFormat.NV12)
    for _ in range(count):
        y, uv, (w, h, fmt, seq) = read()
        assert (w, h, fmt) == (clip.width, clip.height, want_fmt), (w, h, fmt)
        n = pattern.read_barcode(y)
        assert n is not None, f"seq {seq}: no barcode"
        if codes:
            assert n == (codes[-1] + 1) % clip.frames, f"seq {seq}: index {n} after {codes[-1]}"
        problem = pattern.check_picture(y, uv, n, noisy=True)
        assert problem is None, f"seq {seq} (index {n}): {problem}"
        codes.append(n)
    return codes

