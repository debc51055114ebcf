// The MQTT health monitor (docs/mqtt.md): one thread that keeps a connection to the broker and
// publishes the service's health every stats_interval and on every camera state change, and
// announces it to Home Assistant through MQTT discovery.
//
// It never touches the frames: it only reads snapshots. A broker that is down, refuses us or is
// slow costs nothing but our own messages: they are dropped (never queued while disconnected),
// and the monitor reconnects with backoff (1 s doubling to 30 s) and announces everything again.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "health.h"

namespace cfsvc {

class MqttMonitor {
 public:
  using SnapshotFn = std::function<ServiceSnapshot()>;

  // Starts the thread, which connects in the background; `snapshot` is called from that thread
  // and must be thread-safe.
  MqttMonitor(MqttConfig config, SnapshotFn snapshot);
  // Publishes "offline" (when connected), disconnects and joins: a few seconds at most.
  ~MqttMonitor();
  MqttMonitor(const MqttMonitor&) = delete;
  MqttMonitor& operator=(const MqttMonitor&) = delete;

  const MqttConfig& config() const;
  // Something changed (a camera's state, the set of cameras): publish soon. Thread-safe.
  void notify();
  // A camera's snapshot (a JPEG) to publish, retained, at <base_topic>/<camera>/snapshot: soon,
  // from the monitor's thread; only the newest one per camera waits, and it is dropped while
  // disconnected. Thread-safe.
  void publish_snapshot(const std::string& camera, std::string jpeg);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cfsvc
