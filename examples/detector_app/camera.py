"""One camera: a thread that subscribes to its ring, measures every newest frame, hands it to the
detection's batch of its device (--detect), and reconnects until stopped."""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

import cuframes

from .base import RING_PREFIX, log, torch
from .detection import Detection, device_kind
from .feeds import PAD_VALUE, Item, host_opencv_image
from .measure import measure_numpy, measure_torch


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
    width: int = 0  # of the ring's frames
    height: int = 0


class Camera(threading.Thread):
    """Subscribes to one ring and processes its frames, reconnecting until stopped."""

    BACKOFF_MIN = 0.1
    BACKOFF_MAX = 5.0

    def __init__(self, name: str, args: argparse.Namespace, stop: threading.Event,
                 detection: Optional[Detection] = None) -> None:
        super().__init__(name=f"cam-{name}", daemon=True)
        self.cam = name
        self.key = RING_PREFIX + name
        self.args = args
        self.stop_ev = stop
        self.detection = detection
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
                    "width": s.width, "height": s.height,
                    "gaps": s.gaps + s.cur_gaps, "errors": s.errors, "last_error": s.last_error,
                    "detect": self.detection is not None and self._detections()}

    def _detections(self) -> dict[str, Any]:
        """The latest detections of this camera (--detect); {} before its first batch."""
        c = self.detection.cam_snapshot(self.cam) if self.detection is not None else None
        return {} if c is None else vars(c)

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
                    self.stats.width, self.stats.height = sub.width, sub.height
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
            handed_over = False
            try:
                if self.args.no_measure:
                    self._record((float("nan"),) * 3, frame.seq, t_ns)
                elif frame.memory == "cuda":
                    prev = self._gpu(frame, prev, t_ns)
                else:
                    with self.lock:
                        self.stats.backend = "numpy"
                        self.stats.device = "cpu"
                    values, prev = measure_numpy(frame, prev)
                    self._record(values, frame.seq, t_ns)
                if self.detection is not None:
                    handed_over = self._offer(frame)
            finally:
                # the frame is released here (unless the next batch holds it now): at once for
                # host memory; for a cuda ring once the work queued on its streams has finished
                if not handed_over:
                    frame.release()
            with self.lock:
                self.stats.cur_gaps = sub.gap_count

    def _offer(self, frame: Any) -> bool:
        """--detect: the frame to the batch of its device. Returns whether the batcher holds it
        now (feed cuframes) or this thread is done with it (host-opencv: its picture went)."""
        assert self.detection is not None
        kind = device_kind(frame.memory)
        item = Item(self.cam, frame.seq, frame.publish_ns,
                    frame_size=(frame.width, frame.height))
        if self.args.feed == "host-opencv":
            item.image, item.transform = host_opencv_image(frame, self.stream, self.args.size,
                                                           self.args.resize, PAD_VALUE)
            self.detection.batcher(kind).offer(item)
            return False
        item.frame = frame
        self.detection.batcher(kind).offer(item)
        return True

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
