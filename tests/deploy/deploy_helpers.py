"""Helpers of the deployment suite: the example detector as a process, its summary lines, the
values it must report for a testsrc frame, the rings' subscriber tables, docker-compose's view
of deploy/docker-compose.yml, and the Dockerfile's stages and instructions. Every wait has a
deadline and says what it saw."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import cuframes

import svc
from dockerfile import Instruction, Stage, parse_dockerfile  # noqa: F401  (the suite's)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEPLOY = ROOT / "deploy"
DETECTOR = ROOT / "examples" / "detector.py"
DETECTOR_APP = ROOT / "examples" / "detector_app"  # the package detector.py runs
CLI_BIN = Path(os.environ.get("CUFRAMES_CLI", ROOT / "build" / "cli" / "cuframes"))
COMPOSE = os.environ.get("CUFRAMES_DOCKER_COMPOSE", shutil.which("docker-compose") or
                         "/usr/bin/docker-compose")
HEALTHCHECK = DEPLOY / "healthcheck.sh"
RUNTIME_DEPS = DEPLOY / "runtime-deps.sh"
EMPTY_ENV = Path(os.environ.get("TMPDIR", "/tmp")) / f"cuframes-deploy-test-{os.getuid()}" / "empty.env"


# ---- the detector --------------------------------------------------------------------------

def parse_summaries(text: str) -> dict[str, dict[str, str]]:
    """camera -> {key: value} of the detector's `summary k=v ...` lines."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("summary "):
            kv = dict(tok.split("=", 1) for tok in line.split()[1:])
            out[kv["camera"]] = kv
    return out


