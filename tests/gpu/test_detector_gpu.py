"""examples/detector.py on the GPU machine: cuframes-service testsrc cameras in `memory: cuda`
rings, read by the detector with PyTorch on the GPU (one CUDA stream per camera, DLPack, no
copy), next to a camera in a host ring read with NumPy by the same process. The values it
reports must be exactly those of the testsrc frame it names; it must survive the service being
killed and started again. tests/deploy/test_detector.py is the same on host memory (CI).
With --detect (torchvision's SSDlite320, random weights made to see "persons", float16 on
the GPU): the cuda rings'
frames batched through cuframes.preprocess on one stream, boxes mapped back into each frame, the
host ring's frames through the same model on the CPU, the detector's own report of its batches
(--stats-json; there is no MQTT broker on the GPU machine: tests/deploy/test_detector_torch.py
checks the sensors over a real mosquitto), and the batched post-processing against torchvision's
own on CUDA.

Run on the GPU machine (the Python package installed or on PYTHONPATH, the service built):

    CUFRAMES_SERVICE_BIN=$BUILD/service/cuframes-service \
        python3 -m pytest -v -p no:cacheprovider tests/gpu/test_detector_gpu.py

Skipped where there is no NVIDIA GPU or no torch with CUDA, unless CUFRAMES_TEST_EXPECT_GPU=1
(tests/gpu/run.sh sets it), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "service"))
sys.path.insert(0, str(ROOT / "tests" / "deploy"))

import svc  # noqa: E402


def _gpu_problem() -> str:
    if not svc.gpu_present():
        return "no NVIDIA GPU (/dev/nvidia*)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch
    except ImportError:
        return "no torch"
    if not torch.cuda.is_available():
        return "torch has no CUDA device"
    return ""


_PROBLEM = _gpu_problem()
if _PROBLEM and os.environ.get("CUFRAMES_TEST_EXPECT_GPU") == "1":
    raise RuntimeError(f"CUFRAMES_TEST_EXPECT_GPU=1 but {_PROBLEM}")
pytestmark = pytest.mark.skipif(bool(_PROBLEM), reason=f"needs a GPU with torch: {_PROBLEM}")

import deploy_helpers as dh  # noqa: E402

CAMS = {
    # cuda rings: 1280 wide (pitch 1280) and 1366 wide (pitch 1536: padded rows)
    "gpu-a": {"url": "testsrc://?width=1280&height=720&fps=30", "memory": "cuda"},
    "gpu-b": {"url": "testsrc://?width=1366&height=768&fps=25", "memory": "cuda"},
    # a host ring in the same detector: NumPy, while torch owns the CUDA streams
    "host-c": {"url": "testsrc://?width=328&height=184&fps=20", "memory": "host"},
}
GEOM = {"gpu-a": (1280, 720, 30.0), "gpu-b": (1366, 768, 25.0), "host-c": (328, 184, 20.0)}


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[Path, str, list[svc.Service], list[dh.Detector]]]:
    rt = str(tmp_path / "rt")
    services: list[svc.Service] = []
    detectors: list[dh.Detector] = []
    yield tmp_path, rt, services, detectors
    for d in detectors:
        d.kill()
    problems = [p for p in (s.cleanup() for s in services) if p]
    assert not problems, "\n".join(problems)


def _start_service(tmp: Path, rt: str, services: list[svc.Service]) -> svc.Service:
    cfg = svc.write_config(tmp / "svc.yaml", CAMS, rt, defaults={"memory": "cuda"})
    s = svc.Service(cfg, rt, tmp)
    services.append(s)
    for cam in CAMS:
        c = s.wait_state(cam, "streaming", 30)
        assert c["memory"] == CAMS[cam]["memory"], c
    return s


def _check(summaries: dict[str, dict[str, str]], min_frames: int, d: dh.Detector) -> None:
    assert sorted(summaries) == sorted(CAMS), summaries
    for cam, (w, h, fps) in GEOM.items():
        s = summaries[cam]
        try:
            if CAMS[cam]["memory"] == "cuda":
                dh.check_summary(s, w, h, fps, "cuda", "torch", min_frames=min_frames, tol=1e-3)
                assert s["device"] == "cuda:0", s
            else:
                dh.check_summary(s, w, h, fps, "host", "numpy", min_frames=min_frames)
        except AssertionError as e:  # the detector's log says what went wrong
            raise AssertionError(f"{e}\n{d.describe()}") from None
        print(" ".join(f"{k}={v}" for k, v in s.items()))


def test_detector_on_cuda_rings(run: tuple[Path, str, list[svc.Service], list[dh.Detector]]
                                ) -> None:
    tmp, rt, services, detectors = run
    _start_service(tmp, rt, services)
    d = dh.Detector(tmp, ["--runtime-dir", rt, "--seconds", "5"])
    detectors.append(d)
    summaries = d.wait_exit(60)
    assert "frames on the GPU: torch" in d.log(), d.describe()
    _check(summaries, min_frames=20, d=d)


def test_detector_survives_a_killed_service(
        run: tuple[Path, str, list[svc.Service], list[dh.Detector]]) -> None:
    tmp, rt, services, detectors = run
    s = _start_service(tmp, rt, services)
    d = dh.Detector(tmp, ["--runtime-dir", rt])
    detectors.append(d)
    first = {cam: dh.wait_frames(f"cam-{cam}", rt, "detector", 10, 30, d.describe)
             for cam in CAMS}
    s.stop(signal.SIGKILL)  # CUDA memory the detector imported stays valid until released
    for cam in CAMS:
        d.wait_log(rf"cam-{cam}: publisher gone, reconnecting", 15)
    _start_service(tmp, rt, services)
    for cam in CAMS:
        dh.wait_frames(f"cam-{cam}", rt, "detector", 10, 30, d.describe,
                       epoch_not=first[cam]["epoch"])
    summaries = d.stop()
    _check(summaries, min_frames=20, d=d)
    for cam in CAMS:
        assert summaries[cam]["connects"] == "2", summaries[cam]


def test_detection_on_cuda_rings(run: tuple[Path, str, list[svc.Service], list[dh.Detector]]
                                 ) -> None:
    tmp, rt, services, detectors = run
    _start_service(tmp, rt, services)
    stats = tmp / "stats.json"
    weights = dh.person_weights(tmp, sys.executable)  # a few large "persons" in any picture
    d = dh.Detector(tmp, ["--runtime-dir", rt, "--seconds", "8", "--weights", str(weights),
                          "--resize", "letterbox", "--stats-json", str(stats)])
    detectors.append(d)
    summaries = d.wait_exit(180)
    assert "frames on the GPU: torch" in d.log(), d.describe()
    assert "detection on cuda:0" in d.log() and "detection on cpu" in d.log(), d.describe()
    # CUDA graphs (the default) captured at start, none failing
    assert "CUDA graphs: batches of" in d.log(), d.describe()
    assert "a capture failed" not in d.log(), d.describe()
    _check(summaries, min_frames=20, d=d)  # the measurements are still exactly right
    for cam in CAMS:
        try:
            dh.check_detections(summaries[cam], "letterbox", min_detected=5)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{d.describe()}") from None
    doc = json.loads(stats.read_text())
    for kind, cams in (("cuda", 2), ("cpu", 1)):
        det = doc["detection"][kind]
        assert det["errors"] == 0, (kind, det["last_error"])
        batches = det["batches_list"]
        assert batches and all(1 <= b["n"] <= cams for b in batches), (kind, batches[:5])
        lat = sorted(v for b in batches for v in b["latency_ms"])
        infer = sorted(b["inference_ms"] for b in batches)
        assert all(0 < v < 10_000 for v in lat) and infer[0] > 0, (kind, lat[:5], infer[:5])
        print(f"detection on {det['device']}: {len(batches)} batches, "
              f"{sum(b['n'] for b in batches)} frames, model p50 {infer[len(infer) // 2]:.2f} "
              f"ms/batch, publish->detections p50 {lat[len(lat) // 2]:.1f} ms")
    # the two cuda cameras share batches (one kernel, one model call)
    assert sum(b["n"] == 2 for b in doc["detection"]["cuda"]["batches_list"]) >= 10, \
        doc["detection"]["cuda"]["batches_list"][:20]
    assert doc["detection"]["cuda"]["device"] == "cuda:0"


def test_batched_postprocess_is_torchvisions_on_cuda() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "deploy" / "postprocess_check.py"),
                        "--device", "cuda"], capture_output=True, text=True, timeout=600)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("same as torchvision") == 6, r.stdout
    # CUDA graphs: 3 thresholds x 3 batches (a bucket, one padded, one in parts), and a failed
    # capture's fallback once
    assert r.stdout.count("same as the forward") == 10, r.stdout
    assert r.stdout.count("a failing capture falls back") == 1, r.stdout
