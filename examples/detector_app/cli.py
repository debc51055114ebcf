"""The command line and the main loop: options, the cameras found (or named), the periodic log
and MQTT results, and the summary lines at exit."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import Any, Optional

import cuframes

from . import __doc__ as PACKAGE_DOC
from .base import RING_PREFIX, SetupError, log, torch
from .camera import Camera
from .detection import Batcher, Detection
from .model import MODEL_NAME
from .mqtt import Mqtt


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=PACKAGE_DOC.split("\n\n")[0],
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
    g = p.add_argument_group("detection (torchvision's SSDlite320 MobileNetV3, see "
                             "examples/detector_app/model.py)")
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
                   help="on a GPU, replay the model's backbone and heads as CUDA graphs: the "
                        "same detections, far less CPU per batch (default on; --no-cuda-graphs: "
                        "the model's own forward). The model is set up on the GPU, and the "
                        "graphs captured, at start, before any camera starts")
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
        detection.prepare()  # the GPU's graphs, before any camera thread starts

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
