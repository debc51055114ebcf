"""examples/detector.py's detection path (--detect: torchvision's SSDlite320, random weights) on
host rings with the model on the CPU, against the real cuframes-service and a real mosquitto:
frames of both cameras batched through cuframes.preprocess, boxes mapped back to each frame,
object counts and the model's throughput and inference time as Home Assistant sensors; its
batched post-processing against torchvision's own; clear errors for missing torchvision and
bad weights. tests/gpu/test_detector_gpu.py does the same on cuda rings.

Needs torch and torchvision in the interpreter that runs the detector: the tests' own, or the
one named by CUFRAMES_TORCH_PYTHON (on Debian 12: `apt-get install python3-torchvision
python3-paho-mqtt`, then CUFRAMES_TORCH_PYTHON=/usr/bin/python3). Skipped without one: CI does
not install torch (about 800 MB and 110 s through apt), so these run on developers' machines and
the GPU machine. test_without_torchvision_it_says_how_to_install runs where torchvision is
missing (CI)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

import deploy_helpers as dh
import mqtt_helpers as mh
import svc

TORCH_PY = os.environ.get("CUFRAMES_TORCH_PYTHON") or sys.executable


def _probe(python: str) -> str:
    """'' if python can import torch, torchvision and cuframes, else why not."""
    try:
        r = subprocess.run([python, "-c", "import torch, torchvision, cuframes"],
                           capture_output=True, text=True, timeout=120)
    except OSError as e:
        return f"{python}: {e}"
    return "" if r.returncode == 0 else (r.stderr.strip().splitlines() or ["?"])[-1]


_NO_TORCH = _probe(TORCH_PY)
needs_torch = pytest.mark.skipif(
    bool(_NO_TORCH), reason=f"no torchvision in {TORCH_PY} ({_NO_TORCH}); set "
    "CUFRAMES_TORCH_PYTHON to an interpreter that has it")

CAMS = {"front": {"url": "testsrc://?width=320&height=180&fps=15"},
        "back": {"url": "testsrc://?width=240&height=240&fps=15"}}
BASE = "cuframes/detector/detector"



@needs_torch
def test_batched_postprocess_is_torchvisions() -> None:
    r = subprocess.run([TORCH_PY, str(dh.POSTPROCESS_CHECK), "--device", "cpu"],
                       capture_output=True, text=True, timeout=600)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("same as torchvision") == 6, r.stdout


@needs_torch
def test_detection_on_host_rings(service: Callable[..., svc.Service],
                                 broker: Callable[..., mh.Broker],
                                 collector: Callable[..., mh.Collector], runtime_dir: str,
                                 workdir: Path) -> None:
    b = broker(users={"cuframes": "det pw"})
    col = collector(b)
    s = service(CAMS)
    for cam in CAMS:
        s.wait_state(cam, "streaming", 15)
    stats = workdir / "stats.json"
    weights = dh.person_weights(workdir, TORCH_PY)  # a few large "persons" in any picture
    d = dh.Detector(workdir, ["--runtime-dir", runtime_dir, "--weights", str(weights),
                              "--stats-json", str(stats), f"--mqtt=127.0.0.1:{b.port}",
                              "--mqtt-interval", "0.5", "--batch-window", "200"],
                    env={"CUFRAMES_MQTT_USERNAME": "cuframes",
                         "CUFRAMES_MQTT_PASSWORD": "det pw"}, python=TORCH_PY)
    try:
        states = {}
        for cam in CAMS:  # object counts per camera, with the existing values
            m = col.wait_msg(f"{BASE}/{cam}", lambda m: (m.obj() or {}).get("detected", 0) >= 3,
                             timeout=90, detail=d.describe)
            st = m.json()
            states[cam] = m.payload
            assert st["objects"] >= 1 and st["labels"] == {"person": st["objects"]}, st
            assert st["memory"] == "host" and st["backend"] == "numpy", st
        m = col.wait_msg(f"{BASE}/detection/cpu", lambda m: (m.obj() or {}).get("batches", 0) >= 3,
                         timeout=60, detail=d.describe)
        det = m.json()
        assert det["device"] == "cpu" and det["inference_ms"] > 0 and det["fps"] > 0, det
        assert 1 <= det["batch_size"] <= 2 and det["errors"] == 0, det
        # Home Assistant discovery: the counts and the detector's sensors, rendering
        for cam in CAMS:
            topic = f"homeassistant/sensor/cuframes_detector_detector/{cam}_objects/config"
            cfg = col.wait_msg(topic, lambda m: m.retain, timeout=10).json()
            assert cfg["state_topic"] == f"{BASE}/{cam}", cfg
            assert int(mh.render(cfg["value_template"], states[cam])) == \
                json.loads(states[cam])["objects"]
        for value, unit in (("fps", "fps"), ("inference_ms", "ms"), ("latency_ms", "ms"),
                            ("batch_size", None)):
            topic = (f"homeassistant/sensor/cuframes_detector_detector/detection_cpu_{value}"
                     "/config")
            cfg = col.wait_msg(topic, lambda m: m.retain, timeout=10).json()
            assert cfg["state_topic"] == f"{BASE}/detection/cpu", cfg
            assert cfg.get("unit_of_measurement") == unit, cfg
            assert float(mh.render(cfg["value_template"], m.payload)) == pytest.approx(det[value])
        summaries = d.stop(timeout=60)
    finally:
        d.kill()
    assert sorted(summaries) == sorted(CAMS), summaries
    for cam, (w, h) in (("front", (320, 180)), ("back", (240, 240))):
        dh.check_summary(summaries[cam], w, h, 15.0, "host", "numpy")  # measuring still right
        dh.check_detections(summaries[cam], "stretch", min_detected=3)
    assert "summary-detection device=cpu" in d.stdout(), d.stdout()
    doc = json.loads(stats.read_text())
    batches = doc["detection"]["cpu"]["batches_list"]
    assert any(b["n"] == 2 for b in batches), batches  # both cameras in one batch
    lat = [v for b in batches for v in b["latency_ms"]]
    assert lat and all(0 < v < 60_000 for v in lat), lat


@needs_torch
@pytest.mark.parametrize("what", ["missing", "not-torch", "wrong-model"])
def test_bad_weights_are_named(workdir: Path, what: str) -> None:
    path = workdir / f"weights-{what}.pt"
    if what == "not-torch":
        path.write_bytes(b"this is not a state dict\n" * 10)
    elif what == "wrong-model":
        subprocess.run([TORCH_PY, "-c", "import torch, sys; torch.save({'fc.weight': "
                        "torch.zeros(2, 2)}, sys.argv[1])", str(path)], check=True, timeout=120)
    r = subprocess.run([TORCH_PY, str(dh.DETECTOR), "--weights", str(path), "--seconds", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    want = {"missing": "no such file", "not-torch": "not a PyTorch state dict",
            "wrong-model": "not a state dict of ssdlite320_mobilenet_v3_large"}[what]
    assert f"--weights {path}: {want}" in r.stderr, r.stderr


@pytest.mark.skipif(all(importlib.util.find_spec(m) for m in ("torch", "torchvision")),
                    reason="torch and torchvision are installed here")
def test_without_torchvision_it_says_how_to_install(workdir: Path) -> None:
    r = subprocess.run([sys.executable, str(dh.DETECTOR), "--detect", "--seconds", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "--detect needs" in r.stderr, r.stderr
    assert "install the PyPI packages torch and torchvision with pip" in r.stderr, r.stderr
