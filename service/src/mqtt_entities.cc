// What the MQTT monitor keeps on the broker (docs/mqtt.md): the states and discovery configs of
// the service, its cameras and their subscribers; their removal with a camera; and the sweep of
// retained messages left by an earlier run or config.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "mqtt_monitor.h"

namespace cfsvc {
namespace {

// A removed entity's retained states are cleared only this long after the last discovery config
// deleted (docs/mqtt.md). Home Assistant removes an entity in a task of its own after reading
// its empty config, and (2024.3) handles every message of one read from the socket (up to 500)
// first: an empty state in the same burst reaches an entity still subscribed, whose
// value_template then fails ("'value_json' is undefined") and whose attributes are "Erroneous
// JSON".
constexpr auto kClearStatesAfter = std::chrono::seconds(5);

// The topic's levels.
std::vector<std::string> levels(const std::string& topic) {
  std::vector<std::string> out(1);
  for (char c : topic) {
    if (c == '/') {
      out.emplace_back();
    } else {
      out.back().push_back(c);
    }
  }
  return out;
}

}  // namespace

void MqttMonitor::Impl::announce_all() {
  if (!cfg.discovery) return;
  announce("", service_discovery(cfg, gpu.has_value()));
  for (auto& [name, t] : cams) {
    t.announced = false;
    t.subs_announced.clear();
  }
  sync(false);  // announces the cameras and the subscribers seen so far
  for (auto& [name, t] : cams) {
    for (const std::string& sub : t.subs.names()) {
      if (t.subs_announced.insert(sub).second) announce(name, subscriber_discovery(cfg, name, sub));
    }
  }
}

// Publishes a set of discovery configs owned by `owner`, unless one of their ids belongs to
// someone else (two camera names that differ only in characters ids cannot hold).
void MqttMonitor::Impl::announce(const std::string& owner, const std::vector<Discovery>& d) {
  for (const Discovery& x : d) {
    auto it = owners.find(x.object_id);
    if (it != owners.end() && it->second != owner) {
      // The first owner keeps the id; only this entity of the second is left out.
      if (collisions_logged.insert(x.object_id).second) {
        spdlog::warn(
            "MQTT: Home Assistant id '{}' of camera '{}' is already used by camera "
            "'{}'; not announcing it (rename one of them)",
            x.object_id, owner, it->second);
      }
      continue;
    }
    owners[x.object_id] = owner;
    publish(x.message.topic, x.message.payload);
  }
}

void MqttMonitor::Impl::sync(bool full) {
  const ServiceSnapshot snap = snapshot();
  const int64_t now_ns = mono_ns();

  // Cameras gone from the config: their entities and retained states go too.
  for (auto it = cams.begin(); it != cams.end();) {
    bool present = false;
    for (const CameraStatus& c : snap.cameras) present = present || c.name == it->first;
    if (present) {
      ++it;
      continue;
    }
    remove_camera(it->first, it->second);
    it = cams.erase(it);
  }

  for (const CameraStatus& c : snap.cameras) {
    CameraTrack& t = cams[c.name];
    if (cfg.discovery && !t.announced) {
      announce(c.name, camera_discovery(cfg, c.name));
      t.announced = true;
    }
    if (full || c.state != t.published_state) {
      publish(camera_topic(cfg, c.name), camera_state_json(c));
      t.published_state = c.state;
    }
    if (!full) continue;
    for (const SubscriberReport& r : t.subs.update(c.subscriber_stats, now_ns)) {
      if (cfg.discovery && t.subs_announced.insert(r.topic_name).second) {
        announce(c.name, subscriber_discovery(cfg, c.name, r.topic_name));
      }
      publish(subscriber_topic(cfg, c.name, r.topic_name), subscriber_state_json(r));
    }
  }
  if (full) {
    gpu = query_gpu();
    publish(stats_topic(cfg), service_stats_json(cfg, snap, gpu));
  }
}

// A camera gone from the config: its discovery configs are deleted now (Home Assistant removes
// the entities), its retained states kClearStatesAfter later.
void MqttMonitor::Impl::remove_camera(const std::string& name, CameraTrack& t) {
  spdlog::info("MQTT: camera '{}' left the config: deleting its entities and states", name);
  if (cfg.discovery) {
    std::vector<Discovery> all = camera_discovery(cfg, name);
    for (const std::string& sub : t.subs.names()) {
      for (Discovery& d : subscriber_discovery(cfg, name, sub)) all.push_back(std::move(d));
    }
    for (const Discovery& d : all) {
      auto it = owners.find(d.object_id);
      if (it == owners.end() || it->second != name) continue;  // never ours
      delete_config(d.message.topic);
      owners.erase(it);
    }
  }
  clear_state_later(name, camera_topic(cfg, name));
  clear_state_later(name, snapshot_topic(cfg, name));
  for (const std::string& sub : t.subs.names()) {
    clear_state_later(name, subscriber_topic(cfg, name, sub));
  }
}

void MqttMonitor::Impl::delete_config(const std::string& topic) {
  publish(topic, "");
  clear_at = std::max(clear_at, Clock::now() + kClearStatesAfter);
}

void MqttMonitor::Impl::clear_state_later(const std::string& camera, const std::string& topic) {
  clear_at = std::max(clear_at, Clock::now() + kClearStatesAfter);
  clears.emplace_back(camera, topic);
}

void MqttMonitor::Impl::clear_due_states() {
  for (const auto& [camera, topic] : clears) {
    if (cams.count(camera)) continue;  // configured again meanwhile: its states are current
    publish(topic, "");
  }
  clears.clear();
}

// Retained messages the broker kept from before (another run, another config): discovery
// configs and states of cameras that are no longer configured are deleted (the states later,
// as remove_camera does).
void MqttMonitor::Impl::sweep(const std::deque<std::pair<std::string, std::string>>& batch) {
  const std::string& node = cfg.node_id;
  const size_t prefix_levels = levels(cfg.discovery_prefix).size();
  const size_t base_levels = levels(cfg.base_topic).size();
  // A current camera's entities by their exact ids, and its subscribers' (sub_...) by prefix:
  // those of detectors not attached yet this run stay. A prefix alone would keep the entities
  // of a removed camera "front_door" while a camera "front" exists.
  std::set<std::string> camera_ids;
  std::vector<std::string> sub_prefixes;
  for (const auto& [name, t] : cams) {
    for (const Discovery& d : camera_discovery(cfg, name)) camera_ids.insert(d.object_id);
    sub_prefixes.push_back("cuframes_" + node + "_" + ha_id(name) + "_sub_");
  }
  auto current_by_id = [&](const std::string& object_id) {
    if (owners.count(object_id) || camera_ids.count(object_id) ||
        is_service_object_id(cfg, object_id)) {
      return true;
    }
    for (const std::string& p : sub_prefixes) {
      if (object_id.compare(0, p.size(), p) == 0) return true;
    }
    return false;
  };
  for (const auto& [topic, payload] : batch) {
    const std::vector<std::string> l = levels(topic);
    bool stale = false;
    const bool config =
        cfg.discovery && l.size() == prefix_levels + 4 && l.back() == "config" &&
        topic.compare(0, cfg.discovery_prefix.size() + 1, cfg.discovery_prefix + "/") == 0 &&
        l[prefix_levels + 1] == node;
    if (config) {
      stale = !current_by_id(l[prefix_levels + 2]);
    } else if (topic.compare(0, cfg.base_topic.size() + 1, cfg.base_topic + "/") == 0 &&
               l.size() > base_levels) {
      stale = cams.count(l[base_levels]) == 0;
    }
    if (!stale) continue;
    spdlog::info("MQTT: deleting retained {} (no such camera any more)", topic);
    if (config) {
      delete_config(topic);
    } else {  // a state: after the configs (remove_camera says why)
      clear_state_later(l[base_levels], topic);
    }
  }
}

}  // namespace cfsvc
