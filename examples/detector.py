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

With --detect (or --weights) it also runs an object detector: torchvision's SSDlite320
MobileNetV3-Large (see "detection" below for how it is fed). The newest frame of every camera
goes into one batch per device (the cuda rings' frames on the GPU in float16, on one CUDA
stream; host rings' frames on the CPU in float32), made by cuframes.preprocess in one pass;
the boxes come back in each frame's pixels through batch.to_frame. Per camera it reports the
objects scoring at least --score-threshold in its latest batched frame (MQTT: `objects`, and
`labels` by COCO class), per device the throughput, the model's time per batch and the latency
from a frame's publication to its detections (MQTT `<base>/detection/<cuda|cpu>`, Home
Assistant sensors). The summary lines gain detected=N skipped=N detected_seq=S objects=N
width=W height=H box=x1,y1,x2,y2 tbox=x1,y1,x2,y2 (the best detection in frame and in tensor
pixels), and a line `summary-detection device=D batches=N frames=N errors=N` per device.
--weights default takes torchvision's pretrained COCO weights (downloaded once), --weights FILE
a state dict; without --weights the weights are random (nothing is detected: for throughput).

Usage:
  detector.py [--runtime-dir DIR] [--cameras a,b] [--mqtt HOST[:PORT]] [--seconds N]
              [--detect] [--weights default|FILE] [--score-threshold 0.5]

