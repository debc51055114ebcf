"""Home Assistant's MQTT discovery rules as docs/mqtt.md states them: the entity tables, the
abbreviations, a validator for every discovery document the service publishes, and the values
its templates render from the state payloads. Re-exported by mqtt_helpers (`mh.validate_discovery`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional

import jinja2

if TYPE_CHECKING:
    from mqtt_helpers import Msg

# ---- Home Assistant discovery ------------------------------------------------------------

STATES = ["connecting", "streaming", "stalled", "error", "stopped"]

# Home Assistant's MQTT abbreviations (homeassistant/components/mqtt/abbreviations.py), for the
# keys these rules look at: a payload may use either form.
ABBREVIATIONS = {
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "dev": "device", "dev_cla": "device_class",
    "ent_cat": "entity_category", "en": "enabled_by_default", "exp_aft": "expire_after",
    "frc_upd": "force_update", "ic": "icon", "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template", "obj_id": "object_id", "o": "origin",
    "ops": "options", "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
    "pl_on": "payload_on", "pl_off": "payload_off", "stat_cla": "state_class",
    "stat_t": "state_topic", "sug_dsp_prc": "suggested_display_precision",
    "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
    "def_ent_id": "default_entity_id", "t": "topic", "pl_avail_tpl": "payload_available",
}
DEVICE_ABBREVIATIONS = {
    "cns": "connections", "ids": "identifiers", "mf": "manufacturer", "mdl": "model",
    "mdl_id": "model_id", "hw": "hw_version", "sw": "sw_version", "sa": "suggested_area",
    "sn": "serial_number", "cu": "configuration_url",
}
ORIGIN_ABBREVIATIONS = {"sw": "sw_version", "url": "support_url"}
# HA's device and origin schemas refuse other keys.
DEVICE_KEYS = {"connections", "identifiers", "manufacturer", "model", "model_id", "name",
               "hw_version", "sw_version", "suggested_area", "serial_number",
               "configuration_url", "via_device"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}

SENSOR_DEVICE_CLASSES = {
    "absolute_humidity", "apparent_power", "aqi", "area", "atmospheric_pressure", "battery",
    "blood_glucose_concentration", "carbon_dioxide", "carbon_monoxide", "conductivity",
    "current", "data_rate", "data_size", "date", "distance", "duration", "energy",
    "energy_distance", "energy_storage", "enum", "frequency", "gas", "humidity", "illuminance",
    "irradiance", "moisture", "monetary", "nitrogen_dioxide", "nitrogen_monoxide",
    "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power", "power_factor",
    "precipitation", "precipitation_intensity", "pressure", "reactive_energy", "reactive_power",
    "signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature", "timestamp",
    "volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage", "volume",
    "volume_flow_rate", "volume_storage", "water", "weight", "wind_direction", "wind_speed"}
BINARY_SENSOR_DEVICE_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")  # HA: node_id and object_id of a discovery topic

# docs/mqtt.md's entity tables: JSON field -> (device_class, state_class, unit,
# entity_category). The camera's connectivity binary_sensor is listed under "binary_sensor".
CAMERA_SENSORS: dict[str, tuple[Optional[str], Optional[str], Optional[str], Optional[str]]] = {
    "fps": (None, "measurement", "fps", None),
    "frames": (None, "total_increasing", None, "diagnostic"),
    "dropped": (None, "total_increasing", None, "diagnostic"),
    "decode_errors": (None, "total_increasing", None, "diagnostic"),
    "reconnects": (None, "total_increasing", None, "diagnostic"),
    "subscribers": (None, "measurement", None, None),
    "state": ("enum", None, None, "diagnostic"),
}
# A camera's entities with snapshots on (the default): its sensors, the connectivity
# binary_sensor and the snapshot image.
CAMERA_ENTITIES = len(CAMERA_SENSORS) + 2
SUBSCRIBER_SENSORS: dict[str, tuple[Optional[str], Optional[str], Optional[str],
                                     Optional[str]]] = {
    "frames": (None, "total_increasing", None, None),
    "gaps": (None, "total_increasing", None, "diagnostic"),
    "timeouts": (None, "total_increasing", None, "diagnostic"),
}

_jinja = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


def render(template: str, payload: bytes) -> str:
    """A value_template rendered the way HA does: `value` is the payload as text, `value_json`
    the parsed JSON. A name the JSON lacks is an error here (HA renders it empty and warns)."""
    text = payload.decode()
    try:
        value_json: Any = json.loads(text)
    except ValueError:
        value_json = None
    return _jinja.from_string(template).render(value=text, value_json=value_json).strip()


def template_field(template: Optional[str]) -> Optional[str]:
    """The JSON field a value_template reads (value_json.x or value_json['x'])."""
    if not template:
        return None
    m = re.search(r"value_json(?:\.(\w+)|\[\s*['\"](\w+)['\"]\s*\])", template)
    return (m.group(1) or m.group(2)) if m else None


def expand(cfg: dict[str, Any]) -> dict[str, Any]:
    """A discovery payload with HA's abbreviations and `~` expanded."""
    out = {ABBREVIATIONS.get(k, k): v for k, v in cfg.items()}
    base = out.pop("~", None)
    if isinstance(out.get("device"), dict):
        out["device"] = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in out["device"].items()}
    if isinstance(out.get("origin"), dict):
        out["origin"] = {ORIGIN_ABBREVIATIONS.get(k, k): v for k, v in out["origin"].items()}
    if isinstance(out.get("availability"), list):
        out["availability"] = [{ABBREVIATIONS.get(k, k): v for k, v in a.items()}
                               if isinstance(a, dict) else a for a in out["availability"]]
    if isinstance(base, str):
        def tilde(v: Any) -> Any:
            if isinstance(v, str) and v.startswith("~"):
                return base + v[1:]
            if isinstance(v, str) and v.endswith("~"):
                return v[:-1] + base
            return v
        for k in list(out):
            if k.endswith("_topic"):
                out[k] = tilde(out[k])
        for a in out.get("availability") or []:
            if isinstance(a, dict) and "topic" in a:
                a["topic"] = tilde(a["topic"])
    return out


