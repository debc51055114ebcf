"""Helpers of the service suite: the cuframes-service process, its status file, the RTSP server
process, YAML writing, and frame checks. Every wait has a deadline and reports what it saw."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import cuframes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
from deadline import stop_process, wait_for  # noqa: E402  (re-exported: svc.wait_for)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SERVICE_BIN = Path(os.environ.get("CUFRAMES_SERVICE_BIN",
                                  ROOT / "build" / "service" / "cuframes-service"))
RTSP_SERVER = HERE / "rtsp_server.py"
# The RTSP server needs python3-gi, which Debian installs for its own interpreter only.
GI_PYTHON = os.environ.get("CUFRAMES_GI_PYTHON", "/usr/bin/python3")
STATUS_FILE = "cuframes-service.json"
POLL_S = 0.02  # status-file polling period of the waits below

STATES = {"connecting", "streaming", "stalled", "stopped", "error"}


# ---- YAML --------------------------------------------------------------------------------

def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a YAML double-quoted scalar


def to_yaml(obj: Any, indent: int = 0) -> str:
    """Block-style YAML of nested dicts and scalars (the shapes of the service's config)."""
    pad = " " * indent
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            out.append(f"{pad}{k}:" + (" {}\n" if not v else "\n" + to_yaml(v, indent + 2)))
        else:
            out.append(f"{pad}{k}: {_scalar(v)}\n")
    return "".join(out)


def write_config(path: Path, cameras: dict[str, dict[str, Any]], runtime_dir: str,
                 status_interval: str = "200ms", defaults: Optional[dict[str, Any]] = None,
                 log_level: str = "debug", mqtt: Optional[dict[str, Any]] = None,
                 http: Optional[dict[str, Any]] = None) -> Path:
    """Writes a service config: host memory by default (CI has no GPU); an `mqtt:` section
    when mqtt is given, an `http:` section when http is."""
    d = {"memory": "host"}
    d.update(defaults or {})
    cfg: dict[str, Any] = {"runtime_dir": runtime_dir, "log": {"level": log_level},
                           "status_interval": status_interval, "defaults": d, "cameras": cameras}
    if mqtt is not None:
        cfg["mqtt"] = mqtt
    if http is not None:
        cfg["http"] = http
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(to_yaml(cfg))
    os.replace(tmp, path)  # a reload never reads a half-written file
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the service -------------------------------------------------------------------------

class Service:
    """A cuframes-service process with its config file, log and runtime directory."""

    def __init__(self, config: Path, runtime_dir: str, workdir: Path,
                 args: tuple[str, ...] = ()) -> None:
        self.config = config
        self.runtime_dir = runtime_dir
        self.status_path = Path(runtime_dir) / STATUS_FILE
        self.log_path = workdir / f"service-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, CUFRAMES_RUNTIME_DIR=runtime_dir)
        self.proc = subprocess.Popen([str(SERVICE_BIN), "--config", str(config), *args],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)
        self.expected_exit = False
        self.states_seen: dict[str, list[str]] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, n: int = 40) -> str:
        self._log.flush()
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "service log (last lines):\n  " + "\n  ".join(lines[-n:])

    def running(self) -> bool:
        return self.proc.poll() is None

    def assert_running(self) -> None:
        rc = self.proc.poll()
        assert rc is None, f"cuframes-service exited with {rc}\n{self.log_tail()}"

    def status(self) -> Optional[dict[str, Any]]:
        """The status file, or None before it exists. It is rewritten atomically, so a read
        always sees a whole document: a torn or invalid one fails the test."""
        try:
            text = self.status_path.read_text()
        except FileNotFoundError:
            return None
        try:
            st = json.loads(text)
        except json.JSONDecodeError as e:
            raise AssertionError(f"status file is not valid JSON ({e}): {text[:400]!r}") from e
        for name, cam in st.get("cameras", {}).items():
            seen = self.states_seen.setdefault(name, [])
            s = cam.get("state")
            if not seen or seen[-1] != s:
                seen.append(s)
        return st

    def camera(self, name: str) -> Optional[dict[str, Any]]:
        st = self.status()
        return None if st is None else st.get("cameras", {}).get(name)

    def describe(self) -> str:
        try:
            st = self.status()
        except AssertionError as e:
            st = {"unreadable": str(e)}
        return (f"status: {json.dumps(st, indent=1)[:3000]}\n"
                f"states seen: {self.states_seen}\n{self.log_tail()}")

    def wait_camera(self, name: str, pred: Callable[[dict[str, Any]], Any], timeout: float,
                    what: str) -> dict[str, Any]:
        """Waits until camera `name` is in the status file and pred(its entry) holds; returns
        the entry. Fails at once if the service exits."""
        def check() -> Any:
            self.assert_running()
            cam = self.camera(name)
            return cam if cam is not None and pred(cam) else None
        return wait_for(check, timeout, f"camera {name}: {what}", self.describe)

    def wait_state(self, name: str, states: set[str] | str, timeout: float) -> dict[str, Any]:
        states = {states} if isinstance(states, str) else states
        return self.wait_camera(name, lambda c: c.get("state") in states, timeout,
                                f"state in {sorted(states)}")

    def send(self, sig: int) -> None:
        self.assert_running()
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Sends sig and waits for the exit; returns the exit code (fails after timeout)."""
        self.expected_exit = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"cuframes-service did not exit within {timeout} s of "
                                 f"signal {sig}\n{self.log_tail()}") from None

    def cleanup(self) -> Optional[str]:
        """Teardown: stops the process if needed. Returns a problem to report (an unexpected
        exit), or None."""
        problem = None
        rc = self.proc.poll()
        if rc is not None and not self.expected_exit:
            problem = f"cuframes-service exited unexpectedly with {rc}\n{self.log_tail()}"
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                problem = problem or f"cuframes-service ignored SIGTERM\n{self.log_tail()}"
        self._log.close()
        return problem


def run_service(args: list[str], timeout: float = 10.0,
                env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    """Runs cuframes-service to completion (--check-config, --version, a bad config). One that
    is still running after timeout (it accepted the config and started) is stopped and fails
    the test."""
    try:
        return subprocess.run([str(SERVICE_BIN), *args], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout,
                              env=env or dict(os.environ))
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        raise AssertionError(f"cuframes-service {' '.join(args)} still running after "
                             f"{timeout} s (it did not reject the config)\nstdout: {out}\n"
                             f"stderr: {(err or '')[-3000:]}") from None


# ---- the RTSP server ---------------------------------------------------------------------

class RtspServer:
    """rtsp_server.py under Debian's python3: started, SIGKILLed, started again on its port."""

    def __init__(self, workdir: Path, mounts: list[str], fps: int = 15, gop: int = 15) -> None:
        self.workdir = workdir
        self.mounts = mounts
        self.fps, self.gop = fps, gop
        self.port = 0
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log_path = workdir / f"rtsp-{time.monotonic_ns()}.log"

    def url(self, mount: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}{mount}"

    def start(self, timeout: float = 20.0) -> int:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        args = [GI_PYTHON, str(RTSP_SERVER), "--port", str(self.port), "--fps", str(self.fps),
                "--gop", str(self.gop)]
        for m in self.mounts:
            args += ["--mount", m]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=log)
        log.close()
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                self.kill()
                raise AssertionError(f"rtsp_server.py not READY within {timeout} s: "
                                     f"{self.log_path.read_text(errors='replace')[-2000:]}")
            chunk = os.read(self.proc.stdout.fileno(), 256)
            if not chunk:
                raise AssertionError(f"rtsp_server.py exited ({self.proc.wait()}): "
                                     f"{self.log_path.read_text(errors='replace')[-2000:]}")
            line += chunk
        sel.close()
        word, port = line.decode().split()
        assert word == "READY", line
        if self.port:
            assert int(port) == self.port
        self.port = int(port)
        return self.port

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def freeze(self) -> None:
        """SIGSTOP: the connections stay open and go silent (a hung camera)."""
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGSTOP)

    def stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