The MQTT user and password come from --mqtt-username and the environment (CUFRAMES_MQTT_USERNAME,
CUFRAMES_MQTT_PASSWORD) or --mqtt-password-file; a password is never taken on the command line.
"""

from __future__ import annotations

import argparse
import contextlib
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
    width: int = 0  # of the ring's frames
    height: int = 0


class Camera(threading.Thread):
    """Subscribes to one ring and processes its frames, reconnecting until stopped."""

    BACKOFF_MIN = 0.1
    BACKOFF_MAX = 5.0

    def __init__(self, name: str, args: argparse.Namespace, stop: threading.Event,
                 detection: Optional["Detection"] = None) -> None:
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
        kind = "cuda" if frame.memory == "cuda" else "cpu"
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


# ---- detection (--detect) ------------------------------------------------------------------
#
# The model is torchvision's SSDlite320 MobileNetV3-Large, used as torchvision builds it
# (backbone, heads, anchors, box coder, weights). Two of its parts are set aside, on purpose:
#
#   model.transform   torchvision's GeneralizedRCNNTransform normalises each image ((x - 0.5) /
#                     0.5) and resizes it to 320x320, image by image. cuframes.preprocess already
#                     does both, for the whole batch in one kernel, with the model's own mean and
#                     std (read from the transform) and its own input size (320x320, stretched
#                     like torchvision does; --resize letterbox keeps the aspect instead). So the
#                     transform becomes `PreparedInput`: the batch goes in as it is, and boxes come
#                     out in tensor pixels (320x320), which `batch.to_frame` maps to each frame.
#   postprocess       torchvision's SSD.postprocess_detections loops over every image and each of
#                     the 90 classes (a GPU sync and a dozen small kernels each: about 90 syncs per
#                     image). `batched_postprocess` computes the same detections for the whole
#                     batch at once (the same softmax, box decoding, clipping, per-class top-k,
#                     score threshold, class-wise NMS and detections per image);
#                     tests/gpu/test_detector_gpu.py and tests/deploy/test_detector_torch.py
#                     compare the two. --postprocess torchvision uses the model's own.
#
#   forward           on a GPU (unless --no-cuda-graphs), the backbone and the heads (convolutions
#                     only: fixed shapes) run as a CUDA graph per batch size bucket (1, 2, 4,
#                     ... --max-batch), the batch padded to its bucket: one launch instead of
#                     ~200 small kernels launched from Python (which hold the GIL the camera
#                     threads need). Anchors depend only on the input size and are computed
#                     once. On the H200 the model's time per batch of 8 fell from 14 to 4 ms,
#                     with the same detections (tests/deploy/postprocess_check.py). Every graph
#                     is captured at start-up, before any camera thread starts: a capture fails
#                     while another thread works on CUDA's legacy default stream (seen with
#                     --feed host-opencv when captures were made on the first batch of each
#                     size). If a capture fails anyway, the model's own forward is used, and the
#                     log says so.
#
# The model's score threshold is --score-threshold (torchvision's default, 0.001, is for
# measuring mAP): non-maximum suppression only ever removes a box for a higher-scored one, so the
# detections above the threshold are the same as with 0.001, found with far less work.

MODEL_NAME = "ssdlite320_mobilenet_v3_large"
PAD_VALUE = 114  # the letterbox border, as cuframes.preprocess's default
# (said in words: the image's tests hold this file to naming no download command)
INSTALL_HINT = ("install the PyPI packages torch and torchvision with pip (pytorch.org lists the "
                "builds for each CUDA), or on Debian 12 the apt package python3-torchvision (CPU "
                "only)")


class SetupError(Exception):
    """A problem with the detection setup (torchvision, weights), said to the user."""


def first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""


def load_model(weights: str, score_threshold: float) -> tuple[Any, list[str]]:
    """torchvision's SSDlite320 on the CPU, in eval mode, and its class names. weights: "" (random
    init, seeded), "default" (torchvision's pretrained COCO weights, downloaded) or a file (a
    state dict saved with torch.save(model.state_dict(), FILE))."""
    if torch is None:
        raise SetupError(f"--detect needs PyTorch and torchvision, and torch is missing: "
                         f"{INSTALL_HINT}")
    try:
        import torchvision  # noqa: F401
        from torchvision.models.detection import (SSDLite320_MobileNet_V3_Large_Weights,
                                                  ssdlite320_mobilenet_v3_large)
    except ImportError as e:
        raise SetupError(f"--detect needs torchvision ({e}): {INSTALL_HINT}") from None
    categories = list(SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.meta["categories"])
    kw = {"score_thresh": score_threshold}
    if weights == "default":
        try:
            model = ssdlite320_mobilenet_v3_large(weights="DEFAULT", **kw)
        except Exception as e:
            raise SetupError(
                f"--weights default: cannot get torchvision's pretrained {MODEL_NAME} weights "
                f"({type(e).__name__}: {first_line(e)}); "
                "without internet give --weights FILE (a state dict), or no --weights (random "
                "weights)") from None
        return model.eval(), categories
    torch.manual_seed(0)  # random weights: the same ones every run
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, **kw)
    if weights:
        if not os.path.isfile(weights):
            raise SetupError(f"--weights {weights}: no such file")
        try:
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
            except TypeError:  # a torch without weights_only
                state = torch.load(weights, map_location="cpu")
        except Exception as e:
            raise SetupError(f"--weights {weights}: not a PyTorch state dict "
                             f"({type(e).__name__}: {first_line(e)})") from None
        if not isinstance(state, dict):
            raise SetupError(f"--weights {weights}: holds a {type(state).__name__}, not a state "
                             f"dict of {MODEL_NAME}")
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            lines = str(e).strip().splitlines()
            raise SetupError(f"--weights {weights}: not a state dict of {MODEL_NAME}: "
                             + " ".join(ln.strip() for ln in lines[:3])[:400]) from None
    return model.eval(), categories


def batched_postprocess(model: Any, head_outputs: dict[str, Any], image_anchors: list[Any],
                        image_shapes: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """torchvision's SSD.postprocess_detections for a whole batch at once: per image and class
    the top `topk_candidates` anchors scoring above `score_thresh`, class-wise non-maximum
    suppression, the best `detections_per_img` per image."""
    from torchvision.ops import nms
    scores = torch.softmax(head_outputs["cls_logits"], dim=-1)[:, :, 1:]  # (N, A, C-1)
    n, a, c = scores.shape
    reg = head_outputs["bbox_regression"]
    anchors = torch.stack(image_anchors)
    boxes = model.box_coder.decode_single(reg.reshape(-1, 4), anchors.reshape(-1, 4)).view(n, a, 4)
    h, w = image_shapes[0]  # every image of the batch has the tensor's size
    boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                         boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], dim=-1)
    top, idx = scores.transpose(1, 2).topk(min(model.topk_candidates, a), dim=2)  # (N, C-1, k)
    img_i, cls_i, k_i = (top > model.score_thresh).nonzero(as_tuple=True)
    cand_scores = top[img_i, cls_i, k_i]
    cand_boxes = boxes[img_i, idx[img_i, cls_i, k_i]]
    labels = cls_i + 1
    out: list[dict[str, Any]] = []
    if cand_scores.numel() > 20000:  # pathological scores: the memory of one NMS over all
        from torchvision.ops import batched_nms
        for i in range(n):
            m = img_i == i
            b, s, lab = cand_boxes[m], cand_scores[m], labels[m]
            keep = batched_nms(b.double(), s.double(), lab, model.nms_thresh)[
                :model.detections_per_img]
            out.append({"boxes": b[keep], "scores": s[keep], "labels": lab[keep]})
        return out
    # One NMS for every (image, class): each group moved apart by the coordinate trick
    # (torchvision's batched_nms), in float64 so the offsets cost no precision.
    group = img_i * (c + 1) + labels
    b64 = cand_boxes.double()
    offset = group.double() * (b64.max() + 1 if b64.numel() else 1.0)
    keep = nms(b64 + offset[:, None], cand_scores.double(), model.nms_thresh)  # by score, desc
    kimg = img_i[keep]
    order = torch.sort(kimg, stable=True).indices  # by image, scores still descending
    keep, kimg = keep[order], kimg[order]
    counts = torch.bincount(kimg, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(keep.numel(), device=keep.device) - starts[kimg]
    sel = rank < model.detections_per_img
    keep, kimg = keep[sel], kimg[sel]
    for i, cnt in enumerate(torch.bincount(kimg, minlength=n).tolist()):
        k = keep[:cnt]
        keep = keep[cnt:]
        out.append({"boxes": cand_boxes[k], "scores": cand_scores[k], "labels": labels[k]})
    return out


def prepare_model(model: Any, device: Any, half: bool, postprocess: str) -> Any:
    """A copy of the CPU model on `device` that takes a preprocessed batch as it is."""
    import copy
    import types

    from torchvision.models.detection.image_list import ImageList

    class PreparedInput(torch.nn.Module):
        """Stands in for GeneralizedRCNNTransform: the batch is already normalised and sized."""

        def forward(self, images: Any, targets: Any = None) -> Any:
            n, _, h, w = images.shape
            return ImageList(images, [(int(h), int(w))] * int(n)), targets

        def postprocess(self, result: Any, image_shapes: Any, original_sizes: Any) -> Any:
            return result  # boxes stay in tensor pixels

    m = copy.deepcopy(model)
    m.transform = PreparedInput()
    if postprocess == "batched":
        m.postprocess_detections = types.MethodType(batched_postprocess, m)
    m = m.to(device)
    return m.half() if half else m


class GraphedSSD:
    """The prepared model's forward on a GPU, its backbone and heads replayed as CUDA graphs (see
    the comment above MODEL_NAME); the same detections as model(x).

    Every graph is captured by capture(), before the cameras start: a capture fails when another
    thread uses CUDA's legacy default stream meanwhile, so none is made once frames flow. A batch
    larger than max_batch runs in parts of max_batch. If a capture fails, the model's own forward
    runs from then on, and the log says so."""

    def __init__(self, model: Any, stream: Any, max_batch: int) -> None:
        self.model = model
        self.stream = stream
        self.max_batch = max_batch
        # (bucket, h, w) -> (graph, static input, head outputs, anchors)
        self.graphs: dict[tuple[int, int, int], tuple[Any, Any, dict[str, Any], list[Any]]] = {}
        self.failed = ""  # why a capture failed: the model's own forward from then on

    def _core(self, x: Any) -> tuple[dict[str, Any], list[Any]]:
        features = list(self.model.backbone(x).values())
        return self.model.head(features), features

    def buckets(self) -> list[int]:
        """The batch sizes captured: 1, 2, 4, ... up to max_batch (itself included)."""
        out, b = [], 1
        while b < self.max_batch:
            out.append(b)
            b *= 2
        return out + [self.max_batch]

    def capture(self, h: int, w: int, dtype: Any) -> bool:
        """Captures a graph per bucket for inputs of h x w. False (and self.failed says why) if
        one fails: then the model's own forward is used."""
        try:
            for n in self.buckets():
                self.graphs[(n, h, w)] = self._capture_one(n, h, w, dtype)
            return True
        except Exception as e:  # noqa: BLE001 (any capture failure: fall back, say why)
            self.graphs.clear()
            self.failed = first_line(e)
            log.warning("CUDA graphs: a capture failed (%s); the model's own forward is used",
                        self.failed)
            return False

    def _capture_one(self, n: int, h: int, w: int, dtype: Any) -> tuple[Any, Any,
                                                                       dict[str, Any], list[Any]]:
        from torchvision.models.detection.image_list import ImageList
        x = torch.zeros((n, 3, h, w), dtype=dtype, device=self.stream.device)
        side = torch.cuda.Stream(device=self.stream.device)
        side.wait_stream(self.stream)
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up outside the capture (cuDNN picks its algorithms)
                _, features = self._core(x)
        self.stream.wait_stream(side)
        anchors = self.model.anchor_generator(ImageList(x, [(h, w)] * n), features)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the camera threads may use CUDA meanwhile (their releases, --measure)
        with torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
            head, _ = self._core(x)
        self.stream.wait_stream(side)
        return graph, x, head, anchors

    def __call__(self, x: Any) -> list[dict[str, Any]]:
        n, _, h, w = (int(v) for v in x.shape)
        if n > self.max_batch:
            return [d for i in range(0, n, self.max_batch)
                    for d in self(x[i:i + self.max_batch])]
        bucket = next(b for b in self.buckets() if b >= n)
        entry = self.graphs.get((bucket, h, w))
        if entry is None:  # not captured (a failed capture, or an input size not foreseen)
            return self.model(x)
        graph, static_x, head, anchors = entry
        static_x[:n].copy_(x)
        if n < bucket:
            static_x[n:].zero_()
        graph.replay()
        outputs = {k: v[:n] for k, v in head.items()}
        return self.model.postprocess_detections(outputs, anchors[:n], [(h, w)] * n)


