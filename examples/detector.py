#!/usr/bin/env python3
"""An example detector: a long-running consumer of every cuframes-service camera.

For each camera it finds in the runtime directory (the rings `cam-<name>`), a thread subscribes,
reads every newest frame in place (zero-copy, through DLPack) and measures three things on the
luma (Y) plane:

  luma    the mean brightness, 0..255
  edges   the mean absolute 3x3 Laplacian (a convolution): how sharp or busy the picture is
  motion  the mean absolute difference of the 4x4-averaged picture against the previous frame
          this detector processed (0 for the first frame after a (re)connect)

Frames in GPU memory (`memory: cuda` rings) are processed with PyTorch on the GPU, on one CUDA
stream per camera; the frame's hold is released on that stream, so the slot is reused only once
the queued work has finished. Frames in host memory (`memory: host` rings) are processed with
NumPy on the CPU, also without a copy. PyTorch is optional: without it (or without CUDA) host
rings still work, which is how CI runs this file.

Each camera's subscriber survives the service going away and coming back (a restart, a reload
that changed the camera, a camera added later): it reconnects with a backoff. Results go to MQTT
when --mqtt is given (paho-mqtt), with Home Assistant discovery for a sensor per camera and
value. At exit (--seconds, SIGTERM or Ctrl-C) it prints one summary line per camera:

  summary camera=NAME key=cam-NAME frames=N fps=F seq=S luma=L edges=E motion=M memory=MEM
          backend=numpy|torch device=DEV connects=C gaps=G errors=X
(luma, edges and motion are "-" until a frame has given them)

Usage:
  detector.py [--runtime-dir DIR] [--cameras a,b] [--mqtt HOST[:PORT]] [--seconds N]

The MQTT user and password come from --mqtt-username and the environment (CUFRAMES_MQTT_USERNAME,
CUFRAMES_MQTT_PASSWORD) or --mqtt-password-file; a password is never taken on the command line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

import cuframes

log = logging.getLogger("detector")

RING_PREFIX = "cam-"

try:  # optional: GPU frames need it
    import torch
    import torch.nn.functional as F
except ImportError:  # host rings only
    torch = None  # type: ignore[assignment]
    F = None  # type: ignore[assignment]


def ha_id(name: str) -> str:
    """A name as a Home Assistant id: lower case, runs of other characters one '_'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "x"


# ---- the measurements --------------------------------------------------------------------

def _scale(frame: Any) -> float:
    """8-bit luma for every format: P010 keeps its 10 bits in the top of 16."""
    return 1.0 / 256.0 if frame.bytes_per_sample == 2 else 1.0


def measure_numpy(frame: Any, prev: Optional[np.ndarray]) -> tuple[tuple[float, float, float],
                                                                    np.ndarray]:
    """Host frame: NumPy reads the Y plane in place (strides carry the pitch)."""
    y8 = np.from_dlpack(frame.y)  # (H, W) view into the ring slot, no copy
    y = y8.astype(np.float32)  # the copy we compute on (the slot is released right after)
    del y8
    if frame.bytes_per_sample == 2:
        y *= _scale(frame)
    luma = float(y.mean(dtype=np.float64))
    lap = (4.0 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
    edges = float(np.abs(lap).mean(dtype=np.float64))
    h4, w4 = y.shape[0] // 4, y.shape[1] // 4
    small = y[:h4 * 4, :w4 * 4].reshape(h4, 4, w4, 4).mean(axis=(1, 3), dtype=np.float32)
    motion = 0.0
    if prev is not None and prev.shape == small.shape:
        motion = float(np.abs(small - prev).mean(dtype=np.float64))
    return (luma, edges, motion), small


_LAPLACE: dict[Any, Any] = {}


def measure_torch(frame: Any, prev: Any) -> tuple[Any, Any]:
    """CUDA frame: torch reads the Y plane in place on the current (this camera's) stream and
    queues the work; nothing here waits for the GPU. Returns (values on the GPU, small)."""
    y8 = torch.from_dlpack(frame.y)  # (H, W) uint8/uint16 on the GPU, strides (pitch, 1)
    if y8.dtype != torch.uint8:  # P010: uint16 has few kernels; int32 holds it
        y = y8.to(torch.int32).to(torch.float32) * _scale(frame)
    else:
        y = y8.to(torch.float32)
    del y8  # the frame's slot is no longer read after the kernel above
    k = _LAPLACE.get(y.device)
    if k is None:
        k = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]],
                         device=y.device).view(1, 1, 3, 3)
        _LAPLACE[y.device] = k
    img = y[None, None]
    luma = y.mean()
    edges = F.conv2d(img, k).abs().mean()
    small = F.avg_pool2d(img, 4)[0, 0]
    if prev is not None and prev.shape == small.shape:
        motion = (small - prev).abs().mean()
    else:
        motion = torch.zeros((), device=y.device)
    return torch.stack([luma, edges, motion]), small


