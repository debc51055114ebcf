"""cuframes-service with NVDEC, on the GPU machine (run by tests/gpu/run.sh).

The service suite's file clips (tests/service/media.py: a frame-index barcode, a moving box and a
sawtooth in every picture) decoded by NVDEC into cuda rings. A subscriber reads the frames as
torch tensors straight from device memory and checks each picture (on a host copy) and its
geometry and format; the status file must say the GPU decoder asked for (nvdec: libavcodec's
hwaccel; cuvid: FFmpeg's *_cuvid decoders; nvcuvid: NVIDIA's parser and decoder called directly),
memory cuda.

Needs CUFRAMES_SERVICE_BIN (the built service) and CUFRAMES_TEST_MEDIA_DIR (the clips, made on a
machine with ffmpeg and carried here: this one has no ffmpeg CLI).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "service"))

import cuframes  # noqa: E402
import media  # noqa: E402
import pattern  # noqa: E402
import svc  # noqa: E402
import torch  # noqa: E402

MEDIA = Path(os.environ.get("CUFRAMES_TEST_MEDIA_DIR", ROOT / ".gpu-media"))


@pytest.mark.parametrize("decoder", ["nvdec", "cuvid", "nvcuvid", "auto"])
@pytest.mark.parametrize("name", ["h264-1280x720", "hevc-2688x1520", "hevc10-1280x720"])
def test_nvdec_file_camera(tmp_path: Path, name: str, decoder: str) -> None:
    """Each GPU decoder: libavcodec's hwaccel (nvdec), the *_cuvid decoders (cuvid), and NVIDIA's
    parser and decoder called directly (nvcuvid), which auto picks for H.264 and HEVC into a
    cuda ring."""
    expected = "nvcuvid" if decoder == "auto" else decoder
    clip = media.CLIPS[name]
    path = MEDIA / clip.filename
    assert path.exists(), f"{path} missing: make it with tests/service/media.py and carry it"
    run = str(tmp_path / "run")
    cfg = svc.write_config(tmp_path / "svc.yaml",
                           {"cam": {"url": str(path), "decoder": decoder, "memory": "cuda",
                                    "loop": True, "realtime": True,
                                    # the service waits for this subscriber: no frame skipped
                                    "policy": "strict_wait", "wait_timeout": "5s"}},
                           run, defaults={"memory": "cuda"})
    service = svc.Service(cfg, run, tmp_path)
    try:
        cam = service.wait_state("cam", "streaming", timeout=30)
        assert cam["decoder"] == expected, cam
        assert cam["memory"] == "cuda", cam
        assert cam["codec"] == clip.codec, cam
        stream = torch.cuda.Stream()
        with cuframes.subscribe("cam-cam", runtime_dir=run, mode=cuframes.SubscriberMode.STRICT_ORDER,
                                connect_timeout_ms=5000, consumer_stream=stream) as sub:
            last = None
            checked = 0
            for _ in range(2 * clip.frames):  # through a loop of the file
                with sub.next_frame(timeout_ms=5000) as frame:
                    assert frame.memory == "cuda" and frame.device == 0
                    assert (frame.width, frame.height) == (clip.width, clip.height)
                    assert frame.format == (cuframes.PixelFormat.P010 if clip.bit_depth > 8
                                            else cuframes.PixelFormat.NV12)
                    with torch.cuda.stream(stream):
                        y = torch.from_dlpack(frame.y).cpu().numpy()
                        uv = torch.from_dlpack(frame.uv).cpu().numpy()
                n = pattern.read_barcode(y)
                assert n is not None, f"frame {frame.seq}: no barcode"
                if last is not None and n != 0:  # a loop starts over at 0
                    assert n == last + 1, f"frame {frame.seq}: index {n} after {last}"
                problem = pattern.check_picture(y, uv, n, noisy=True)
                assert problem is None, f"frame {frame.seq} (index {n}): {problem}"
                last = n
                checked += 1
            assert checked == 2 * clip.frames
            assert sub.gap_count == 0
        cam = service.camera("cam")
        assert cam["decode_errors"] == 0, cam
        print(f"{name}: {checked} {decoder} frames checked, {cam['fps']:.1f} fps, decoder "
              f"{cam['decoder']}, {cam['format']} {cam['width']}x{cam['height']}")
    finally:
        service.stop()


def test_auto_falls_back_when_nvcuvid_refuses(tmp_path: Path) -> None:
    """decoder: auto into a cuda ring with a stream NVDEC cannot decode (H.264 4:2:2): nvcuvid
    refuses its sequence, FFmpeg's decoder takes it from the next keyframe (NVDEC refuses it
    too, so software, uploaded into the ring), and every picture of two loops arrives intact."""
    clip = media.H264_422
    path = MEDIA / clip.filename
    assert path.exists(), f"{path} missing: make it with tests/service/media.py and carry it"
    run = str(tmp_path / "run")
    cfg = svc.write_config(tmp_path / "svc.yaml",
                           {"cam": {"url": str(path), "decoder": "auto", "memory": "cuda",
                                    "loop": True, "realtime": True,
                                    "policy": "strict_wait", "wait_timeout": "5s"}}, run)
    service = svc.Service(cfg, run, tmp_path)
    try:
        service.wait_state("cam", "streaming", timeout=30)
        stream = torch.cuda.Stream()
        with cuframes.subscribe("cam-cam", runtime_dir=run, mode=cuframes.SubscriberMode.STRICT_ORDER,
                                connect_timeout_ms=5000, consumer_stream=stream) as sub:
            last = None
            for _ in range(2 * clip.frames):
                with sub.next_frame(timeout_ms=5000) as frame:
                    assert frame.memory == "cuda"
                    assert (frame.width, frame.height) == (clip.width, clip.height)
                    assert frame.format == cuframes.PixelFormat.NV12
                    with torch.cuda.stream(stream):
                        y = torch.from_dlpack(frame.y).cpu().numpy()
                        uv = torch.from_dlpack(frame.uv).cpu().numpy()
                n = pattern.read_barcode(y)
                assert n is not None and (last is None or n in (0, last + 1)), (n, last)
                assert pattern.check_picture(y, uv, n, noisy=True) is None
                last = n
        cam = service.camera("cam")
        assert cam["decoder"] in ("software", "nvdec") and cam["memory"] == "cuda", cam
        assert "nvcuvid cannot decode this h264 stream" in service.log_tail(200), \
            service.log_tail(200)
        print(f"4:2:2 under auto: nvcuvid refused it, {2 * clip.frames} frames checked, decoded "
              f"by {cam['decoder']}")
    finally:
        service.stop()


@pytest.mark.parametrize("decoder,expected", [("nvdec", "nvdec"), ("auto", "software")])
def test_host_ring_on_a_gpu_machine(tmp_path: Path, decoder: str, expected: str) -> None:
    """memory: host on a GPU machine: NVDEC only when asked for (its frames downloaded into the
    host ring), software decode with auto. Frames are host memory, checked with numpy."""
    import numpy as np
    clip = media.CLIPS["h264-1280x720"]
    path = MEDIA / clip.filename
    run = str(tmp_path / "run")
    cfg = svc.write_config(tmp_path / "svc.yaml",
                           {"cam": {"url": str(path), "decoder": decoder, "memory": "host",
                                    "policy": "strict_wait", "wait_timeout": "5s"}}, run)
    service = svc.Service(cfg, run, tmp_path)
    try:
        cam = service.wait_state("cam", "streaming", timeout=30)
        assert (cam["decoder"], cam["memory"]) == (expected, "host"), cam
        with cuframes.subscribe("cam-cam", runtime_dir=run, mode=cuframes.SubscriberMode.STRICT_ORDER,
                                connect_timeout_ms=5000) as sub:
            last = None
            for _ in range(clip.frames):
                with sub.next_frame(timeout_ms=5000) as frame:
                    assert frame.memory == "host"
                    y, uv = np.from_dlpack(frame.y).copy(), np.from_dlpack(frame.uv).copy()
                n = pattern.read_barcode(y)
                assert n is not None and (last is None or n in (0, last + 1)), (n, last)
                assert pattern.check_picture(y, uv, n, noisy=True) is None
                last = n
        print(f"host ring, decoder {decoder}: {clip.frames} frames checked, decoded by "
              f"{service.camera('cam')['decoder']}")
    finally:
        service.stop()


def test_nvdec_camera_after_a_cuda_testsrc_ring(tmp_path: Path) -> None:
    """A ring made first (testsrc on CUDA) activates the primary context that NVDEC then shares:
    FFmpeg refuses it unless its flags are blocking sync (service/src/cuda_device.h). The NVDEC
    camera is added by SIGHUP once the testsrc ring exists; both then deliver frames."""
    import signal
    clip = media.CLIPS["h264-1280x720"]
    run = str(tmp_path / "run")
    ts = {"url": "testsrc://?width=320&height=240&fps=30", "memory": "cuda"}
    cfg = svc.write_config(tmp_path / "svc.yaml", {"ts": ts}, run)
    service = svc.Service(cfg, run, tmp_path)
    try:
        assert service.wait_state("ts", "streaming", timeout=30)["memory"] == "cuda"
        svc.write_config(tmp_path / "svc.yaml",
                         {"ts": ts, "cam": {"url": str(MEDIA / clip.filename), "decoder": "nvdec",
                                            "memory": "cuda", "loop": True, "realtime": True}},
                         run)
        service.send(signal.SIGHUP)
        cam = service.wait_state("cam", "streaming", timeout=30)
        assert (cam["decoder"], cam["memory"]) == ("nvdec", "cuda"), cam
        stream = torch.cuda.Stream()
        for key, (w, h) in (("cam-cam", (clip.width, clip.height)), ("cam-ts", (320, 240))):
            with cuframes.subscribe(key, runtime_dir=run, connect_timeout_ms=5000,
                                    consumer_stream=stream) as sub:
                for _ in range(10):
                    with sub.next_frame(timeout_ms=5000) as frame:
                        assert frame.memory == "cuda" and (frame.width, frame.height) == (w, h)
                        with torch.cuda.stream(stream):
                            y = torch.from_dlpack(frame.y).cpu().numpy()
                if key == "cam-cam":
                    assert pattern.read_barcode(y) is not None
        assert service.camera("ts")["state"] == "streaming"
        print("testsrc (cuda) + NVDEC camera in one service: both streaming, frames checked")
    finally:
        service.stop()