@dataclass
class Item:
    """A camera's newest frame waiting for the next batch (or, fed the Frigate way, its picture
    already on the host)."""
    cam: str
    seq: int
    publish_ns: int  # CLOCK_MONOTONIC, like time.monotonic_ns()
    frame: Any = None  # the held CuframesFrame (feed cuframes)
    image: Any = None  # (H, W, 3) uint8 RGB, letterboxed (feed host-opencv)
    transform: tuple[float, float, float, float] = (1.0, 1.0, 0.0, 0.0)
    frame_size: tuple[int, int] = (0, 0)  # (width, height)

    def drop(self) -> None:
        if self.frame is not None:
            self.frame.release()
            self.frame = None


def fit(w: int, h: int, size: tuple[int, int], resize: str) -> tuple[float, float, int, int,
                                                                     int, int]:
    """Letterbox/stretch geometry as cuframes.preprocess computes it (docs/python.md): scale_x,
    scale_y, pad_x, pad_y, content width and height, for a w x h frame into size (H, W)."""
    oh, ow = size
    if resize == "stretch":
        return ow / w, oh / h, 0, 0, ow, oh
    s = min(ow / w, oh / h)
    cw, ch = round(w * s), round(h * s)
    return cw / w, ch / h, (ow - cw) // 2, (oh - ch) // 2, cw, ch