def ha_id(name: str) -> str:
    """A camera's or subscriber's name as docs/mqtt.md makes it an HA id: lower case, every run
    of characters other than a-z 0-9 one '_', none at either end."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "x"


def identifiers(dev: Any) -> list[str]:
    if not isinstance(dev, dict):
        return []
    ids = dev.get("identifiers")
    if isinstance(ids, str):
        return [ids]
    if isinstance(ids, list):
        return [str(i) for i in ids]
    return []


@dataclass
class Entity:
    topic: str
    component: str
    node_id: str
    object_id: str
    cfg: dict[str, Any]  # expanded
    camera: Optional[str] = None  # from the device identifiers
    subscriber: Optional[str] = None  # from the state topic
    field: Optional[str] = None  # the JSON field its value_template reads


@dataclass
class Discovery:
    """Validated discovery configs: .problems lists every rule broken (empty = all good)."""
    entities: list[Entity] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of_camera(self, camera: str) -> list[Entity]:
        return [e for e in self.entities if e.camera == camera]

    def state_topics(self) -> set[str]:
        return {e.cfg["state_topic"] for e in self.entities
                if isinstance(e.cfg.get("state_topic"), str)}


def discovery_configs(msgs: Iterable[Msg], prefix: str) -> dict[str, bytes]:
    """topic -> latest payload of the `<prefix>/.../config` messages among msgs."""
    out: dict[str, bytes] = {}
    for m in msgs:
        if m.topic.startswith(prefix + "/") and m.topic.endswith("/config"):
            out[m.topic] = m.payload
    return out


def validate_discovery(configs: dict[str, bytes], *, prefix: str, node_id: str, base: str,
                       cameras: Iterable[str],
                       subscribers: Optional[dict[str, Iterable[str]]] = None,
                       sw_version: Optional[str] = None, snapshots: bool = True) -> Discovery:
    """Checks discovery payloads (topic -> payload; empty payloads are deletions and are
    skipped) against HA's MQTT discovery rules and docs/mqtt.md's tables. cameras: the cameras
    that must each have their 8 entities; subscribers: camera -> subscriber names that must
    each have their 3 entities; snapshots: each camera has its image entity (mqtt.snapshot_interval
    not 0). Returns every problem found, not just the first."""
    d = Discovery()
    p = d.problems
    cameras = list(cameras)
    service_id = f"cuframes_{node_id}"
    topic_re = re.compile(rf"^{re.escape(prefix)}/([^/]+)/([^/]+)/([^/]+)/config$")
    seen_uids: dict[str, str] = {}
    devices: dict[str, tuple[str, dict[str, Any]]] = {}
    for topic, payload in sorted(configs.items()):
        if not payload:
            continue
        m = topic_re.match(topic)
        if not m:
            p.append(f"{topic}: not <prefix>/<component>/<node_id>/<object_id>/config "
                     f"with prefix {prefix!r}")
            continue
        component, tnode, object_id = m.groups()
        where = topic
        if component not in ("sensor", "binary_sensor", "image"):
            p.append(f"{where}: component {component!r} is not sensor, binary_sensor or image")
        if tnode != node_id:
            p.append(f"{where}: node_id {tnode!r} in the topic, expected {node_id!r}")
        if not ID_RE.match(tnode) or not ID_RE.match(object_id):
            p.append(f"{where}: HA ignores this topic: node_id {tnode!r} and object_id "
                     f"{object_id!r} must match [a-zA-Z0-9_-]+")
        try:
            raw = json.loads(payload)
        except ValueError as e:
            p.append(f"{where}: payload is not JSON ({e}): {payload[:200]!r}")
            continue
        if not isinstance(raw, dict):
            p.append(f"{where}: payload is not a JSON object: {raw!r}")
            continue
        cfg = expand(raw)
        ent = Entity(topic, component, tnode, object_id, cfg)
        d.entities.append(ent)

        # unique_id / object_id
        uid = cfg.get("unique_id")
        if not isinstance(uid, str) or not uid:
            p.append(f"{where}: unique_id missing or not a string: {uid!r}")
        else:
            if uid in seen_uids:
                p.append(f"{where}: unique_id {uid!r} also used by {seen_uids[uid]}")
            seen_uids[uid] = topic
            if uid != object_id:
                p.append(f"{where}: unique_id {uid!r} != the topic's object_id {object_id!r}")
            if not uid.startswith(f"cuframes_{node_id}_"):
                p.append(f"{where}: unique_id {uid!r} does not start with cuframes_{node_id}_")
        if "object_id" in cfg and cfg["object_id"] != object_id:
            p.append(f"{where}: payload object_id {cfg['object_id']!r} != topic's {object_id!r}")

        # state topic (an image has its image_topic instead: _check_image)
        st = cfg.get("state_topic")
        if component == "image":
            pass
        elif not isinstance(st, str) or not st:
            p.append(f"{where}: state_topic missing (required by HA for {component})")
        elif not st.startswith(base + "/"):
            p.append(f"{where}: state_topic {st!r} is not under the base topic {base!r}")
        if isinstance(st, str) and re.search(r"[#+]", st):
            p.append(f"{where}: state_topic {st!r} has a wildcard")

        # availability
        av_topics: list[tuple[Any, Any, Any]] = []
        if "availability_topic" in cfg:
            av_topics.append((cfg["availability_topic"], cfg.get("payload_available"),
                              cfg.get("payload_not_available")))
        for a in cfg.get("availability") or []:
            if isinstance(a, dict):
                av_topics.append((a.get("topic"), a.get("payload_available"),
                                  a.get("payload_not_available")))
        if not av_topics:
            p.append(f"{where}: no availability_topic")
        if component == "image":  # the status topic, and the camera's state (_check_image)
            av_topics = av_topics[:1]
        for t, on, off in av_topics:
            if t != f"{base}/status":
                p.append(f"{where}: availability topic {t!r}, expected {base + '/status'!r}")
            if on != "online" or off != "offline":
                p.append(f"{where}: payload_available/payload_not_available {on!r}/{off!r}, "
                         f"expected 'online'/'offline'")

        # origin
        o = cfg.get("origin")
        if not isinstance(o, dict):
            p.append(f"{where}: no origin block")
        else:
            if not isinstance(o.get("name"), str) or not o.get("name"):
                p.append(f"{where}: origin has no name: {o}")
            elif o["name"] != "cuframes":
                p.append(f"{where}: origin name {o['name']!r}, expected 'cuframes'")
            if not isinstance(o.get("sw_version"), str) or not o.get("sw_version"):
                p.append(f"{where}: origin lacks sw_version (docs/mqtt.md): {o}")
            extra = set(o) - ORIGIN_KEYS
            if extra:
                p.append(f"{where}: origin has keys HA's schema refuses: {sorted(extra)}")
            if sw_version and o.get("sw_version") not in (None, sw_version):
                p.append(f"{where}: origin sw_version {o.get('sw_version')!r}, the service "
                         f"says {sw_version!r}")

        # device
        dev = cfg.get("device")
        ids = identifiers(dev)
        if not isinstance(dev, dict):
            p.append(f"{where}: no device block")
        elif not ids:
            p.append(f"{where}: device without identifiers: {dev}")
        else:
            extra = set(dev) - DEVICE_KEYS
            if extra:
                p.append(f"{where}: device has keys HA's schema refuses: {sorted(extra)}")
            key = ids[0]
            if key in devices and devices[key][1] != dev:
                p.append(f"{where}: device {key!r} differs from the one in {devices[key][0]}: "
                         f"{dev} vs {devices[key][1]}")
            devices.setdefault(key, (topic, dev))
            cam = next((c for c in cameras if f"cuframes_{node_id}_{ha_id(c)}" in ids), None)
            if cam is None:
                m2 = re.match(rf"^cuframes_{re.escape(node_id)}_(.+)$", key)
                cam = m2.group(1) if m2 else None
            ent.camera = cam
            if cam is not None:
                want = {"identifiers": [f"cuframes_{node_id}_{ha_id(cam)}"], "name": cam,
                        "manufacturer": "cuframes", "model": "cuframes camera",
                        "via_device": service_id}
                for k, v in want.items():
                    got = dev.get(k)
                    if k == "identifiers":
                        got = ids
                    if got != v:
                        p.append(f"{where}: device {k} {got!r}, expected {v!r}")
                if not isinstance(dev.get("sw_version"), str) or not dev.get("sw_version"):
                    p.append(f"{where}: device lacks sw_version: {dev}")
            elif ids != [service_id]:
                p.append(f"{where}: device identifiers {ids} are neither a camera's nor "
                         f"the service's ({service_id})")

        # name
        if "name" not in cfg:
            p.append(f"{where}: no name key (HA then names it 'MQTT Sensor'/'MQTT Binary "
                     f"sensor'); give a name, or null to use the device's name")
        else:
            name = cfg["name"]
            dname = dev.get("name") if isinstance(dev, dict) else None
            if name is None:
                if not dname:
                    p.append(f"{where}: name null but the device has no name")
            elif not isinstance(name, str) or not name:
                p.append(f"{where}: name {name!r} is neither a non-empty string nor null")
            elif isinstance(dname, str) and dname and name.startswith(dname):
                p.append(f"{where}: entity name {name!r} starts with the device name "
                         f"{dname!r}: HA warns and strips it (the entity's name is shown "
                         f"after the device's)")

        # entity category
        ec = cfg.get("entity_category")
        if ec is not None and ec not in ("diagnostic", "config"):
            p.append(f"{where}: entity_category {ec!r} not in (diagnostic, config)")
        if ec == "config":
            p.append(f"{where}: entity_category 'config' is refused by HA for read-only "
                     f"{component} entities")

        # component rules
        dc, sc, unit = (cfg.get("device_class"), cfg.get("state_class"),
                        cfg.get("unit_of_measurement"))
        if component == "sensor":
            if dc is not None and dc not in SENSOR_DEVICE_CLASSES:
                p.append(f"{where}: sensor device_class {dc!r} is not one of HA's")
            if sc is not None and sc not in STATE_CLASSES:
                p.append(f"{where}: state_class {sc!r} is not one of {sorted(STATE_CLASSES)}")
            if dc == "enum" or "options" in cfg:
                if dc != "enum":
                    p.append(f"{where}: options given without device_class enum")
                opts = cfg.get("options")
                if not isinstance(opts, list) or not opts or not all(
                        isinstance(x, str) for x in opts):
                    p.append(f"{where}: device_class enum needs a non-empty options list of "
                             f"strings, got {opts!r}")
                if sc is not None:
                    p.append(f"{where}: state_class {sc!r} with device_class enum (HA refuses)")
                if unit is not None:
                    p.append(f"{where}: unit_of_measurement {unit!r} with device_class enum "
                             f"(HA refuses)")
            if "payload_on" in cfg or "payload_off" in cfg:
                p.append(f"{where}: payload_on/payload_off on a sensor")
        elif component == "binary_sensor":
            if dc is not None and dc not in BINARY_SENSOR_DEVICE_CLASSES:
                p.append(f"{where}: binary_sensor device_class {dc!r} is not one of HA's")
            for k in ("state_class", "unit_of_measurement", "options"):
                if k in cfg:
                    p.append(f"{where}: {k} on a binary_sensor (not in HA's schema)")
            if dc == "connectivity":
                for k, v in (("payload_on", "ON"), ("payload_off", "OFF")):
                    if cfg.get(k, v) != v:
                        p.append(f"{where}: {k} {cfg.get(k)!r}, expected {v!r}")

        if component == "image":
            _check_image(ent, node_id, base, p)
            continue

        # which entity of the contract's tables this is
        tpl = cfg.get("value_template")
        ent.field = template_field(tpl if isinstance(tpl, str) else None)
        if not isinstance(tpl, str) or not tpl:
            p.append(f"{where}: no value_template (the states are JSON)")
        if isinstance(st, str) and ent.camera is not None:
            sub_m = re.match(rf"^{re.escape(base)}/{re.escape(ent.camera)}/subscribers/(.+)$",
                             st)
            if sub_m:
                ent.subscriber = sub_m.group(1)
            elif st != f"{base}/{ent.camera}/state":
                p.append(f"{where}: state_topic {st!r}, expected {base}/{ent.camera}/state or "
                         f"a subscriber topic")
        if ent.camera is not None:
            _check_table(ent, node_id, p)

    # every camera (and subscriber) has its entities
    for cam in cameras:
        ents = [e for e in d.entities if e.camera == cam and e.subscriber is None]
        conn = [e for e in ents if e.component == "binary_sensor"]
        if len(conn) != 1:
            p.append(f"camera {cam}: {len(conn)} binary_sensors, expected 1 (connectivity)")
        images = [e for e in ents if e.component == "image"]
        if len(images) != int(snapshots):
            p.append(f"camera {cam}: {len(images)} image entities, expected {int(snapshots)}")
        fields = sorted(e.field or "?" for e in ents if e.component == "sensor")
        if fields != sorted(CAMERA_SENSORS):
            p.append(f"camera {cam}: sensors for {fields}, expected {sorted(CAMERA_SENSORS)}")
    for cam, names in (subscribers or {}).items():
        for name in names:
            ents = [e for e in d.entities if e.camera == cam and e.subscriber == ha_id(name)]
            fields = sorted(e.field or "?" for e in ents)
            if fields != sorted(SUBSCRIBER_SENSORS):
                p.append(f"camera {cam} subscriber {name}: sensors for {fields}, expected "
                         f"{sorted(SUBSCRIBER_SENSORS)}")
    return d


def _check_image(ent: Entity, node_id: str, base: str, p: list[str]) -> None:
    """docs/mqtt.md's image entity: HA's MQTT image schema (image_topic, content_type; no
    state_topic or value_template), the camera's snapshot topic, available while the service is
    online and the camera streaming."""
    cfg, where, cam = ent.cfg, ent.topic, ent.camera
    if cam is None:
        p.append(f"{where}: an image entity not on a camera's device")
        return
    want = {"image_topic": f"{base}/{cam}/snapshot", "content_type": "image/jpeg",
            "unique_id": f"cuframes_{node_id}_{ha_id(cam)}_snapshot",
            "availability_mode": "all"}
    for k, v in want.items():
        if cfg.get(k) != v:
            p.append(f"{where}: {k} {cfg.get(k)!r}, expected {v!r}")
    for k in ("state_topic", "value_template", "url_topic", "url_template", "image_encoding",
              "device_class", "state_class", "unit_of_measurement", "availability_topic"):
        if k in cfg:
            p.append(f"{where}: {k} on an image entity (not in its schema, or not ours)")
    av = cfg.get("availability")
    if not isinstance(av, list) or len(av) != 2:
        p.append(f"{where}: availability {av!r}: expected the service's status topic and the "
                 f"camera's state topic")
        return
    state = av[1] if isinstance(av[1], dict) else {}
    if state.get("topic") != f"{base}/{cam}/state":
        p.append(f"{where}: availability[1] topic {state.get('topic')!r}, expected "
                 f"{base}/{cam}/state")
    tpl = state.get("value_template")
    on, off = state.get("payload_available", "online"), state.get("payload_not_available",
                                                                   "offline")
    for st in sorted(STATES):
        try:
            got = render(tpl, json.dumps({"state": st}).encode()) if isinstance(tpl, str) else None
        except Exception as ex:  # jinja2 errors of any kind
            got = f"<{type(ex).__name__}: {ex}>"
        if got != (on if st == "streaming" else off):
            p.append(f"{where}: availability template gives {got!r} for a camera {st}, expected "
                     f"{on if st == 'streaming' else off!r}")


def _check_table(ent: Entity, node_id: str, p: list[str]) -> None:
    cfg, where = ent.cfg, ent.topic
    got = (cfg.get("device_class"), cfg.get("state_class"), cfg.get("unit_of_measurement"),
           cfg.get("entity_category"))
    names = ("device_class", "state_class", "unit_of_measurement", "entity_category")
    want: Optional[tuple[Optional[str], Optional[str], Optional[str], Optional[str]]]
    if ent.subscriber is not None:
        want = SUBSCRIBER_SENSORS.get(ent.field or "")
        uid = f"cuframes_{node_id}_{ha_id(ent.camera)}_sub_{ent.subscriber}_{ent.field}"
        if ent.component != "sensor":
            p.append(f"{where}: subscriber entity is a {ent.component}, expected sensor")
    elif ent.component == "binary_sensor":
        want = ("connectivity", None, None, None)
        uid = None
    else:
        want = CAMERA_SENSORS.get(ent.field or "")
        uid = None
    if want is None:
        p.append(f"{where}: value_template reads {ent.field!r}: not an entity of docs/mqtt.md")
        return
    for n, g, w in zip(names, got, want):
        if g != w:
            p.append(f"{where} ({ent.field}): {n} {g!r}, expected {w!r}")
    if ent.field == "state" and ent.component == "sensor" and ent.subscriber is None:
        if sorted(cfg.get("options") or []) != sorted(STATES):
            p.append(f"{where}: options {cfg.get('options')!r}, expected the five states "
                     f"{STATES}")
    if uid is not None and cfg.get("unique_id") != uid:
        p.append(f"{where}: unique_id {cfg.get('unique_id')!r}, expected {uid!r} "
                 f"(<what> = sub_<name>_<counter>)")
    if ent.camera is not None and isinstance(cfg.get("unique_id"), str) and not cfg[
            "unique_id"].startswith(f"cuframes_{node_id}_{ha_id(ent.camera)}_"):
        p.append(f"{where}: unique_id {cfg['unique_id']!r} is not "
                 f"cuframes_{node_id}_{ent.camera}_<what>")


def check_values(d: Discovery, states: dict[str, bytes]) -> list[str]:
    """Renders every entity's value_template against the latest payload of its state topic
    (states: topic -> payload) and checks the value is what its entity type needs."""
    p: list[str] = []
    for e in d.entities:
        st = e.cfg.get("state_topic")
        tpl = e.cfg.get("value_template")
        if not isinstance(st, str) or not isinstance(tpl, str):
            continue
        payload = states.get(st)
        if not payload:
            p.append(f"{e.topic}: its state topic {st} was never published")
            continue
        try:
            data = json.loads(payload)
        except ValueError as ex:
            p.append(f"{e.topic}: state {st} is not JSON ({ex}): {payload[:200]!r}")
            continue
        try:
            v = render(tpl, payload)
        except Exception as ex:  # jinja2 errors of any kind
            p.append(f"{e.topic}: value_template {tpl!r} does not render against {st} "
                     f"({type(ex).__name__}: {ex}); state: {payload[:300]!r}")
            continue
        sc, dc = e.cfg.get("state_class"), e.cfg.get("device_class")
        if e.component == "binary_sensor":
            on, off = e.cfg.get("payload_on", "ON"), e.cfg.get("payload_off", "OFF")
            if v not in (on, off):
                p.append(f"{e.topic}: rendered {v!r}, expected {on!r} or {off!r}")
            elif dc == "connectivity" and isinstance(data, dict) and "state" in data:
                want = on if data["state"] == "streaming" else off
                if v != want:
                    p.append(f"{e.topic}: rendered {v!r} for state {data['state']!r}, "
                             f"expected {want!r}")
        elif dc == "enum":
            if v not in (e.cfg.get("options") or []):
                p.append(f"{e.topic}: rendered {v!r}, not one of its options "
                         f"{e.cfg.get('options')}")
        elif sc in ("measurement", "total", "total_increasing") or e.cfg.get(
                "unit_of_measurement") is not None:
            try:
                x = float(v)
                if not math.isfinite(x):
                    raise ValueError(v)
            except ValueError:
                p.append(f"{e.topic}: rendered {v!r}: not a number, as {sc} needs")
                continue
            if sc == "total_increasing" and x < 0:
                p.append(f"{e.topic}: rendered {v!r}: negative for total_increasing")
        if e.field and isinstance(data, dict) and e.field in data and e.component == "sensor":
            if str(data[e.field]) != v and not _same_number(data[e.field], v):
                p.append(f"{e.topic}: rendered {v!r} but the state's {e.field} is "
                         f"{data[e.field]!r}")
    return p


def _same_number(a: Any, b: str) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False
