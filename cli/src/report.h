// What list and stat print about a ring and its subscribers, as text and as JSON.
#ifndef CUFRAMES_CLI_REPORT_H_
#define CUFRAMES_CLI_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuframes/cuframes.h"
#include "json.h"

namespace cli {

// "host", "cuda:0": cuframes_memory_name() and the device. (The policy and the mode print as
// cuframes_policy_name() and cuframes_mode_name() give them.)
std::string memory_name(cuframes_memory_t memory, int32_t device);

// Frames per second published since the ring was created (nullopt while too young to say).
std::optional<double> average_fps(const cuframes_ring_status_t& ring, int64_t now_ns);

// A ring's status as a JSON object. `fps` is the rate over `window_s` (stat --watch), nullopt
// when there is no window.
cfcommon::Json ring_json(const cuframes_ring_status_t& ring, int64_t now_ns,
                         std::optional<double> fps, std::optional<double> window_s);
// One subscriber as a JSON object; `fps` as above.
cfcommon::Json subscriber_json(const cuframes_subscriber_stats_t& s, int64_t now_ns,
                               std::optional<double> fps);

// The ring as "name  value" lines.
std::string ring_text(const cuframes_ring_status_t& ring, int64_t now_ns, std::optional<double> fps,
                      std::optional<double> window_s);
// The subscriber table; fps (one per subscriber, nullopt entries allowed) adds an FPS column.
std::string subscribers_text(const std::vector<cuframes_subscriber_stats_t>& subs, int64_t now_ns,
                             const std::optional<std::vector<std::optional<double>>>& fps);

}  // namespace cli

#endif  // CUFRAMES_CLI_REPORT_H_
