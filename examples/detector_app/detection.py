"""--detect: the model loaded once (Detection) and, per device the frames are on (the GPU for
cuda rings, the CPU for host rings), a thread that batches every camera's newest frame and runs
the model on the batch (Batcher)."""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

import cuframes

from .base import SetupError, log, torch
from .feeds import Item, to_frame
from .graphs import GraphedSSD
from .model import MODEL_NAME, load_model, prepare_model


@dataclass
class CamDetections:
    """The latest detections of one camera."""
    frames: int = 0  # frames that went through the model
    skipped: int = 0  # frames replaced by a newer one before a batch took them
    seq: int = 0
    objects: int = 0  # detections scoring >= --score-threshold in the latest frame
    labels: dict[str, int] = field(default_factory=dict)
    box: Optional[list[float]] = None  # the best detection: frame pixels
    tbox: Optional[list[float]] = None  # the same in tensor pixels
    score: float = float("nan")


class Batcher(threading.Thread):
    """Batches the newest frame of every camera of one device (the GPU or the CPU) and runs the
    model on them: one batch at a time, on one CUDA stream. A batch goes as soon as every camera
    that recently had frames has one waiting, or --batch-window ms after its first frame came."""

    ACTIVE_NS = 1_000_000_000  # a camera with no frame for this long is not waited for

    def __init__(self, kind: str, args: argparse.Namespace, stop: threading.Event,
                 base: Any, categories: list[str]) -> None:
        super().__init__(name=f"detect-{kind}", daemon=True)
        self.kind = kind  # "cuda" or "cpu"
        self.args = args
        self.stop_ev = stop
        self.base = base
        self.categories = categories
        self.cv = threading.Condition()
        self.pending: dict[str, Item] = {}
        self.last_offer: dict[str, int] = {}
        self.lock = threading.Lock()
        self.cams: dict[str, CamDetections] = {}
        self.batches = 0
        self.frames = 0
        self.errors = 0
        self.last_error = ""
        self.window: deque[tuple[int, int, float, float]] = deque()  # (t_ns, n, infer ms, lat)
        self.records: list[tuple[int, int, float, float, list[float]]] = []  # --stats-json
        self.last_batch: tuple[int, float, float] = (0, float("nan"), float("nan"))  # n, ms
        self.model: Any = None
        self.stream: Any = None
        self.device = "cpu"
        self.ready = threading.Event()  # the model is set up (or failed to be)

    # -- camera threads --
    def offer(self, item: Item) -> None:
        """A camera's newest frame for the next batch; the one it replaces is released."""
        with self.cv:
            old = self.pending.get(item.cam)
            self.pending[item.cam] = item
            self.last_offer[item.cam] = time.monotonic_ns()
            self.cv.notify()
        if old is not None:
            old.drop()
            with self.lock:
                self.cams.setdefault(item.cam, CamDetections()).skipped += 1

    # -- the batch loop --
    def _take(self) -> list[Item]:
        window_ns = int(self.args.batch_window * 1e6)
        with self.cv:
            while not self.stop_ev.is_set():
                if self.pending:
                    now = time.monotonic_ns()
                    active = [c for c, t in self.last_offer.items() if now - t < self.ACTIVE_NS]
                    first = min(self.last_offer[c] for c in self.pending)
                    if all(c in self.pending for c in active) or now - first >= window_ns:
                        items = [self.pending[c] for c in sorted(self.pending)]
                        self.pending.clear()
                        return items
                    self.cv.wait(max(0.0005, (first + window_ns - now) / 1e9))
                else:
                    self.cv.wait(0.2)
            items = list(self.pending.values())
            self.pending.clear()
        for it in items:
            it.drop()
        return []

    def run(self) -> None:
        try:
            if self.kind == "cuda":
                dev = torch.device("cuda", self.args.cuda_device)
                self.stream = torch.cuda.Stream(device=dev)
                self.device = f"cuda:{self.args.cuda_device}"
                self.model = prepare_model(self.base, dev, half=True,
                                           postprocess=self.args.postprocess)
                if self.args.cuda_graphs:
                    graphed = GraphedSSD(self.model, self.stream, self.args.max_batch)
                    t = time.monotonic()
                    with torch.inference_mode():
                        if graphed.capture(self.args.size[0], self.args.size[1], torch.float16):
                            log.info("CUDA graphs: batches of %s captured in %.1f s",
                                     ", ".join(map(str, graphed.buckets())),
                                     time.monotonic() - t)
                    self.model = graphed
            else:
                torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
                self.model = prepare_model(self.base, torch.device("cpu"), half=False,
                                           postprocess=self.args.postprocess)
            tf = self.base.transform
            self.mean = tuple(float(v) for v in tf.image_mean)
            self.std = tuple(float(v) for v in tf.image_std)
            log.info("detection on %s: %s (%s weights), batches of up to every camera, %s %dx%d, "
                     "%s postprocess", self.device, MODEL_NAME, self.args.weights or "random",
                     self.args.resize, self.args.size[1], self.args.size[0], self.args.postprocess)
        except Exception as e:
            self._error(f"cannot set the model up on {self.kind}: {e!r}")
            log.exception("detection on %s", self.kind)
            return
        finally:
            self.ready.set()
        while not self.stop_ev.is_set():
            items = self._take()
            if not items:
                continue
            try:
                self._batch(items)
            except Exception as e:  # reported; the next batch tries again
                self._error(f"batch of {len(items)} failed: {e!r}")
            finally:
                for it in items:
                    it.drop()

    def _error(self, msg: str) -> None:
        with self.lock:
            self.errors += 1
            repeated = self.last_error == msg
            self.last_error = msg
        (log.debug if repeated else log.warning)("detection %s: %s", self.kind, msg)

    def _batch(self, items: list[Item]) -> None:
        a = self.args
        t0 = time.perf_counter()
        ctx = (torch.cuda.stream(self.stream) if self.stream is not None
               else contextlib.nullcontext())
        with ctx, torch.inference_mode():
            batch = None
            if items[0].frame is not None:  # cuframes: one kernel, frames read in the ring
                batch = cuframes.preprocess(
                    [it.frame for it in items], a.size, resize=a.resize,
                    dtype="float16" if self.kind == "cuda" else "float32",
                    mean=self.mean, std=self.std, stream=self.stream)
                for it in items:
                    it.drop()  # ordered after the kernel on self.stream
                x = torch.from_dlpack(batch)
            else:  # host-opencv: upload the host pictures, convert and normalise on the device
                host = torch.from_numpy(np.stack([it.image for it in items]))
                dev = host.to(self.device)
                x = dev.permute(0, 3, 1, 2).to(torch.float16 if self.kind == "cuda"
                                               else torch.float32)
                mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
                std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
                x = ((x / 255 - mean) / std).contiguous()
            t1 = time.perf_counter()
            dets = self.model(x)
            # everything the report needs, in one copy to the host
            lens = [int(d["scores"].shape[0]) for d in dets]
            flat = torch.cat([torch.cat([d["boxes"].float(), d["scores"].float()[:, None],
                                         d["labels"].float()[:, None]], 1) for d in dets])
            flat = flat.cpu()
        t2 = time.perf_counter()
        done_ns = time.monotonic_ns()
        infer_ms = (t2 - t1) * 1e3
        lat = [(done_ns - it.publish_ns) / 1e6 for it in items]
        results = []
        for i, (it, rows) in enumerate(zip(items, torch.split(flat, lens))):
            keep = rows[rows[:, 4] >= a.score_threshold]
            tboxes = keep[:, :4]
            if batch is not None:
                fboxes = batch.to_frame(tboxes, i)
            else:
                fboxes = to_frame(tboxes, it.transform, it.frame_size)
            labels: dict[str, int] = {}
            for lab in keep[:, 5].tolist():
                name = self.categories[int(lab)] if int(lab) < len(self.categories) else str(lab)
                labels[name] = labels.get(name, 0) + 1
            best = int(keep[:, 4].argmax()) if keep.shape[0] else -1
            results.append((it, keep.shape[0], labels,
                            fboxes[best].tolist() if best >= 0 else None,
                            tboxes[best].tolist() if best >= 0 else None,
                            float(keep[best, 4]) if best >= 0 else float("nan")))
        with self.lock:
            self.batches += 1
            self.frames += len(items)
            for it, count, labels, box, tbox, score in results:
                c = self.cams.setdefault(it.cam, CamDetections())
                c.frames += 1
                c.seq, c.objects, c.labels, c.box, c.tbox, c.score = (it.seq, count, labels, box,
                                                                      tbox, score)
            for v in lat:
                self.window.append((done_ns, 1, infer_ms, v))
            cut = done_ns - 5_000_000_000
            while self.window and self.window[0][0] < cut:
                self.window.popleft()
            self.last_batch = (len(items), (t1 - t0) * 1e3, infer_ms)
            if a.stats_json:
                self.records.append((done_ns, len(items), (t1 - t0) * 1e3, infer_ms, lat))

    # -- reports --
    def cam_snapshot(self, cam: str) -> Optional[CamDetections]:
        with self.lock:
            c = self.cams.get(cam)
            return None if c is None else CamDetections(**vars(c))

    def snapshot(self) -> dict[str, Any]:
        """Throughput (frames/s), batches, inference ms and latency ms over the last 5 s."""
        with self.lock:
            now = time.monotonic_ns()
            w = [r for r in self.window if r[0] >= now - 5_000_000_000]
            span = (w[-1][0] - w[0][0]) / 1e9 if len(w) > 1 else 0.0
            lat = sorted(r[3] for r in w)
            nb = self.last_batch
            return {"device": self.device, "batches": self.batches, "frames": self.frames,
                    "fps": (len(w) / span) if span > 0 else 0.0,
                    "batch_size": nb[0], "preprocess_ms": nb[1], "inference_ms": nb[2],
                    "latency_ms": lat[len(lat) // 2] if lat else float("nan"),
                    "errors": self.errors}


def device_kind(memory: str) -> str:
    """The device the model runs on for a ring's frames: "cuda" for a cuda ring, else "cpu"."""
    return "cuda" if memory == "cuda" else "cpu"


class Detection:
    """--detect: the model (loaded once, on the CPU) and a Batcher per device, started when the
    first camera of that device offers a frame (the GPU's at start, by prepare(), with graphs)."""

    def __init__(self, args: argparse.Namespace, stop: threading.Event) -> None:
        self.args = args
        self.stop_ev = stop
        if args.feed == "host-opencv":
            try:
                import cv2  # noqa: F401
            except ImportError as e:
                raise SetupError(f"--feed host-opencv needs OpenCV ({e}): install the PyPI "
                                 "package opencv-python-headless with pip") from None
        self.model, self.categories = load_model(args.weights, args.score_threshold)
        self.lock = threading.Lock()
        self.batchers: dict[str, Batcher] = {}

    def batcher(self, kind: str) -> Batcher:
        with self.lock:
            b = self.batchers.get(kind)
            if b is None:
                b = self.batchers[kind] = Batcher(kind, self.args, self.stop_ev, self.model,
                                                  self.categories)
                b.start()
            return b

    def prepare(self) -> None:
        """At start, before any camera thread: on a GPU with CUDA graphs (the default), the GPU's
        batcher sets the model up and captures every graph (see model.py). Captured later, while
        other cameras already streamed, a capture failed on the H200 and poisoned the context."""
        if self.args.cuda_graphs and self.args.torch_cuda:
            b = self.batcher("cuda")
            while not b.ready.wait(0.1) and not self.stop_ev.is_set():
                pass

    def cam_snapshot(self, cam: str) -> Optional[CamDetections]:
        with self.lock:
            bs = list(self.batchers.values())
        for b in bs:
            c = b.cam_snapshot(cam)
            if c is not None:
                return c
        return None

    def all(self) -> list[Batcher]:
        with self.lock:
            return [self.batchers[k] for k in sorted(self.batchers)]