# ---- one camera ----------------------------------------------------------------------------

@dataclass
class Stats:
    """What a camera's thread reports (read by the main thread under the lock)."""
    frames: int = 0
    first_ns: int = 0
    last_ns: int = 0
    seq: int = 0
    values: tuple[float, float, float] = (float("nan"),) * 3
    memory: str = ""
    backend: str = ""
    device: str = ""
    connects: int = 0
    connected: bool = False
    gaps: int = 0  # of the connections that ended
    cur_gaps: int = 0  # of the current connection
    errors: int = 0
    last_error: str = ""
    window: deque[int] = field(default_factory=deque)  # frame times (ns) of the last 5 s


class Camera(threading.Thread):
    """Subscribes to one ring and processes its frames, reconnecting until stopped."""

    BACKOFF_MIN = 0.1
    BACKOFF_MAX = 5.0

    def __init__(self, name: str, args: argparse.Namespace, stop: threading.Event) -> None:
        super().__init__(name=f"cam-{name}", daemon=True)
        self.cam = name
        self.key = RING_PREFIX + name
        self.args = args
        self.stop_ev = stop
        self.lock = threading.Lock()
        self.stats = Stats()
        self.stream: Any = None
        self._pinned: list[Any] = []
        self._flip = 0
        self._pending: Optional[tuple[Any, Any, int, int]] = None  # event, host values, seq, t

    # -- results --
    def _record(self, values: tuple[float, float, float], seq: int, t_ns: int) -> None:
        with self.lock:
            s = self.stats
            s.values = values
            s.seq = seq
            s.frames += 1
            if not s.first_ns:
                s.first_ns = t_ns
            s.last_ns = t_ns
            s.window.append(t_ns)
            cut = t_ns - 5_000_000_000
            while s.window and s.window[0] < cut:
                s.window.popleft()

    def _resolve_pending(self) -> None:
        """The GPU results of the previous frame: its copy to pinned memory has (nearly surely)
        finished while this frame's work was queued; wait for it and record it."""
        if self._pending is None:
            return
        event, host, seq, t_ns = self._pending
        self._pending = None
        try:
            event.synchronize()
            v = host.tolist()
        except Exception as e:  # a CUDA error: reported; the camera's loop starts over
            self._error(f"GPU work failed: {e!r}")
            return
        self._record((v[0], v[1], v[2]), seq, t_ns)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            s = self.stats
            span = (s.last_ns - s.first_ns) / 1e9
            fps = (s.frames - 1) / span if s.frames > 1 and span > 0 else 0.0
            now = time.monotonic_ns()
            recent = [t for t in s.window if t >= now - 5_000_000_000]
            fps_now = (len(recent) - 1) / ((recent[-1] - recent[0]) / 1e9) if (
                len(recent) > 1 and recent[-1] > recent[0]) else 0.0
            return {"camera": self.cam, "key": self.key, "frames": s.frames, "fps": fps,
                    "fps_now": fps_now, "seq": s.seq, "luma": s.values[0], "edges": s.values[1],
                    "motion": s.values[2], "memory": s.memory, "backend": s.backend,
                    "device": s.device, "connects": s.connects, "connected": s.connected,
                    "gaps": s.gaps + s.cur_gaps, "errors": s.errors, "last_error": s.last_error}

    def _error(self, msg: str) -> None:
        with self.lock:
            self.stats.errors += 1
            repeated = self.stats.last_error == msg
            self.stats.last_error = msg
        (log.debug if repeated else log.warning)("%s: %s", self.key, msg)

    # -- the loop --
    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # never die silently: the summary shows it
            self._error(f"thread failed: {e!r}")
            log.exception("%s: thread failed", self.key)

    def _run(self) -> None:
        if torch is not None and self.args.torch_cuda:
            dev = torch.device("cuda", self.args.cuda_device)
            self.stream = torch.cuda.Stream(device=dev)  # this camera's stream
            self._pinned = [torch.empty(3, dtype=torch.float32).pin_memory() for _ in range(2)]
        backoff = self.BACKOFF_MIN
        while not self.stop_ev.is_set():
            try:
                sub = cuframes.subscribe(
                    self.key, consumer_name=self.args.name,
                    cuda_device=self.args.cuda_device,
                    connect_timeout_ms=500,  # short: a stop request is seen quickly
                    consumer_stream=self.stream if self.stream is not None else 0,
                    runtime_dir=self.args.runtime_dir)
            except cuframes.CuframesPublisherGone:
                # not there (yet): the service is starting, restarting, or the camera is gone
                self.stop_ev.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.BACKOFF_MAX)
                continue
            except cuframes.CuframesError as e:
                # e.g. CuframesDeviceLost: a cuda ring without a usable GPU here
                self._error(f"cannot subscribe: {e}")
                self.stop_ev.wait(self.BACKOFF_MAX)
                continue
            backoff = self.BACKOFF_MIN
            with sub:
                with self.lock:
                    self.stats.connects += 1
                    self.stats.connected = True
                    self.stats.memory = sub.memory
                log.info("%s: subscribed (%s %dx%d, %s memory)", self.key, sub.format.name,
                         sub.width, sub.height, sub.memory)
                try:
                    self._consume(sub)
                except Exception as e:  # a frame that cannot be processed: start over later
                    self._error(f"processing failed: {e!r}")
                    self.stop_ev.wait(self.BACKOFF_MAX)
                finally:
                    self._resolve_pending()
                    with self.lock:
                        self.stats.connected = False
                        self.stats.gaps += sub.gap_count
                        self.stats.cur_gaps = 0

    def _consume(self, sub: Any) -> None:
        prev: Any = None
        while not self.stop_ev.is_set():
            try:
                frame = sub.next_frame(timeout_ms=500)
            except cuframes.CuframesFrameTimeout:
                continue  # nothing new: look at the stop flag, wait again
            except cuframes.CuframesPublisherGone:
                log.info("%s: publisher gone, reconnecting", self.key)
                return
            except cuframes.CuframesOverrun:
                continue  # counted in the subscriber's stats
            except cuframes.CuframesError as e:
                self._error(f"next_frame: {e}")
                return
            t_ns = time.monotonic_ns()
            with frame:
                if frame.memory == "cuda":
                    prev = self._gpu(frame, prev, t_ns)
                else:
                    with self.lock:
                        self.stats.backend = "numpy"
                        self.stats.device = "cpu"
                    values, prev = measure_numpy(frame, prev)
                    self._record(values, frame.seq, t_ns)
            # the frame is released here: at once for host memory; for a cuda ring once the
            # work queued on this camera's stream has finished
            with self.lock:
                self.stats.cur_gaps = sub.gap_count

    def _gpu(self, frame: Any, prev: Any, t_ns: int) -> Any:
        if self.stream is None:
            raise RuntimeError("a cuda ring, but no torch with CUDA here (use memory: host)")
        with torch.cuda.stream(self.stream):
            values, small = measure_torch(frame, prev)
            host = self._pinned[self._flip]
            self._flip ^= 1
            host.copy_(values, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.stream)
        self._resolve_pending()  # the previous frame's values (this one's are queued)
        self._pending = (event, host, frame.seq, t_ns)
        with self.lock:
            self.stats.backend = "torch"
            self.stats.device = f"cuda:{frame.device}"
        return small


