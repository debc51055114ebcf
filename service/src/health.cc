#include "health.h"

#include <algorithm>
#include <cstring>

#include "camera_state.h"
#include "cuframes/cuframes.h"
#include "json.h"

namespace cfsvc {
namespace {

using cfcommon::dump;
using cfcommon::fixed;
using cfcommon::Json;

std::string node_prefix(const MqttConfig& m) {
  return "cuframes_" + m.node_id;
}
std::string service_device_id(const MqttConfig& m) {
  return node_prefix(m);
}
std::string camera_device_id(const MqttConfig& m, const std::string& camera) {
  return node_prefix(m) + "_" + ha_id(camera);
}

// One entity's description; empty strings are left out of the config.
struct Entity {
  std::string what;       // object id suffix
  std::string component;  // sensor, binary_sensor
  std::string name;
  std::string value_template;
  std::string device_class, state_class, unit, entity_category;
  int precision = -1;        // suggested_display_precision; -1: none
  bool enum_states = false;  // device_class enum: options = the camera states
  bool attributes = false;   // json_attributes_topic = the state topic
};

Json device(const MqttConfig& m, const std::string* camera) {
  Json d;
  d["identifiers"] = Json::array({camera ? camera_device_id(m, *camera) : service_device_id(m)});
  d["name"] = camera ? *camera : "cuframes " + m.node_id;
  d["manufacturer"] = "cuframes";
  d["model"] = camera ? "cuframes camera" : "cuframes-service";
  d["sw_version"] = cuframes_version_string();
  if (camera) d["via_device"] = service_device_id(m);
  return d;
}

Json origin() {
  return {{"name", "cuframes"}, {"sw_version", cuframes_version_string()}};
}

Discovery make(const MqttConfig& m, const std::string& id_prefix, const Entity& e,
               const std::string& state_topic, const std::string* camera) {
  Discovery d;
  d.object_id = id_prefix + "_" + e.what;
  Json w;
  w["name"] = e.name;
  w["unique_id"] = d.object_id;
  w["default_entity_id"] = e.component + "." + d.object_id;
  w["state_topic"] = state_topic;
  w["value_template"] = e.value_template;
  if (e.attributes) w["json_attributes_topic"] = state_topic;
  if (!e.device_class.empty()) w["device_class"] = e.device_class;
  if (e.enum_states) {
    Json& options = w["options"] = Json::array();
    for (CameraState s : kCameraStates) options.push_back(to_string(s));
  }
  if (!e.state_class.empty()) w["state_class"] = e.state_class;
  if (!e.unit.empty()) w["unit_of_measurement"] = e.unit;
  if (e.precision >= 0) w["suggested_display_precision"] = e.precision;
  if (!e.entity_category.empty()) w["entity_category"] = e.entity_category;
  if (e.component == "binary_sensor") {
    w["payload_on"] = "ON";
    w["payload_off"] = "OFF";
  }
  w["availability_topic"] = status_topic(m);
  w["payload_available"] = "online";
  w["payload_not_available"] = "offline";
  w["qos"] = m.qos;
  w["device"] = device(m, camera);
  w["origin"] = origin();
  d.message = {discovery_topic(m, e.component, d.object_id), dump(w), true};
  return d;
}

// A camera's snapshot as an MQTT image entity: the JPEG retained at its snapshot topic. It is
// available while the service is online and the camera streaming (availability_mode all).
Discovery image_entity(const MqttConfig& m, const std::string& camera) {
  Discovery d;
  d.object_id = camera_device_id(m, camera) + "_snapshot";
  Json w;
  w["name"] = "Snapshot";
  w["unique_id"] = d.object_id;
  w["default_entity_id"] = "image." + d.object_id;
  w["image_topic"] = snapshot_topic(m, camera);
  w["content_type"] = "image/jpeg";
  Json service_online;
  service_online["topic"] = status_topic(m);
  service_online["payload_available"] = "online";
  service_online["payload_not_available"] = "offline";
  Json camera_streaming;
  camera_streaming["topic"] = camera_topic(m, camera);
  camera_streaming["value_template"] =
      "{{ 'online' if value_json.state == 'streaming' else 'offline' }}";
  camera_streaming["payload_available"] = "online";
  camera_streaming["payload_not_available"] = "offline";
  w["availability"] = Json::array({service_online, camera_streaming});
  w["availability_mode"] = "all";
  w["qos"] = m.qos;
  w["device"] = device(m, &camera);
  w["origin"] = origin();
  d.message = {discovery_topic(m, "image", d.object_id), dump(w), true};
  return d;
}

}  // namespace

std::string status_topic(const MqttConfig& m) {
  return m.base_topic + "/status";
}
std::string stats_topic(const MqttConfig& m) {
  return m.base_topic + "/stats";
}
std::string camera_topic(const MqttConfig& m, const std::string& camera) {
  return m.base_topic + "/" + camera + "/state";
}
std::string subscriber_topic(const MqttConfig& m, const std::string& camera,
                             const std::string& sub) {
  return m.base_topic + "/" + camera + "/subscribers/" + sub;
}
std::string snapshot_topic(const MqttConfig& m, const std::string& camera) {
  return m.base_topic + "/" + camera + "/snapshot";
}
std::string discovery_topic(const MqttConfig& m, std::string_view component,
                            std::string_view object_id) {
  std::string t = m.discovery_prefix;
  t += '/';
  t += component;
  t += '/';
  t += m.node_id;
  t += '/';
  t += object_id;
  t += "/config";
  return t;
}

// ---- states

std::string service_stats_json(const MqttConfig& m, const ServiceSnapshot& s,
                               const std::optional<GpuStats>& gpu) {
  uint64_t streaming = 0, subscribers = 0;
  for (const CameraStatus& c : s.cameras) {
    streaming += c.state == "streaming";
    subscribers += c.subscribers;
  }
  Json w;
  w["version"] = cuframes_version_string();
  w["node_id"] = m.node_id;
  w["uptime_s"] = fixed(s.uptime_s, 1);
  w["cameras"] = s.cameras.size();
  w["streaming"] = streaming;
  w["subscribers"] = subscribers;
  Json& g = w["gpu"] = nullptr;
  if (gpu) {
    g["name"] = gpu->name;
    g["memory_used_mb"] = fixed(static_cast<double>(gpu->memory_used_bytes) / 1e6, 0);
    g["memory_total_mb"] = fixed(static_cast<double>(gpu->memory_total_bytes) / 1e6, 0);
    g["utilization_percent"] =
        gpu->utilization_percent < 0 ? Json(nullptr) : Json(gpu->utilization_percent);
    g["decoder_utilization_percent"] = gpu->decoder_utilization_percent < 0
                                           ? Json(nullptr)
                                           : Json(gpu->decoder_utilization_percent);
  }
  return dump(w);
}

void write_camera_fields(Json& w, const CameraStatus& c) {
  w["state"] = c.state;
  w["error"] = c.error;
  w["codec"] = c.codec;
  w["decoder"] = c.decoder;
  w["width"] = c.width;
  w["height"] = c.height;
  w["format"] = c.format;
  w["memory"] = c.memory;
  w["fps"] = fixed(c.fps, 2);
  w["frames"] = c.frames;
  w["dropped"] = c.dropped;
  w["decode_errors"] = c.decode_errors;
  w["reconnects"] = c.reconnects;
  w["subscribers"] = c.subscribers;
  w["occupancy"] = c.occupancy;
  w["slots"] = c.slots;
  w["last_frame_age_ms"] = c.last_frame_age_ms;
}

std::string camera_state_json(const CameraStatus& c) {
  Json w;
  write_camera_fields(w, c);
  w["connected"] = c.state == "streaming";
  w["resolution"] =
      c.width > 0 ? std::to_string(c.width) + "x" + std::to_string(c.height) : std::string();
  return dump(w);
}

std::string subscriber_state_json(const SubscriberReport& r) {
  const cuframes_subscriber_stats_t& s = r.stats;
  Json w;
  w["connected"] = r.connected;
  w["name"] = std::string(s.name, strnlen(s.name, sizeof s.name));
  w["mode"] = cuframes_mode_name(s.mode);
  w["pid"] = static_cast<int64_t>(s.pid);
  w["frames"] = s.frames_received;
  w["gaps"] = s.gaps;
  w["timeouts"] = s.timeouts;
  w["errors"] = s.errors;
  w["overruns"] = s.overruns;
  w["fps"] = fixed(r.fps, 2);
  w["lag"] = s.lag;
  w["latency_ms"] = fixed(static_cast<double>(std::max<int64_t>(s.last_latency_ns, 0)) / 1e6, 3);
  w["held"] = s.held_frames;
  w["idle_ms"] = s.heartbeat_ns > 0 && r.now_ns > s.heartbeat_ns
                     ? (r.now_ns - s.heartbeat_ns) / 1000000
                     : int64_t{0};
  return dump(w);
}

std::vector<SubscriberReport> SubscriberTracker::update(
    const std::vector<cuframes_subscriber_stats_t>& now, int64_t now_ns) {
  const std::vector<std::optional<double>> rates = rates_.update(now, now_ns);
  std::vector<SubscriberReport> out;
  std::map<std::pair<uint32_t, int64_t>, Track> next;
  std::set<std::string> taken;  // topic names of the subscribers attached now

  // The ones seen before keep their names; then the new ones, oldest first.
  std::vector<const cuframes_subscriber_stats_t*> fresh;
  for (const cuframes_subscriber_stats_t& s : now) {
    const auto id = std::make_pair(s.slot_index, s.attached_ns);
    auto it = live_.find(id);
    if (it == live_.end()) {
      fresh.push_back(&s);
      continue;
    }
    Track t = it->second;
    const double fps = rates[static_cast<size_t>(&s - now.data())].value_or(0);
    t.last = s;
    taken.insert(t.topic_name);
    out.push_back({t.topic_name, s, now_ns, true, fps});
    next.emplace(id, std::move(t));
  }
  // Gone since the last report: once more, disconnected; before the new ones, so that a new
  // subscriber that takes a gone one's name is what its topic says last.
  for (const auto& [id, t] : live_) {
    if (next.count(id)) continue;
    SubscriberReport r{t.topic_name, t.last, now_ns, false, 0};
    r.stats.held_frames = 0;
    r.stats.lag = 0;
    out.push_back(r);
  }
  std::sort(fresh.begin(), fresh.end(), [](auto* a, auto* b) {
    return a->attached_ns != b->attached_ns ? a->attached_ns < b->attached_ns
                                            : a->slot_index < b->slot_index;
  });
  for (const cuframes_subscriber_stats_t* s : fresh) {
    std::string name = ha_id(std::string_view(s->name, strnlen(s->name, sizeof s->name)));
    if (taken.count(name)) name += "_" + std::to_string(s->slot_index);
    taken.insert(name);
    names_.insert(name);
    // Its rate so far: frames since it attached (the same monotonic clock on one host).
    const double dt = static_cast<double>(now_ns - s->attached_ns) / 1e9;
    const double fps =
        s->attached_ns > 0 && dt > 0.5 ? static_cast<double>(s->frames_received) / dt : 0;
    out.push_back({name, *s, now_ns, true, fps});
    next.emplace(std::make_pair(s->slot_index, s->attached_ns), Track{name, *s});
  }
  live_ = std::move(next);
  return out;
}

// ---- discovery

namespace {

// The service's own entities; the GPU's only where NVML answers.
std::vector<Entity> service_entities(bool with_gpu) {
  std::vector<Entity> entities = {
      {"cameras", "sensor", "Cameras", "{{ value_json.cameras }}", "", "measurement", "", "", -1},
      {"streaming", "sensor", "Streaming cameras", "{{ value_json.streaming }}", "", "measurement",
       "", "", -1},
      {"uptime", "sensor", "Uptime", "{{ value_json.uptime_s }}", "duration", "", "s", "diagnostic",
       0},
  };
  if (with_gpu) {
    entities.push_back({"gpu_memory_used", "sensor", "GPU memory used",
                        "{{ value_json.gpu.memory_used_mb }}", "data_size", "measurement", "MB",
                        "diagnostic", 0});
    entities.push_back({"gpu_utilization", "sensor", "GPU utilization",
                        "{{ value_json.gpu.utilization_percent }}", "", "measurement", "%", "", 0});
    entities.push_back({"gpu_decoder_utilization", "sensor", "GPU decoder utilization",
                        "{{ value_json.gpu.decoder_utilization_percent }}", "", "measurement", "%",
                        "", 0});
  }
  return entities;
}

}  // namespace

std::vector<Discovery> service_discovery(const MqttConfig& m, bool with_gpu) {
  std::vector<Discovery> out;
  for (const Entity& e : service_entities(with_gpu)) {
    out.push_back(make(m, node_prefix(m), e, stats_topic(m), nullptr));
  }
  return out;
}

bool is_service_object_id(const MqttConfig& m, std::string_view object_id) {
  for (const Entity& e : service_entities(true)) {
    if (object_id == node_prefix(m) + "_" + e.what) return true;
  }
  return false;
}

std::vector<Discovery> camera_discovery(const MqttConfig& m, const std::string& camera) {
  Entity state{"state", "sensor", "State", "{{ value_json.state }}", "enum", "", "", "diagnostic"};
  state.enum_states = true;
  state.attributes = true;
  const std::vector<Entity> entities = {
      {"connectivity", "binary_sensor", "Connected",
       "{{ 'ON' if value_json.connected else 'OFF' }}", "connectivity", "", "", ""},
      {"fps", "sensor", "FPS", "{{ value_json.fps }}", "", "measurement", "fps", "", 1},
      {"frames", "sensor", "Frames", "{{ value_json.frames }}", "", "total_increasing", "",
       "diagnostic"},
      {"dropped", "sensor", "Dropped frames", "{{ value_json.dropped }}", "", "total_increasing",
       "", "diagnostic"},
      {"decode_errors", "sensor", "Decode errors", "{{ value_json.decode_errors }}", "",
       "total_increasing", "", "diagnostic"},
      {"reconnects", "sensor", "Reconnects", "{{ value_json.reconnects }}", "", "total_increasing",
       "", "diagnostic"},
      {"subscribers", "sensor", "Subscribers", "{{ value_json.subscribers }}", "", "measurement",
       "", ""},
      state,
  };
  std::vector<Discovery> out;
  for (const Entity& e : entities) {
    out.push_back(make(m, camera_device_id(m, camera), e, camera_topic(m, camera), &camera));
  }
  if (m.snapshot_interval.count() > 0) out.push_back(image_entity(m, camera));
  return out;
}

std::vector<Discovery> subscriber_discovery(const MqttConfig& m, const std::string& camera,
                                            const std::string& sub) {
  Entity frames{"sub_" + sub + "_frames",
                "sensor",
                sub + " frames",
                "{{ value_json.frames }}",
                "",
                "total_increasing",
                "",
                ""};
  frames.attributes = true;  // mode, pid, fps, lag... as attributes
  const std::vector<Entity> entities = {
      frames,
      {"sub_" + sub + "_gaps", "sensor", sub + " gaps", "{{ value_json.gaps }}", "",
       "total_increasing", "", "diagnostic"},
      {"sub_" + sub + "_timeouts", "sensor", sub + " timeouts", "{{ value_json.timeouts }}", "",
       "total_increasing", "", "diagnostic"},
  };
  std::vector<Discovery> out;
  for (const Entity& e : entities) {
    out.push_back(
        make(m, camera_device_id(m, camera), e, subscriber_topic(m, camera, sub), &camera));
  }
  return out;
}

}  // namespace cfsvc
