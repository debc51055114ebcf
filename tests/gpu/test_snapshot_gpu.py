"""Snapshots of cuda rings, on the GPU machine (tests/gpu/run.sh, stage `snapshot`).

cuframes-service decodes the service suite's clips with NVDEC into cuda rings and serves
snapshots over HTTP (the build needs cpp-httplib: tests/gpu/pack-http.sh puts it in .gpu/http). Each snapshot is scaled on the
GPU by cuframes_preprocess (only the small RGB picture is copied to the host) and encoded by
FFmpeg's MJPEG encoder; it must decode to the clip's picture (frame-index barcode and box, the
aspect kept), and /metrics must count GPU time for it (the GPU path ran, not a host copy).
Prints the cost per snapshot (CPU and GPU milliseconds) per clip.

Needs CUFRAMES_SERVICE_BIN and CUFRAMES_TEST_MEDIA_DIR (the clips, made where ffmpeg is).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "service"))

import media  # noqa: E402
import svc  # noqa: E402
from snapshot_check import check_snapshot  # noqa: E402

MEDIA = Path(os.environ.get("CUFRAMES_TEST_MEDIA_DIR", ROOT / ".gpu-media"))
PICTURES = 20


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _metric(text: str, name: str, camera: str) -> float:
    prefix = f'{name}{{camera="{camera}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    raise AssertionError(f"no {prefix!r} in /metrics")


@pytest.mark.parametrize("name", ["h264-1280x720", "hevc-2688x1520", "hevc10-1280x720"])
@pytest.mark.parametrize("width", [640, 0])
def test_cuda_ring_snapshots(tmp_path: Path, name: str, width: int) -> None:
    clip = media.CLIPS[name]
    path = MEDIA / clip.filename
    assert path.exists(), f"{path} missing: make it with tests/service/media.py and carry it"
    run = str(tmp_path / "run")
    port = svc.free_port()
    cfg = svc.write_config(tmp_path / "svc.yaml",
                           {"cam": {"url": str(path), "decoder": "nvdec", "memory": "cuda",
                                    "loop": True, "realtime": True}},
                           run, defaults={"memory": "cuda"}, http={"listen": f"127.0.0.1:{port}"})
    service = svc.Service(cfg, run, tmp_path)
    try:
        cam = service.wait_state("cam", "streaming", timeout=30)
        assert cam["decoder"] == "nvdec" and cam["memory"] == "cuda", cam
        base = f"http://127.0.0.1:{port}"
        query = f"?width={width}" if width else ""
        seen = set()
        for _ in range(PICTURES):
            code, body = _get(f"{base}/api/cameras/cam/snapshot.jpg{query}")
            assert code == 200, (code, body[:300], service.log_tail())
            seen.add(check_snapshot(body, clip.width, clip.height, width, clip.frames))
        assert len(seen) > 1, f"every snapshot shows frame {seen}"
        code, text = _get(f"{base}/metrics")
        assert code == 200
        m = text.decode()
        n = _metric(m, "cuframes_camera_snapshots_total", "cam")
        gpu = _metric(m, "cuframes_camera_snapshot_gpu_seconds_total", "cam")
        cpu = _metric(m, "cuframes_camera_snapshot_cpu_seconds_total", "cam")
        assert n == PICTURES, n
        assert gpu > 0, "no GPU time counted: the snapshots did not take the GPU path"
        print(f"{name} -> {width or clip.width} wide: {PICTURES} snapshots checked "
              f"({len(seen)} different frames), per snapshot CPU {cpu / n * 1e3:.2f} ms, "
              f"GPU {gpu / n * 1e3:.3f} ms, {len(body)} bytes")
        service.assert_running()
    finally:
        service.stop()