class Detector:
    """examples/detector.py as a process (by default the interpreter running the tests, so the
    same cuframes module), stdout and stderr in files."""

    def __init__(self, workdir: Path, args: list[str],
                 env: Optional[dict[str, str]] = None, python: str = sys.executable) -> None:
        tag = time.monotonic_ns()
        self.out_path = workdir / f"detector-{tag}.out"
        self.err_path = workdir / f"detector-{tag}.err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([python, str(DETECTOR), "--log-interval", "1",
                                      *args], stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, env=e)

    def log(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.err_path.read_text(errors="replace")

    def describe(self) -> str:
        lines = self.log().splitlines()
        return "detector log (last lines):\n  " + "\n  ".join(lines[-30:])

    def assert_running(self) -> None:
        rc = self.proc.poll()
        assert rc is None, f"the detector exited with {rc}\n{self.describe()}"

    def wait_log(self, pattern: str, timeout: float) -> re.Match[str]:
        """Waits until a line of the detector's log matches pattern (a regex)."""
        rx = re.compile(pattern)

        def found() -> Optional[re.Match[str]]:
            for ln in self.log().splitlines():
                m = rx.search(ln)
                if m:
                    return m
            return None
        return svc.wait_for(found, timeout, f"detector log line /{pattern}/", self.describe)

    def wait_exit(self, timeout: float) -> dict[str, dict[str, str]]:
        """Waits for the exit (it must be 0) and returns the summaries."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the detector did not exit within {timeout} s\n"
                                 f"{self.describe()}") from None
        self._out.close()
        self._err.close()
        out = self.out_path.read_text(errors="replace")
        assert rc == 0, f"the detector exited with {rc}\nstdout: {out}\n{self.describe()}"
        return parse_summaries(out)

    def stdout(self) -> str:
        """What it printed (once it has exited)."""
        return self.out_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> dict[str, dict[str, str]]:
        self.assert_running()
        self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for f in (self._out, self._err):
            if not f.closed:
                f.close()


# ---- what the detector must report for a testsrc frame -------------------------------------

def expected_values(width: int, height: int, seq: int) -> tuple[float, float]:
    """(luma, edges) of testsrc frame `seq`, computed in float64 from the pattern's definition
    (svc.testsrc_expected): the mean of Y, and the mean absolute 3x3 Laplacian of Y."""
    y8, _ = svc.testsrc_expected(width, height, seq)
    y = y8.astype(np.float64)
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(y.mean()), float(np.abs(lap).mean())


def check_summary(s: dict[str, str], width: int, height: int, fps: float, memory: str,
                  backend: str, min_frames: int = 5, tol: float = 1e-4) -> None:
    """A camera's summary: frames received, a rate no higher than the camera's, and luma and
    edges that are exactly those of the frame it names (seq), so they come from the right
    pixels (pitch, plane, format). tol is relative: NumPy computes them exactly (up to the
    4 decimals printed), torch in float32 on the GPU to about 1e-5."""
    what = f"summary {s}"
    assert int(s["frames"]) >= min_frames, what
    assert 0 < float(s["fps"]) <= fps * 1.25, what
    assert s["memory"] == memory and s["backend"] == backend, what
    seq = int(s["seq"])
    assert seq > 0, what
    if s["connects"] == "1":  # one ring: its seqs count every frame it published
        assert seq >= int(s["frames"]), what
    luma, edges = expected_values(width, height, seq)
    assert abs(float(s["luma"]) - luma) <= tol * max(1.0, luma), (what, luma)
    assert abs(float(s["edges"]) - edges) <= tol * max(1.0, edges), (what, edges)
    motion = float(s["motion"])
    assert 0 < motion < 255, what  # the pattern moves by 3 levels a frame
    assert int(s["errors"]) == 0, what


# ---- --detect -----------------------------------------------------------------------------

def fit_geometry(width: int, height: int, resize: str, size: tuple[int, int] = (320, 320)
                 ) -> tuple[float, float, float, float]:
    """(scale_x, scale_y, pad_x, pad_y) of a width x height frame in a (H, W) tensor, from
    docs/python.md's definition."""
    oh, ow = size
    if resize == "stretch":
        return ow / width, oh / height, 0.0, 0.0
    s = min(ow / width, oh / height)
    cw, ch = round(width * s), round(height * s)
    return cw / width, ch / height, float((ow - cw) // 2), float((oh - ch) // 2)


POSTPROCESS_CHECK = HERE / "postprocess_check.py"


def person_weights(workdir: Path, python: str) -> Path:
    """A state dict that finds a few large "persons" in any picture (random weights score every
    class 1/91 everywhere: nothing would be detected), made by `python` (it needs torchvision):
    postprocess_check.py --make-weights."""
    path = workdir / "person.pt"
    r = subprocess.run([python, str(POSTPROCESS_CHECK), "--make-weights", str(path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return path


def check_detections(s: dict[str, str], resize: str, min_detected: int = 1) -> None:
    """A camera's summary with --detect: frames went through the model, it found objects, and
    its best box in frame pixels is its box in tensor pixels mapped back (geometry computed here
    from the frame's size), inside the frame."""
    what = f"summary {s}"
    assert int(s["detected"]) >= min_detected, what
    assert int(s["objects"]) >= 1 and s["box"] != "-", what
    w, h = int(s["width"]), int(s["height"])
    sx, sy, px, py = fit_geometry(w, h, resize)
    tbox = [float(v) for v in s["tbox"].split(",")]
    box = [float(v) for v in s["box"].split(",")]
    want = [min(max((tbox[0] - px) / sx, 0), w), min(max((tbox[1] - py) / sy, 0), h),
            min(max((tbox[2] - px) / sx, 0), w), min(max((tbox[3] - py) / sy, 0), h)]
    assert all(abs(a - b) <= 0.01 / min(sx, sy) + 0.006 for a, b in zip(box, want)), (what, want)
    assert 0 <= box[0] <= box[2] <= w and 0 <= box[1] <= box[3] <= h, what
    assert 0 < int(s["detected_seq"]) <= int(s["seq"]), what


# ---- the rings' subscriber tables ----------------------------------------------------------

def subscriber(key: str, runtime_dir: str, name: str) -> Optional[dict[str, Any]]:
    """The subscriber `name` in ring `key`'s table now, or None (also while there is no ring),
    with the ring's epoch added."""
    try:
        ob = cuframes.observe(key, runtime_dir=runtime_dir)
    except cuframes.CuframesError:
        return None
    for sub in ob["subscribers"]:
        if sub["consumer_name"] == name:
            return dict(sub, epoch=ob["epoch"])
    return None


def wait_frames(key: str, runtime_dir: str, name: str, at_least: int, timeout: float,
                detail: Callable[[], str], epoch_not: Optional[int] = None) -> dict[str, Any]:
    """Waits until subscriber `name` of ring `key` (of another epoch than epoch_not) has
    received at least `at_least` frames; returns its entry."""
    def ok() -> Optional[dict[str, Any]]:
        s = subscriber(key, runtime_dir, name)
        if s is None or s["frames_received"] < at_least:
            return None
        if epoch_not is not None and s["epoch"] == epoch_not:
            return None
        return s
    return svc.wait_for(ok, timeout, f"{name} receiving {at_least} frames of {key}"
                        + (" (a new ring)" if epoch_not is not None else ""), detail)


# ---- docker-compose ------------------------------------------------------------------------

def compose_config(*args: str, env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """`docker-compose -f deploy/docker-compose.yml [args] config`, parsed: the file as
    docker-compose understands it (validated, variables substituted, anchors resolved). Needs no
    Docker daemon."""
    import yaml
    r = compose_run("config", *args, env=env)
    assert r.returncode == 0, f"docker-compose config failed ({r.returncode}):\n{r.stderr}"
    doc = yaml.safe_load(r.stdout)
    assert isinstance(doc, dict) and "services" in doc, r.stdout[:2000]
    return doc


def compose_run(*args: str, env: Optional[dict[str, str]] = None,
                pre: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    if not os.access(COMPOSE, os.X_OK):
        raise AssertionError(f"{COMPOSE} is missing: apt-get install docker-compose "
                             "(scripts/install-deps.sh)")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("CUFRAMES_", "DOCKER_"))}
    e["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"  # proves no daemon is needed
    e.update(env or {})
    # An empty --env-file: a developer's deploy/.env does not change what is tested.
    EMPTY_ENV.parent.mkdir(parents=True, exist_ok=True)
    EMPTY_ENV.write_text("")
    return subprocess.run([COMPOSE, "--env-file", str(EMPTY_ENV), *pre,
                           "-f", str(DEPLOY / "docker-compose.yml"),
                           "--project-directory", str(DEPLOY), *args],
                          capture_output=True, text=True, timeout=60, env=e)
