"""cuframes-service on mini_rtsp.py with NVDEC, on a GPU machine: decoder auto with memory cuda
picks nvcuvid for an RTSP camera (decoder: nvdec and nvcuvid asked for too), and a torch
subscriber on CUDA checks every picture (tests/service/pattern.py) right through two loops of
the file. The same without a GPU (host memory, software decode): test_mini_rtsp_service.py.

GPU machine (tests/gpu/run.sh, stage rtsp; no ffmpeg CLI: the clips come made, in
CUFRAMES_TEST_MEDIA_DIR):
     CUFRAMES_TEST_EXPECT_GPU=1 CUFRAMES_SERVICE_BIN=... CUFRAMES_TEST_MEDIA_DIR=.gpu-media \
         python3 -m pytest -v tests/gpu/test_mini_rtsp_gpu.py

The tests run where there is a GPU (/dev/nvidia*) and torch with CUDA, and are skipped
elsewhere; with CUFRAMES_TEST_EXPECT_GPU=1 a missing GPU or torch fails them instead.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "service"))
sys.path.insert(0, str(HERE))

import cuframes  # noqa: E402
import media  # noqa: E402
import mini_rtsp  # noqa: E402
import svc  # noqa: E402
from rtsp_fixtures import (CLIPS, EXPECT_GPU, STRICT, VERIFIED, check_run,  # noqa: E402,F401
                           clips, gpu_here, rtsp, service)


def _torch_cuda() -> Any:
    """torch, when this machine has a GPU for it; skips elsewhere, fails where
    CUFRAMES_TEST_EXPECT_GPU=1 says there must be one."""
    def missing(why: str) -> None:
        if EXPECT_GPU:
            pytest.fail(f"CUFRAMES_TEST_EXPECT_GPU=1 but {why}")
        pytest.skip(why)

    if not gpu_here():
        missing("no GPU here (/dev/nvidia*)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch
    except ImportError:
        missing("torch is not installed")
    if not torch.cuda.is_available():
        missing("torch.cuda.is_available() is False")
    return torch


@pytest.mark.parametrize("decoder,expected",
                         [("auto", "nvcuvid"), ("nvdec", "nvdec"), ("nvcuvid", "nvcuvid")])
@pytest.mark.parametrize("name", CLIPS)
def test_service_nvdec_cuda(rtsp: Callable[..., mini_rtsp.MiniRtspServer],
                            service: Callable[..., svc.Service], name: str, decoder: str,
                            expected: str) -> None:
    """On a GPU machine: decoder auto with memory cuda picks nvcuvid (NVIDIA's parser and
    decoder called directly, taking the stream's Annex B as it comes) for the RTSP camera, as
    nvcuvid asked for does; nvdec is FFmpeg's hwaccel; and a torch subscriber on CUDA reads
    every picture right through two loops of the file (as tests/gpu/test_service_nvdec.py does
    for file cameras)."""
    torch = _torch_cuda()
    clip = media.CLIPS[name]
    srv = rtsp({"cam": name})
    s = service({"cam": {**VERIFIED, "url": srv.url("cam"), "decoder": decoder,
                         "memory": "cuda"}}, defaults={"memory": "cuda"})
    cam = s.wait_state("cam", "streaming", 30)
    assert (cam["decoder"], cam["memory"], cam["codec"]) == (expected, "cuda", clip.codec), cam
    stream = torch.cuda.Stream()
    with cuframes.subscribe("cam-cam", runtime_dir=s.runtime_dir, mode=STRICT,
                            connect_timeout_ms=10000, consumer_stream=stream) as sub:
        def read() -> tuple[np.ndarray, np.ndarray, tuple[int, int, Any, int]]:
            with sub.next_frame(timeout_ms=5000) as f:
                assert f.memory == "cuda" and f.device == 0
                with torch.cuda.stream(stream):
                    y = torch.from_dlpack(f.y).cpu().numpy()
                    uv = torch.from_dlpack(f.uv).cpu().numpy()
                return y, uv, (f.width, f.height, f.format, f.seq)
        codes = check_run(read, 2 * clip.frames, clip)
        assert sub.gap_count == 0
    now = s.camera("cam")
    assert now is not None
    cam = now
    assert cam["decoder"] == expected and cam["decode_errors"] == 0, cam
    assert (cam["width"], cam["height"], cam["format"]) == (clip.width, clip.height,
                                                            clip.format), cam
    print(f"{name}: {len(codes)} {expected} frames over RTSP checked, {cam['fps']:.1f} fps")