def host_opencv_image(frame: Any, stream: Any, size: tuple[int, int], resize: str,
                      pad: int) -> tuple[Any, tuple[float, float, float, float]]:
    """Frigate's way: the NV12 frame copied to host memory, OpenCV cvtColor and resize, a
    letterbox canvas on the host. Returns the (H, W, 3) RGB image and its transform."""
    import cv2
    if frame.format != cuframes.PixelFormat.NV12:
        raise RuntimeError(f"--feed host-opencv reads NV12 frames only, not {frame.format.name}")
    if frame.memory == "cuda":
        with torch.cuda.stream(stream):
            nv12 = torch.from_dlpack(frame.yuv).cpu().numpy()  # download (waits for it)
    else:
        nv12 = np.ascontiguousarray(np.from_dlpack(frame.yuv))
    rgb = cv2.cvtColor(nv12, cv2.COLOR_YUV2RGB_NV12)
    sx, sy, px, py, cw, ch = fit(frame.width, frame.height, size, resize)
    small = cv2.resize(rgb, (cw, ch), interpolation=cv2.INTER_LINEAR)
    if (cw, ch) == (size[1], size[0]):
        return small, (sx, sy, px, py)
    canvas = np.full((size[0], size[1], 3), pad, np.uint8)
    canvas[py:py + ch, px:px + cw] = small
    return canvas, (sx, sy, float(px), float(py))


