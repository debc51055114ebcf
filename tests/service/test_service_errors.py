"""Unreachable and hanging cameras: that camera reports error (or connecting, retrying) while
another keeps streaming; the service keeps running."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

import cuframes

import media
import svc

STRICT = cuframes.SubscriberMode.STRICT_ORDER


def _consecutive_verified(runtime_dir: str, key: str, n: int, w: int, h: int) -> None:
    with cuframes.subscribe(key, mode=STRICT, connect_timeout_ms=5000,
                            runtime_dir=runtime_dir) as sub:
        seqs = []
        for _ in range(n):
            with sub.next_frame(timeout_ms=3000) as f:
                svc.check_testsrc_frame(f, w, h)
                seqs.append(f.seq)
        assert seqs == list(range(seqs[0], seqs[0] + n)), seqs


def test_unreachable_rtsp(service: Callable[..., svc.Service], runtime_dir: str) -> None:
    port = svc.free_port()  # nothing listens there
    url = f"rtsp://admin:s3cret-pw@127.0.0.1:{port}/stream"
    s = service({"dead": {"url": url, "open_timeout": "1s",
                          "reconnect": {"initial": "200ms", "max": "500ms"}},
                 "ok": {"url": "testsrc://?width=320&height=240&fps=30"}})
    s.wait_state("ok", "streaming", 10)
    cam = s.wait_camera("dead", lambda c: (c["state"] == "error" and c["error"])
                        or (c["state"] == "connecting" and c["reconnects"] >= 2), 10,
                        "error (with a message), or connecting with reconnects counting")
    # It keeps retrying.
    r0 = cam["reconnects"]
    cam = s.wait_camera("dead", lambda c: c["reconnects"] >= r0 + 2, 10, "more retries")
    assert cam["state"] in ("error", "connecting"), cam
    assert "s3cret-pw" not in cam["url"], f"credentials not masked: {cam['url']}"
    assert "s3cret-pw" not in (cam["error"] or ""), cam
    assert f"127.0.0.1:{port}/stream" in cam["url"], cam
    assert cam["frames"] == 0, cam
    # The other camera is undisturbed.
    _consecutive_verified(runtime_dir, "cam-ok", 60, 320, 240)
    ok = s.camera("ok")
    assert ok is not None and ok["state"] == "streaming" and ok["reconnects"] == 0, ok
    s.assert_running()
    log = s.log_path.read_text(errors="replace")
    assert "s3cret-pw" not in log, "the password appears in the log"


def test_missing_file_is_the_cameras_error_until_it_appears(
        service: Callable[..., svc.Service], runtime_dir: str, workdir: Path,
        clip: Callable[[str], tuple[Any, Path]]) -> None:
    # A missing file is not a config error (a mount may come later): that camera goes to error
    # and retries, the others stream, and once the file is there the camera starts by itself.
    c, src = clip("h264-1280x720")
    path = workdir / "late" / "clip.mp4"
    s = service({"late": {"url": str(path), "reconnect": {"initial": "200ms", "max": "500ms"}},
                 "ok": {"url": "testsrc://?width=320&height=240&fps=30"}})
    s.wait_state("ok", "streaming", 10)
    cam = s.wait_camera("late", lambda c: c["state"] == "error" and "No such file" in c["error"],
                        10, "error: No such file")
    r0 = cam["reconnects"]
    s.wait_camera("late", lambda c: c["reconnects"] >= r0 + 2, 10, "more retries")
    path.parent.mkdir()
    shutil.copy(src, path)
    s.wait_state("late", "streaming", 15)
    cam = s.camera("late")
    assert cam is not None and (cam["width"], cam["height"]) == (c.width, c.height), cam
    ok = s.camera("ok")
    assert ok is not None and ok["state"] == "streaming" and ok["reconnects"] == 0, ok
    s.assert_running()


def test_hanging_rtsp(service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """A server that accepts the connection and never answers: open_timeout ends the attempt,
    the camera retries, the other camera streams."""
    hole = svc.Blackhole()
    try:
        s = service({"hang": {"url": f"rtsp://127.0.0.1:{hole.port}/x", "open_timeout": "1s",
                              "reconnect": {"initial": "200ms", "max": "500ms"}},
                     "ok": {"url": "testsrc://?width=320&height=240&fps=30"}})
        s.wait_state("ok", "streaming", 10)
        cam = s.wait_camera("hang", lambda c: c["reconnects"] >= 2
                            or (c["state"] == "error" and c["error"]), 15,
                            "open_timeout to end the hanging attempts")
        assert cam["state"] in ("error", "connecting"), cam
        _consecutive_verified(runtime_dir, "cam-ok", 30, 320, 240)
        s.assert_running()
    finally:
        hole.close()


def test_bad_stream_url_path(rtsp_server: Callable[..., svc.RtspServer],
                             service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """A reachable server but a mount that does not exist (RTSP 404): error, retried."""
    srv = rtsp_server(["/h264=h264:640x480"])
    s = service({"nomount": {"url": srv.url("/nothing-here"), "open_timeout": "2s",
                             "reconnect": {"initial": "200ms", "max": "500ms"}},
                 "ok": {"url": "testsrc://?width=320&height=240&fps=30"}})
    cam = s.wait_camera("nomount", lambda c: (c["state"] == "error" and c["error"])
                        or c["reconnects"] >= 2, 15, "error for a missing mount")
    assert cam["state"] in ("error", "connecting"), cam
    assert cam["frames"] == 0
    _consecutive_verified(runtime_dir, "cam-ok", 30, 320, 240)
    s.assert_running()


def test_memory_cuda_without_gpu(service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """memory: cuda where no GPU is usable: that camera is in error (with the reason), the
    others stream, the service runs on."""
    if svc.gpu_present():
        pytest.skip("a GPU is present")
    s = service({"gpu": {"url": "testsrc://?width=320&height=240&fps=30", "memory": "cuda"},
                 "ok": {"url": "testsrc://?width=320&height=240&fps=30"}})
    cam = s.wait_camera("gpu", lambda c: c["state"] == "error" and c["error"], 10,
                        "error with a reason")
    assert "cam-gpu" not in cuframes.list_publishers(runtime_dir)
    s.wait_state("ok", "streaming", 10)
    _consecutive_verified(runtime_dir, "cam-ok", 20, 320, 240)
    s.assert_running()
    assert cam["state"] == "error"


@pytest.mark.parametrize("decoder", ["nvdec", "cuvid"])
def test_decoder_nvdec_without_gpu(clip: Callable[[str], tuple[Any, Path]],
                                   service: Callable[..., svc.Service], runtime_dir: str,
                                   decoder: str) -> None:
    """decoder: nvdec (or cuvid) where no GPU is usable: that camera is in error, saying so (no
    silent fallback to software), the others stream, the service runs on. On the GPU machine the
    same setting decodes (tests/gpu/test_service_nvdec.py)."""
    if svc.gpu_present():
        pytest.skip("a GPU is present")
    _, path = clip("h264-1280x720")
    s = service({"nv": {"url": f"file://{path}", "decoder": decoder, "memory": "host"},
                 "ok": {"url": "testsrc://?width=320&height=240&fps=30"}})
    cam = s.wait_camera("nv", lambda c: c["state"] == "error" and c["error"], 10,
                        "error with a reason")
    assert f"decoder: {decoder}, but no usable CUDA device" in cam["error"], cam
    assert cam["frames"] == 0, cam
    s.wait_state("ok", "streaming", 10)
    _consecutive_verified(runtime_dir, "cam-ok", 20, 320, 240)
    s.assert_running()


def test_decoder_nvcuvid_without_gpu(clip: Callable[[str], tuple[Any, Path]],
                                     service: Callable[..., svc.Service], runtime_dir: str,
                                     media_dir: Path) -> None:
    """decoder: nvcuvid (NVIDIA's parser and decoder, no FFmpeg decoder) where no GPU is usable:
    the camera is in error naming what is missing (the driver's libcuda or libnvcuvid, the GPU,
    or this build's support), never a fallback; a codec it does not take (MJPEG) is named first,
    on any machine; the others stream. The GPU twin: tests/gpu/test_service_nvdec.py."""
    if svc.gpu_present():
        pytest.skip("a GPU is present")
    _, path = clip("h264-1280x720")
    mjpeg = media.make_mjpeg(media_dir)
    # memory: auto (the suite's defaults say host, which nvcuvid refuses at load)
    s = service({"nv": {"url": f"file://{path}", "decoder": "nvcuvid", "memory": "auto"},
                 "mj": {"url": f"file://{mjpeg}", "decoder": "nvcuvid", "memory": "auto"},
                 "ok": {"url": "testsrc://?width=320&height=240&fps=30"}})
    cam = s.wait_camera("nv", lambda c: c["state"] == "error" and c["error"], 10,
                        "error with a reason")
    assert re.search(r"^decoder: nvcuvid, but (no NVIDIA driver: .*libcuda\.so\.1"
                     r"|no NVDEC: .*libnvcuvid\.so\.1|no usable CUDA device"
                     r"|this build lacks it)", cam["error"]), cam
    assert cam["frames"] == 0 and cam["decoder"] == "", cam
    mj = s.wait_camera("mj", lambda c: c["state"] == "error" and c["error"], 10,
                       "error with a reason")
    assert mj["error"].startswith("decoder: nvcuvid supports h264 and hevc, not mjpeg"), mj
    s.wait_state("ok", "streaming", 10)
    _consecutive_verified(runtime_dir, "cam-ok", 20, 320, 240)
    s.assert_running()


def test_unusable_runtime_dir(workdir: Path) -> None:
    """A runtime dir that cannot be created is a fatal error other than the config: exit 1."""
    path = workdir / "c.yaml"
    path.write_text('runtime_dir: "/proc/cuframes-cannot-exist"\n'
                    'cameras:\n  a:\n    url: "testsrc://"\n')
    r = svc.run_service(["--config", str(path)], timeout=20)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "/proc/cuframes-cannot-exist" in r.stdout + r.stderr
