// The MQTT monitor's parts (mqtt.h), private to it: the state its thread keeps, shared by
// mqtt.cc (the connection: connecting, reconnecting with backoff, the thread's loop, publishing)
// and mqtt_entities.cc (what it keeps on the broker: discovery configs and states, their removal,
// the sweep of stale retained messages).
#pragma once

#include <mqtt/async_client.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "health.h"
#include "mqtt.h"
#include "nvml.h"

namespace cfsvc {

// "tcp://host:port" or "ssl://...", IPv6 addresses in brackets.
std::string server_uri(const MqttConfig& m);

// What the monitor keeps about one camera.
struct CameraTrack {
  std::string published_state;  // the state last published on this connection
  SubscriberTracker subs;
  bool announced = false;                // discovery sent on this connection
  std::set<std::string> subs_announced;  // the same, per subscriber topic name
};

struct MqttMonitor::Impl {
  using Clock = std::chrono::steady_clock;

  Impl(MqttConfig c, SnapshotFn s) : cfg(std::move(c)), snapshot(std::move(s)) {}

  void run();
  // False with the reason on failure; *auth: refused credentials or a TLS failure (an error).
  bool connect_once(std::string* why, bool* auth);
  bool try_connect();  // throws mqtt::exception on failure; false when stopped
  void on_connected();
  void on_lost();
  void sync(bool full);
  void announce_all();
  void announce(const std::string& owner, const std::vector<Discovery>& d);
  void remove_camera(const std::string& name, CameraTrack& track);
  void sweep(const std::deque<std::pair<std::string, std::string>>& retained);
  // An entity's discovery config deleted now: states wait kClearStatesAfter from here.
  void delete_config(const std::string& topic);
  // A retained state of camera `camera` to clear once its entities are gone from HA.
  void clear_state_later(const std::string& camera, const std::string& topic);
  void clear_due_states();
  void publish(const std::string& topic, const std::string& payload, bool retained = true);
  void shutdown();

  const MqttConfig cfg;
  const SnapshotFn snapshot;
  const std::string uri = server_uri(cfg);

  // Shared with the client's callbacks and notify().
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false, notified = false, ha_online = false, lost = false;
  std::string lost_cause, tls_error;
  std::deque<std::pair<std::string, std::string>> retained;  // (topic, payload) for the sweep
  std::map<std::string, std::string> snapshots;              // camera -> the newest JPEG to publish

  // The monitor thread's own.
  bool connected = false;
  std::optional<GpuStats> gpu;
  std::map<std::string, CameraTrack> cams;    // by camera name
  std::map<std::string, std::string> owners;  // discovery object id -> its camera ("" service)
  std::set<std::string> collisions_logged;
  uint64_t dropped = 0;
  // Retained states of removed cameras, cleared at clear_at (kClearStatesAfter after the last
  // discovery config deleted); a camera back by then keeps its own.
  std::vector<std::pair<std::string, std::string>> clears;  // (camera, topic)
  Clock::time_point clear_at;

  std::unique_ptr<mqtt::async_client> client;  // made and destroyed by the thread
  std::thread thread;
};

}  // namespace cfsvc
