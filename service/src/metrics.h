// The Prometheus text exposition (format 0.0.4) of the service's figures: what the MQTT monitor
// reports (docs/mqtt.md) as metrics with the labels `camera` and `subscriber`, counters as
// counters (`_total`). Metric names and types: docs/http.md. A pure function: testable alone.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "health.h"
#include "nvml.h"
#include "snapshot.h"

namespace cfsvc {

std::string prometheus_metrics(const ServiceSnapshot& s, const std::optional<GpuStats>& gpu,
                               const std::map<std::string, SnapshotCounters>& snapshots);

// The `subscriber` label of each of a camera's subscribers: its name, or "<name>_<slot>" where
// several attached subscribers share a name (labels must tell the series apart).
std::vector<std::string> subscriber_labels(const std::vector<cuframes_subscriber_stats_t>& subs);

}  // namespace cfsvc
