// Health reports for MQTT (docs/mqtt.md): the JSON states of the service, its cameras and their
// subscribers, and the Home Assistant discovery configs that describe them. Pure functions and
// plain state: no I/O and no broker, so the payloads are testable on their own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "camera.h"
#include "config.h"
#include "ha_id.h"
#include "json.h"
#include "nvml.h"
#include "subscriber_rates.h"

namespace cfsvc {

// What the service looks like at one moment (Service::snapshot).
struct ServiceSnapshot {
  double uptime_s = 0;
  std::string runtime_dir;            // where the rings are
  std::vector<CameraStatus> cameras;  // in config order
};

struct MqttMessage {
  std::string topic;
  std::string payload;  // empty + retained: deletes the retained message (and an HA entity)
  bool retained = true;
};

// ---- topics
std::string status_topic(const MqttConfig& m);                                // <base>/status
std::string stats_topic(const MqttConfig& m);                                 // <base>/stats
std::string camera_topic(const MqttConfig& m, const std::string& camera);     // <base>/<cam>/state
std::string subscriber_topic(const MqttConfig& m, const std::string& camera,  // <base>/<cam>/
                             const std::string& sub);                         //  subscribers/<sub>
std::string snapshot_topic(const MqttConfig& m, const std::string& camera);   // <base>/<cam>/
                                                                              //  snapshot

// ---- states
// One subscriber as published: its counters, whether it is still attached, and its rate.
struct SubscriberReport {
  std::string topic_name;  // its name in topics and ids (sanitised; unique within the camera)
  cuframes_subscriber_stats_t stats{};
  int64_t now_ns = 0;  // when the stats were read (CLOCK_MONOTONIC, for idle_ms)
  bool connected = true;
  double fps = 0;
};

std::string service_stats_json(const MqttConfig& m, const ServiceSnapshot& s,
                               const std::optional<GpuStats>& gpu);
std::string camera_state_json(const CameraStatus& c);
// The fields of a camera that both the status file and its MQTT state carry, into an open object.
void write_camera_fields(cfcommon::Json& w, const CameraStatus& c);
std::string subscriber_state_json(const SubscriberReport& r);

// Follows a camera's subscribers from one report to the next: gives each a stable topic name
// (its own, or "<name>_<slot>" while another attached subscriber has the same name), works out
// its fps between reports, and reports it once more (connected: false) when it has gone.
class SubscriberTracker {
 public:
  std::vector<SubscriberReport> update(const std::vector<cuframes_subscriber_stats_t>& now,
                                       int64_t now_ns);
  // Every topic name ever reported (they keep their Home Assistant entities).
  const std::set<std::string>& names() const { return names_; }

 private:
  struct Track {
    std::string topic_name;
    cuframes_subscriber_stats_t last{};
  };
  // By (slot, attach time): one attachment of one subscriber.
  std::map<std::pair<uint32_t, int64_t>, Track> live_;
  std::set<std::string> names_;
  cfcommon::SubscriberRates rates_;  // fps between reports
};

// ---- Home Assistant discovery (configs at <prefix>/<component>/<node_id>/<object_id>/config)
struct Discovery {
  std::string object_id;  // == unique_id
  MqttMessage message;
};
// The service's own device and entities (GPU ones only when `with_gpu`).
std::vector<Discovery> service_discovery(const MqttConfig& m, bool with_gpu);
// A camera's device and entities (its image entity when m.snapshot_interval is not 0).
std::vector<Discovery> camera_discovery(const MqttConfig& m, const std::string& camera);
// A subscriber's entities, on its camera's device.
std::vector<Discovery> subscriber_discovery(const MqttConfig& m, const std::string& camera,
                                            const std::string& sub);
// The object ids the service could ever announce for itself (kept by the stale-config sweep).
bool is_service_object_id(const MqttConfig& m, std::string_view object_id);
// The discovery topic prefix of this node: "<prefix>/" ... "/<node_id>/".
std::string discovery_topic(const MqttConfig& m, std::string_view component,
                            std::string_view object_id);

}  // namespace cfsvc