def to_frame(boxes: Any, transform: tuple[float, float, float, float],
             frame_size: tuple[int, int]) -> Any:
    """CuframesBatch.to_frame for the host-opencv feed (the same formula)."""
    sx, sy, px, py = transform
    out = boxes * 1.0
    out[:, 0::2] = ((out[:, 0::2] - px) / sx).clip(0, frame_size[0])
    out[:, 1::2] = ((out[:, 1::2] - py) / sy).clip(0, frame_size[1])
    return out


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


class Detection:
    """--detect: the model (loaded once, on the CPU) and a Batcher per device, started when a
    camera first offers a frame of that device."""

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
        """On a GPU, with CUDA graphs (the default): the GPU's batcher is set up and its graphs
        captured before any camera starts (see GraphedSSD)."""
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
    DETECT_SENSORS = [  # --detect, per camera
        ("objects", "Objects", None, "measurement", None),
    ]
    DETECTION_SENSORS = [  # --detect, per device the model runs on
        ("fps", "Detection throughput", "fps", "measurement", None),
        ("inference_ms", "Detection inference time", "ms", "measurement", None),
        ("latency_ms", "Detection latency", "ms", "measurement", "diagnostic"),
        ("batch_size", "Detection batch size", None, "measurement", "diagnostic"),
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
        self.kinds: set[str] = set()  # --detect: the devices the model runs on
        self.detect = bool(args.detect)
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
            kinds = sorted(self.kinds)
        client.publish(f"{self.base}/status", "online", qos=1, retain=True)
        if self.prefix:
            client.subscribe(f"{self.prefix}/status", qos=1)
            for cam in cams:
                self._announce(cam)
            for kind in kinds:
                self._announce_detection(kind)

    def _on_disconnect(self, client: Any, userdata: Any, *rest: Any) -> None:
        with self.lock:
            self.connected = False

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic == f"{self.prefix}/status" and msg.payload == b"online":
            with self.lock:
                cams = sorted(self.cameras)
                kinds = sorted(self.kinds)
            for cam in cams:  # Home Assistant restarted: announce again
                self._announce(cam)
            for kind in kinds:
                self._announce_detection(kind)

    def _announce(self, cam: str) -> None:
        sensors = self.SENSORS + (self.DETECT_SENSORS if self.detect else [])
        self._configs(ha_id(cam), cam, f"{self.base}/{cam}", sensors)

    def _announce_detection(self, kind: str) -> None:
        self._configs(f"detection_{kind}", f"Detection ({kind})", f"{self.base}/detection/{kind}",
                      [(v, label.replace("Detection ", "", 1), u, sc, ec)
                       for v, label, u, sc, ec in self.DETECTION_SENSORS])

    def _configs(self, oid: str, name: str, state_topic: str,
                 sensors: list[tuple[str, str, Optional[str], str, Optional[str]]]) -> None:
        """Home Assistant discovery: a sensor per value of the JSON at state_topic."""
        device = {"identifiers": [f"cuframes_detector_{self.node}"],
                  "name": f"cuframes detector {self.name}", "manufacturer": "cuframes",
                  "model": "examples/detector.py"}
        for value, label, unit, state_class, category in sensors:
            uid = f"cuframes_detector_{self.node}_{oid}_{value}"
            cfg: dict[str, Any] = {
                "name": f"{name} {label}", "unique_id": uid,
                "default_entity_id": f"sensor.{uid}",
                "state_topic": state_topic,
                "value_template": f"{{{{ value_json.{value} }}}}",
                "availability_topic": f"{self.base}/status", "state_class": state_class,
                "device": device, "origin": {"name": "cuframes detector example"}}
            if unit:
                cfg["unit_of_measurement"] = unit
            if category:
                cfg["entity_category"] = category
            self.client.publish(f"{self.prefix}/sensor/cuframes_detector_{self.node}/{oid}_{value}"
                                "/config", json.dumps(cfg), qos=1, retain=True)

    def publish_detection(self, kind: str, snap: dict[str, Any]) -> None:
        """--detect: throughput, inference time per batch, latency and batch size of a device."""
        with self.lock:
            new = kind not in self.kinds
            self.kinds.add(kind)
            connected = self.connected
        if not connected:
            return
        if new and self.prefix:
            self._announce_detection(kind)
        payload = {k: snap[k] for k in ("device", "batches", "frames", "batch_size", "errors")}
        for k in ("fps", "inference_ms", "preprocess_ms", "latency_ms"):
            v = snap[k]
            payload[k] = None if v != v else round(v, 3)
        self.client.publish(f"{self.base}/detection/{kind}", json.dumps(payload), qos=0,
                            retain=True)

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
        d = snap.get("detect")
        if d is not False:  # --detect: the latest batched frame's detections
            d = d or {}
            payload.update(objects=d.get("objects", 0), labels=d.get("labels", {}),
                           detected=d.get("frames", 0), detected_seq=d.get("seq", 0))
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
    p.add_argument("--no-measure", action="store_true",
                   help="skip the luma/edges/motion measurements (only --detect's work)")
    g = p.add_argument_group("detection (torchvision's SSDlite320 MobileNetV3, see the "
                             "detection section of this file)")
    g.add_argument("--detect", action="store_true",
                   help="run the model on the newest frame of every camera, batched per device")
    g.add_argument("--weights", default="", metavar="default|FILE",
                   help="'default': torchvision's pretrained COCO weights (downloaded once into "
                        "torch's cache); FILE: a state dict; none: random weights, for "
                        "throughput tests. Implies --detect")
    g.add_argument("--score-threshold", type=float, default=0.5,
                   help="detections scoring at least this are counted (default 0.5)")
    g.add_argument("--resize", default="stretch", choices=["stretch", "letterbox"],
                   help="how frames fit the model's 320x320 input: stretch (default, as "
                        "torchvision's own transform does) or letterbox (keeps the aspect)")
    g.add_argument("--batch-window", type=float, default=33.0, metavar="MS",
                   help="a batch waits at most this long after its first frame for the other "
                        "cameras' (default 33: one frame at 30 fps)")
    g.add_argument("--postprocess", default="batched", choices=["batched", "torchvision"],
                   help="the model's box post-processing: for the whole batch at once (default) "
                        "or torchvision's own, image by image and class by class")
    g.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=True,
                   help="on a GPU, replay the model's backbone and heads as CUDA graphs, "
                        "captured at start-up: the same detections, far less CPU per batch "
                        "(default on; --no-cuda-graphs: the model's own forward)")
    g.add_argument("--max-batch", type=int, default=32, metavar="N",
                   help="with CUDA graphs: graphs for batches of 1, 2, 4, ... N frames; a "
                        "larger batch runs in parts of N (default 32)")
    g.add_argument("--feed", default="cuframes", choices=["cuframes", "host-opencv"],
                   help="cuframes: cuframes.preprocess on the frames in the ring (default); "
                        "host-opencv: Frigate's way (copy to host, OpenCV, upload), to compare")
    g.add_argument("--stats-json", default="", metavar="FILE",
                   help="at exit, write every batch's sizes, times and latencies there")
    args = p.parse_args(argv)
    if args.weights:
        args.detect = True
    args.size = (320, 320)  # SSDlite320's input (height, width)
    if not 0 <= args.score_threshold <= 1:
        p.error("--score-threshold: 0..1")
    if args.batch_window < 0:
        p.error("--batch-window: >= 0")
    if not 1 <= args.max_batch <= 256:
        p.error("--max-batch: 1..256")
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