# ---- MQTT ---------------------------------------------------------------------------------

class Mqtt:
    """paho-mqtt client: availability with a last will, a JSON state per camera, and Home
    Assistant discovery (re-sent on every connect and when Home Assistant comes online)."""

    SENSORS = [  # value, name, unit, state_class, entity_category
        ("motion", "Motion", None, "measurement", None),
        ("fps", "Detector FPS", "fps", "measurement", None),
        ("luma", "Brightness", None, "measurement", "diagnostic"),
        ("edges", "Edges", None, "measurement", "diagnostic"),
        ("frames", "Detector frames", None, "total_increasing", "diagnostic"),
    ]

    def __init__(self, args: argparse.Namespace) -> None:
        import paho.mqtt.client as mqtt  # optional dependency: only with --mqtt
        host, _, port = args.mqtt.rpartition(":") if ":" in args.mqtt else (args.mqtt, "", "")
        self.host = host or args.mqtt
        self.port = int(port) if port else 1883
        self.base = args.mqtt_topic or f"cuframes/detector/{ha_id(args.name)}"
        self.prefix = args.discovery_prefix
        self.name = args.name
        self.node = ha_id(args.name)
        self.cameras: set[str] = set()
        self.lock = threading.Lock()
        self.connected = False
        self.refusal = ""
        try:
            from paho.mqtt.enums import CallbackAPIVersion
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                      client_id=f"cuframes-detector-{self.node}-{os.getpid()}")
        except ImportError:  # paho-mqtt 1.x
            self.client = mqtt.Client(client_id=f"cuframes-detector-{self.node}-{os.getpid()}")
        user = args.mqtt_username or os.environ.get("CUFRAMES_MQTT_USERNAME") or None
        password = os.environ.get("CUFRAMES_MQTT_PASSWORD")
        if args.mqtt_password_file:
            with open(args.mqtt_password_file, encoding="utf-8") as f:
                password = f.read().strip()
        if user:
            self.client.username_pw_set(user, password or None)
        self.client.will_set(f"{self.base}/status", "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()  # paho's thread: connects, and reconnects, by itself
        log.info("MQTT: broker %s:%d, topics %s/...", self.host, self.port, self.base)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        failed = rc.is_failure if hasattr(rc, "is_failure") else rc != 0
        if failed:
            msg = str(rc)
            if msg != self.refusal:
                log.error("MQTT: the broker %s:%d refused the connection: %s (check "
                          "--mqtt-username and CUFRAMES_MQTT_PASSWORD)", self.host, self.port, msg)
            self.refusal = msg
            return
        self.refusal = ""
        log.info("MQTT: connected to %s:%d", self.host, self.port)
        with self.lock:
            self.connected = True
            cams = sorted(self.cameras)
        client.publish(f"{self.base}/status", "online", qos=1, retain=True)
        if self.prefix:
            client.subscribe(f"{self.prefix}/status", qos=1)
            for cam in cams:
                self._announce(cam)

    def _on_disconnect(self, client: Any, userdata: Any, *rest: Any) -> None:
        with self.lock:
            self.connected = False

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic == f"{self.prefix}/status" and msg.payload == b"online":
            with self.lock:
                cams = sorted(self.cameras)
            for cam in cams:  # Home Assistant restarted: announce again
                self._announce(cam)

    def _announce(self, cam: str) -> None:
        cid = ha_id(cam)
        device = {"identifiers": [f"cuframes_detector_{self.node}"],
                  "name": f"cuframes detector {self.name}", "manufacturer": "cuframes",
                  "model": "examples/detector.py"}
        for value, label, unit, state_class, category in self.SENSORS:
            uid = f"cuframes_detector_{self.node}_{cid}_{value}"
            cfg: dict[str, Any] = {
                "name": f"{cam} {label}", "unique_id": uid,
                "default_entity_id": f"sensor.{uid}",
                "state_topic": f"{self.base}/{cam}",
                "value_template": f"{{{{ value_json.{value} }}}}",
                "availability_topic": f"{self.base}/status", "state_class": state_class,
                "device": device, "origin": {"name": "cuframes detector example"}}
            if unit:
                cfg["unit_of_measurement"] = unit
            if category:
                cfg["entity_category"] = category
            self.client.publish(f"{self.prefix}/sensor/cuframes_detector_{self.node}/{cid}_{value}"
                                "/config", json.dumps(cfg), qos=1, retain=True)

    def publish(self, snap: dict[str, Any]) -> None:
        cam = snap["camera"]
        with self.lock:
            new = cam not in self.cameras
            self.cameras.add(cam)
            connected = self.connected
        if not connected:
            return  # dropped, not queued: the next interval publishes fresh values
        if new and self.prefix:
            self._announce(cam)
        payload = {k: snap[k] for k in ("frames", "seq", "memory", "backend", "connected",
                                        "connects", "gaps", "errors")}
        payload["fps"] = round(snap["fps_now"], 2)
        for k in ("luma", "edges", "motion"):
            v = snap[k]
            payload[k] = None if v != v else round(v, 4)  # NaN before the first frame
        self.client.publish(f"{self.base}/{cam}", json.dumps(payload), qos=0, retain=True)

    def close(self, timeout: float = 3.0) -> None:
        """Says offline and disconnects, for at most `timeout` seconds: a broker that went away
        first (`docker compose down` stops them together) must not keep the detector from
        exiting. paho's thread may be reconnecting by then, blocked in a name lookup or a
        connect that loop_stop() would wait for; it is a daemon thread, left behind."""
        def goodbye() -> None:
            try:
                if self.connected:
                    self.client.publish(f"{self.base}/status", "offline", qos=1,
                                        retain=True).wait_for_publish(timeout * 2 / 3)
                self.client.disconnect()
            except (RuntimeError, ValueError, OSError):
                pass
            self.client.loop_stop()

        t = threading.Thread(target=goodbye, name="mqtt-close", daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            log.warning("MQTT: no clean disconnect from %s:%d within %.0f s (the broker is "
                        "gone or unreachable); exiting without it", self.host, self.port, timeout)


# ---- main --------------------------------------------------------------------------------

def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime-dir", default=None,
                   help="the rendezvous directory (default: $CUFRAMES_RUNTIME_DIR, /run/cuframes, ...)")
    p.add_argument("--cameras", default="",
                   help="comma-separated camera names (as in the service's config); default: "
                        "every camera found in the runtime directory, also those added later")
    p.add_argument("--name", default="detector",
                   help="consumer name in the rings' tables and in Home Assistant (default detector)")
    p.add_argument("--cuda-device", type=int, default=0, help="GPU of the cuda rings (default 0)")
    p.add_argument("--no-torch", action="store_true", help="do not use torch (host rings only)")
    p.add_argument("--seconds", type=float, default=0,
                   help="exit after N seconds (default: run until SIGTERM/Ctrl-C)")
    p.add_argument("--mqtt", default="", metavar="HOST[:PORT]",
                   help="publish results to this MQTT broker (default: no MQTT)")
    p.add_argument("--mqtt-username", default="", help="default: $CUFRAMES_MQTT_USERNAME")
    p.add_argument("--mqtt-password-file", default="",
                   help="a file holding the password (default: $CUFRAMES_MQTT_PASSWORD)")
    p.add_argument("--mqtt-topic", default="", help="base topic (default cuframes/detector/<name>)")
    p.add_argument("--mqtt-interval", type=float, default=5.0,
                   help="seconds between published results (default 5)")
    p.add_argument("--discovery-prefix", default="homeassistant",
                   help="Home Assistant discovery prefix; empty: no discovery")
    p.add_argument("--log-interval", type=float, default=60.0,
                   help="seconds between status lines on stderr (default 60; 0: none)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = p.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,63}", args.name):
        p.error("--name: 1-63 characters of [A-Za-z0-9._-]")
    args.camera_filter = [c for c in (s.strip() for s in args.cameras.split(",")) if c]
    for c in args.camera_filter:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,59}", c):
            p.error(f"--cameras: bad camera name {c!r}")
    return args


