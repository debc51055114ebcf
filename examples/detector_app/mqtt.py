"""Results to MQTT (--mqtt, paho-mqtt): availability, a JSON state per camera and per device of
the model, and Home Assistant discovery."""

from __future__ import annotations

import argparse
import json
import os
import threading
from typing import Any, Optional

from .base import ha_id, log


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