def fmt_box(b: Optional[list[float]]) -> str:
    return "-" if b is None else ",".join(f"{v:.2f}" for v in b)


def summary_line(s: dict[str, Any]) -> str:
    line = (f"summary camera={s['camera']} key={s['key']} frames={s['frames']} "
            f"fps={s['fps']:.2f} seq={s['seq']} luma={fmt(s['luma'])} edges={fmt(s['edges'])} "
            f"motion={fmt(s['motion'])} memory={s['memory'] or '-'} "
            f"backend={s['backend'] or '-'} device={s['device'] or '-'} "
            f"connects={s['connects']} gaps={s['gaps']} errors={s['errors']}")
    d = s.get("detect")
    if d is not False:  # --detect: what the model saw in this camera's latest batched frame
        d = d or {}
        line += (f" detected={d.get('frames', 0)} skipped={d.get('skipped', 0)} "
                 f"detected_seq={d.get('seq', 0)} objects={d.get('objects', 0)} "
                 f"width={s.get('width', 0)} height={s.get('height', 0)} "
                 f"box={fmt_box(d.get('box'))} tbox={fmt_box(d.get('tbox'))}")
    return line


def detection_line(d: dict[str, Any]) -> str:
    return (f"summary-detection device={d['device']} batches={d['batches']} frames={d['frames']} "
            f"errors={d['errors']}")


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
    detection: Optional[Detection] = None
    if args.detect:
        try:
            detection = Detection(args, stop)
        except SetupError as e:
            print(f"detector.py: error: {e}", file=sys.stderr)
            return 2

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if detection is not None:
        detection.prepare()
    mqtt = Mqtt(args) if args.mqtt else None
    cameras: dict[str, Camera] = {}

    def start(name: str) -> None:
        if name not in cameras:
            log.info("camera %s: starting (ring %s%s)", name, RING_PREFIX, name)
            cameras[name] = Camera(name, args, stop, detection)
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
                for b in detection.all() if detection is not None else []:
                    mqtt.publish_detection(b.kind, b.snapshot())
                next_mqtt = now + args.mqtt_interval
            if args.log_interval > 0 and now >= next_log:
                for cam in list(cameras.values()):
                    s = cam.snapshot()
                    log.info("%s: %s, %d frames, %.1f fps, luma %s edges %s motion %s",
                             s["camera"], "connected" if s["connected"] else "waiting",
                             s["frames"], s["fps_now"], fmt(s["luma"]), fmt(s["edges"]),
                             fmt(s["motion"]))
                for b in detection.all() if detection is not None else []:
                    d = b.snapshot()
                    log.info("detection on %s: %d batches, %.1f frames/s, last batch %d frames "
                             "(preprocess %.2f ms, model %.2f ms), latency p50 %.1f ms",
                             d["device"], d["batches"], d["fps"], d["batch_size"],
                             d["preprocess_ms"], d["inference_ms"], d["latency_ms"])
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
        batchers = detection.all() if detection is not None else []
        for b in batchers:
            b.join(timeout=30)
        if mqtt is not None:
            for cam in cameras.values():
                mqtt.publish(cam.snapshot())
            for b in batchers:
                mqtt.publish_detection(b.kind, b.snapshot())
            mqtt.close()
        for name in sorted(cameras):
            print(summary_line(cameras[name].snapshot()), flush=True)
        for b in batchers:
            print(detection_line(b.snapshot()), flush=True)
        if args.stats_json:
            write_stats(args, cameras, batchers)
    return 0


def write_stats(args: argparse.Namespace, cameras: dict[str, Camera],
                batchers: list[Batcher]) -> None:
    """--stats-json: the cameras' summaries and every batch (for bench/detector_bench.py)."""
    doc = {"model": MODEL_NAME, "weights": args.weights or "random", "feed": args.feed,
           "resize": args.resize, "size": list(args.size),
           "cameras": {n: cameras[n].snapshot() for n in sorted(cameras)},
           "detection": {b.kind: dict(b.snapshot(), last_error=b.last_error,
                                      batches_list=[{"t_ns": t, "n": n, "preprocess_ms": p,
                                                     "inference_ms": i, "latency_ms": lat}
                                                    for t, n, p, i, lat in b.records])
                         for b in batchers}}
    tmp = args.stats_json + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, default=lambda o: None if o != o else str(o))
    os.replace(tmp, args.stats_json)


if __name__ == "__main__":
    sys.exit(main())