# ---- frames ------------------------------------------------------------------------------

def planes(frame: Any) -> tuple[np.ndarray, np.ndarray]:
    """The Y and UV planes of a host frame as numpy views (pitch-correct strides)."""
    y = np.from_dlpack(frame.y)
    uv = np.from_dlpack(frame.uv)
    bps = 2 if frame.format == cuframes.PixelFormat.P010 else 1
    assert y.shape == (frame.height, frame.width), (y.shape, frame.width, frame.height)
    assert uv.shape == (frame.height // 2, frame.width), uv.shape
    assert y.strides == (frame.pitch_y, bps) and uv.strides == (frame.pitch_uv, bps)
    return y, uv


_testsrc_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def testsrc_expected(width: int, height: int, seq: int) -> tuple[np.ndarray, np.ndarray]:
    """The testsrc contract: Y[r][c] = (c + 2r + 3 seq) mod 256 except bytes 0..7 of row 0
    (seq, little-endian uint64); UV[r][c] = (3c + r + 5 seq) mod 256."""
    key = (width, height)
    if key not in _testsrc_cache:
        r = np.arange(height, dtype=np.int64)[:, None]
        c = np.arange(width, dtype=np.int64)[None, :]
        ru = np.arange(height // 2, dtype=np.int64)[:, None]
        _testsrc_cache[key] = (c + 2 * r, 3 * c + ru)
    by, buv = _testsrc_cache[key]
    y = ((by + 3 * seq) % 256).astype(np.uint8)
    y[0, :8] = np.frombuffer(int(seq).to_bytes(8, "little"), np.uint8)
    uv = ((buv + 5 * seq) % 256).astype(np.uint8)
    return y, uv


def check_testsrc_frame(frame: Any, width: int, height: int) -> None:
    """Every byte of a testsrc frame, and its geometry."""
    assert frame.format == cuframes.PixelFormat.NV12, frame.format
    assert (frame.width, frame.height) == (width, height), (frame.width, frame.height)
    assert frame.memory == "host", frame.memory
    y, uv = planes(frame)
    want_y, want_uv = testsrc_expected(width, height, frame.seq)
    if not np.array_equal(y, want_y):
        bad = np.argwhere(y != want_y)
        r, c = bad[0]
        raise AssertionError(f"seq {frame.seq}: {len(bad)} Y bytes differ, first at row {r} "
                             f"col {c}: {y[r, c]} != {want_y[r, c]}")
    if not np.array_equal(uv, want_uv):
        bad = np.argwhere(uv != want_uv)
        r, c = bad[0]
        raise AssertionError(f"seq {frame.seq}: {len(bad)} UV bytes differ, first at row {r} "
                             f"col {c}: {uv[r, c]} != {want_uv[r, c]}")


def gpu_present() -> bool:
    return any(Path("/dev").glob("nvidia[0-9]*"))


def expected_decoder() -> Optional[str]:
    """The decoder a file/RTSP camera should report with `decoder: auto`: CUFRAMES_TEST_DECODER
    when set (e.g. nvdec on the GPU machine), "software" where there is no GPU, else either."""
    want = os.environ.get("CUFRAMES_TEST_DECODER")
    if want:
        return want
    return None if gpu_present() else "software"


def check_decoder(cam: dict[str, Any]) -> None:
    want = expected_decoder()
    if want is None:
        assert cam["decoder"] in ("nvdec", "software"), cam
    else:
        assert cam["decoder"] == want, cam


class Blackhole:
    """A TCP port that accepts connections (the kernel's backlog) and never answers: an RTSP
    camera that hangs in its handshake."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


# ---- a subscriber thread -----------------------------------------------------------------

class FrameReader(threading.Thread):
    """A subscriber on its own thread, reading until stopped: every frame's bytes are checked
    as testsrc's, and with strict (STRICT_ORDER) seqs must be consecutive (a gap is an error).
    Keeps each frame's seq and arrival time, and the subscriber's gap_count (also as it was at
    the first frame) and overruns. Errors are kept in .error."""

    def __init__(self, key: str, runtime_dir: str, width: int, height: int,
                 consumer_name: str = "reader", strict: bool = True) -> None:
        super().__init__(daemon=True)
        self.mode = (cuframes.SubscriberMode.STRICT_ORDER if strict
                     else cuframes.SubscriberMode.NEWEST_ONLY)
        self.key, self.runtime_dir, self.width, self.height = key, runtime_dir, width, height
        self.consumer_name, self.strict = consumer_name, strict
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.seqs: list[int] = []
        self.times: list[float] = []
        self.error: Optional[BaseException] = None
        self.gap_count_first: Optional[int] = None
        self.gap_count = 0
        self.overruns = 0

    def count(self) -> int:
        with self.lock:
            return len(self.seqs)

    def run(self) -> None:
        try:
            with cuframes.subscribe(self.key, consumer_name=self.consumer_name, mode=self.mode,
                                    connect_timeout_ms=10000,
                                    runtime_dir=self.runtime_dir) as sub:
                self.ready.set()
                while not self.stop_event.is_set():
                    with sub.next_frame(timeout_ms=3000) as f:
                        check_testsrc_frame(f, self.width, self.height)
                        with self.lock:
                            if self.strict and self.seqs and f.seq != self.seqs[-1] + 1:
                                raise AssertionError(f"seq {f.seq} after {self.seqs[-1]}: a gap")
                            self.seqs.append(f.seq)
                            self.times.append(time.monotonic())
                    if self.gap_count_first is None:
                        self.gap_count_first = sub.gap_count
                    self.gap_count, self.overruns = sub.gap_count, sub.overruns
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.ready.set()

    def wait_frames(self, n: int, timeout: float, detail: Callable[[], str] = lambda: "") -> None:
        wait_for(lambda: self.count() >= n or self.error is not None, timeout,
                 f"{n} frames on {self.key}", detail)
        if self.error is not None:
            raise AssertionError(f"reader of {self.key} failed: {self.error!r}") from self.error

    def finish(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)
        assert not self.is_alive(), "reader thread did not stop"
        if self.error is not None:
            raise AssertionError(f"reader of {self.key} failed: {self.error!r}") from self.error
