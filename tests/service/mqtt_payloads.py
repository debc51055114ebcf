"""The service's MQTT state payloads (docs/mqtt.md): each field's JSON type. Re-exported by
mqtt_helpers (`mh.check_camera_state`)."""

from __future__ import annotations

from typing import Any

from ha_discovery import STATES

NUM = (int, float)
CAMERA_STATE_TYPES: dict[str, Any] = {
    "state": str, "connected": bool, "error": str, "fps": NUM, "frames": int, "dropped": int,
    "decode_errors": int, "reconnects": int, "occupancy": int, "slots": int, "resolution": str,
    "width": int, "height": int, "format": str, "codec": str, "decoder": str, "memory": str,
    "subscribers": int}
SUBSCRIBER_STATE_TYPES: dict[str, Any] = {
    "connected": bool, "mode": str, "pid": int, "frames": int, "gaps": int, "timeouts": int,
    "errors": int, "overruns": int, "fps": NUM, "lag": int, "latency_ms": NUM}
STATS_TYPES: dict[str, Any] = {
    "version": str, "node_id": str, "uptime_s": NUM, "cameras": int, "streaming": int}


def _typed(d: Any, types: dict[str, Any], what: str) -> list[str]:
    if not isinstance(d, dict):
        return [f"{what}: not a JSON object: {d!r}"]
    p = []
    for k, t in types.items():
        if k not in d:
            p.append(f"{what}: no {k!r}")
        elif isinstance(d[k], bool) and t is not bool:
            p.append(f"{what}: {k} is a boolean {d[k]!r}")
        elif not isinstance(d[k], t):
            p.append(f"{what}: {k} = {d[k]!r}, expected {t}")
    return p


def check_camera_state(d: Any, what: str) -> list[str]:
    p = _typed(d, CAMERA_STATE_TYPES, what)
    if p:
        return p
    if d["state"] not in STATES:
        p.append(f"{what}: state {d['state']!r} not in {STATES}")
    if d["connected"] != (d["state"] == "streaming"):
        p.append(f"{what}: connected {d['connected']} with state {d['state']!r}")
    if d["width"] and d["resolution"] != f"{d['width']}x{d['height']}":
        p.append(f"{what}: resolution {d['resolution']!r} vs {d['width']}x{d['height']}")
    for k in ("frames", "dropped", "decode_errors", "reconnects", "occupancy", "subscribers"):
        if d[k] < 0:
            p.append(f"{what}: {k} negative")
    return p


def check_subscriber_state(d: Any, what: str) -> list[str]:
    p = _typed(d, SUBSCRIBER_STATE_TYPES, what)
    if not p and d["mode"] not in ("newest_only", "strict_order"):
        p.append(f"{what}: mode {d['mode']!r} not newest_only/strict_order")
    return p


def check_stats(d: Any, what: str, node_id: str) -> list[str]:
    p = _typed(d, STATS_TYPES, what)
    if isinstance(d, dict):
        if "gpu" not in d:
            p.append(f"{what}: no 'gpu' (null where there is none)")
        elif d["gpu"] is not None and not isinstance(d["gpu"], dict):
            p.append(f"{what}: gpu = {d['gpu']!r}, expected an object or null")
        if d.get("node_id") not in (None, node_id):
            p.append(f"{what}: node_id {d.get('node_id')!r}, expected {node_id!r}")
    return p
