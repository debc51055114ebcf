"""cuframes-service on mini_rtsp.py (no GPU needed): an RTSP camera on it streams into a host
ring, and a subscriber checks every picture (tests/service/pattern.py) right through a loop of
the file; the server killed and started again, the camera streams again by itself. Software
decode (decoder auto without a GPU; software on a GPU machine, where auto would pick NVDEC).
The server by itself: test_mini_rtsp_server.py; NVDEC into CUDA memory: test_mini_rtsp_gpu.py.

CI (scripts/test.sh), with test_mini_rtsp_server.py:
     PYTHONPATH=build/python python3 -m pytest -v tests/gpu/test_mini_rtsp_service.py
GPU machine (tests/gpu/run.sh, stage rtsp; the clips come made, in CUFRAMES_TEST_MEDIA_DIR):
     CUFRAMES_TEST_EXPECT_GPU=1 CUFRAMES_SERVICE_BIN=... CUFRAMES_TEST_MEDIA_DIR=.gpu-media \
         python3 -m pytest -v tests/gpu/test_mini_rtsp_service.py
"""

from __future__ import annotations

import sys
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
from rtsp_fixtures import (CLIPS, STRICT, VERIFIED, check_run, clips,  # noqa: E402,F401
                           host_decoder, rtsp, service)


@pytest.mark.parametrize("name", CLIPS)
def test_service_host(rtsp: Callable[..., mini_rtsp.MiniRtspServer],
                      service: Callable[..., svc.Service], name: str) -> None:
    """cuframes-service pulls the stream (RTSP over TCP, host memory): streaming, the clip's
    codec and size, and every picture right through a loop of the file. Decoder auto (software
    without a GPU); on a GPU machine software, as docs/configuration.md asks of a host ring."""
    clip = media.CLIPS[name]
    srv = rtsp({"cam": name})
    decoder = host_decoder()
    s = service({"cam": {**VERIFIED, "url": srv.url("cam"), "decoder": decoder}})
    s.wait_state("cam", "streaming", 30)
    run = s.runtime_dir
    with cuframes.subscribe("cam-cam", runtime_dir=run, mode=STRICT,
                            connect_timeout_ms=10000) as sub:
        def read() -> tuple[np.ndarray, np.ndarray, tuple[int, int, Any, int]]:
            with sub.next_frame(timeout_ms=5000) as f:
                y, uv = svc.planes(f)
                assert f.memory == "host"
                return y.copy(), uv.copy(), (f.width, f.height, f.format, f.seq)
        codes = check_run(read, clip.frames + 10, clip)
        assert sub.gap_count == 0
    cam = s.camera("cam")
    assert cam is not None and cam["state"] == "streaming", cam
    assert (cam["codec"], cam["width"], cam["height"], cam["format"], cam["memory"]) == (
        clip.codec, clip.width, clip.height, clip.format, "host"), cam
    if decoder == "auto":
        svc.check_decoder(cam)
    else:
        assert cam["decoder"] == decoder, cam
    assert cam["decode_errors"] == 0 and cam["reconnects"] == 0, cam
    assert cam["url"] == srv.url("cam"), cam
    print(f"{name}: {len(codes)} frames checked, decoder {cam['decoder']}, {cam['fps']:.1f} fps")


def test_service_server_restart(rtsp: Callable[..., mini_rtsp.MiniRtspServer],
                                service: Callable[..., svc.Service]) -> None:
    """The server is killed: the camera leaves streaming; started again on its port: the camera
    streams again by itself and the same subscriber reads verified frames again."""
    clip = media.CLIPS["h264-1280x720"]
    srv = rtsp({"cam": clip.name})
    s = service({"cam": {**VERIFIED, "url": srv.url("cam"), "decoder": host_decoder(),
                         "stall_timeout": "2s",
                         "open_timeout": "2s", "reconnect": {"initial": "250ms", "max": "1s"}}})
    s.wait_state("cam", "streaming", 30)
    with cuframes.subscribe("cam-cam", runtime_dir=s.runtime_dir, mode=STRICT,
                            connect_timeout_ms=10000) as sub:
        def read() -> tuple[np.ndarray, np.ndarray, tuple[int, int, Any, int]]:
            with sub.next_frame(timeout_ms=10000) as f:
                y, uv = svc.planes(f)
                return y.copy(), uv.copy(), (f.width, f.height, f.format, f.seq)
        check_run(read, 10, clip)
        srv.kill()
        s.wait_state("cam", {"stalled", "connecting", "error"}, 5)
        for _ in range(100):  # what the ring still holds from before
            try:
                with sub.next_frame(timeout_ms=500):
                    pass
            except cuframes.CuframesFrameTimeout:
                break
        srv.start()
        s.wait_camera("cam", lambda c: c["state"] == "streaming" and c["reconnects"] >= 1, 20,
                      "streaming again after the server came back")
        check_run(read, 10, clip)
    print(f"states seen {s.states_seen['cam']}")