def discover(runtime_dir: Optional[str]) -> list[str]:
    """The cameras with a live ring now: keys `cam-<name>` in the runtime directory."""
    try:
        keys = cuframes.list_publishers(runtime_dir)
    except cuframes.CuframesError as e:
        where = runtime_dir or os.environ.get("CUFRAMES_RUNTIME_DIR") or "the runtime directory"
        log.warning("cannot list %s: %s", where, e)
        return []
    return [k[len(RING_PREFIX):] for k in keys if k.startswith(RING_PREFIX)]


def fmt(v: float) -> str:
    """A value for the log and summary lines; "-" before the first frame has given one."""
    return "-" if v != v else f"{v:.4f}"


def summary_line(s: dict[str, Any]) -> str:
    return (f"summary camera={s['camera']} key={s['key']} frames={s['frames']} fps={s['fps']:.2f} "
            f"seq={s['seq']} luma={fmt(s['luma'])} edges={fmt(s['edges'])} "
            f"motion={fmt(s['motion'])} memory={s['memory'] or '-'} "
            f"backend={s['backend'] or '-'} device={s['device'] or '-'} "
            f"connects={s['connects']} gaps={s['gaps']} errors={s['errors']}")


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    args.torch_cuda = False
    if torch is not None and not args.no_torch:
        args.torch_cuda = torch.cuda.is_available()
    log.info("cuframes %s; frames on the GPU: %s; host frames: numpy", cuframes.__version__,
             f"torch {torch.__version__} on cuda:{args.cuda_device}" if args.torch_cuda
             else "not supported here (no torch with CUDA)")

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    mqtt = Mqtt(args) if args.mqtt else None
    cameras: dict[str, Camera] = {}

    def start(name: str) -> None:
        if name not in cameras:
            log.info("camera %s: starting (ring %s%s)", name, RING_PREFIX, name)
            cameras[name] = Camera(name, args, stop)
            cameras[name].start()

    for name in args.camera_filter:  # named cameras: waited for even before they exist
        start(name)
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
    next_scan = next_mqtt = next_log = time.monotonic()
    try:
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if not args.camera_filter and now >= next_scan:
                for name in discover(args.runtime_dir):
                    start(name)
                next_scan = now + 1.0
            if mqtt is not None and now >= next_mqtt:
                for cam in list(cameras.values()):
                    mqtt.publish(cam.snapshot())
                next_mqtt = now + args.mqtt_interval
            if args.log_interval > 0 and now >= next_log:
                for cam in list(cameras.values()):
                    s = cam.snapshot()
                    log.info("%s: %s, %d frames, %.1f fps, luma %s edges %s motion %s",
                             s["camera"], "connected" if s["connected"] else "waiting",
                             s["frames"], s["fps_now"], fmt(s["luma"]), fmt(s["edges"]),
                             fmt(s["motion"]))
                next_log = now + args.log_interval
            due = [t for t in (None if args.camera_filter else next_scan,
                               next_mqtt if mqtt is not None else None,
                               next_log if args.log_interval > 0 else None, deadline)
                   if t is not None]
            wake = min(due) if due else now + 1.0
            stop.wait(max(0.01, min(wake - time.monotonic(), 1.0)))
    finally:
        stop.set()
        for cam in cameras.values():
            cam.join(timeout=10)
        if mqtt is not None:
            for cam in cameras.values():
                mqtt.publish(cam.snapshot())
            mqtt.close()
        for name in sorted(cameras):
            print(summary_line(cameras[name].snapshot()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
