// Service logging: spdlog to stderr, one logger per camera ("[cam parking] ..."), with
// libcuframes' and FFmpeg's messages routed into it.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cfsvc {

// Repeated log lines from one cause are rate-limited: the first goes out, the repeats within
// `every` are only counted, and the next line let through says how many were held back since
// the last one ("... (repeated 312 times)"). One LogThrottle per cause; thread-safe.
class LogThrottle {
 public:
  static constexpr std::chrono::seconds kEvery{60};  // docs/architecture.md, Logging

  explicit LogThrottle(std::chrono::milliseconds every = kEvery)
      : every_ns_(static_cast<int64_t>(every.count()) * 1000000) {}
  // Whether a line of this cause goes out at now_ns (CLOCK_MONOTONIC). When it does, *suffix
  // is " (repeated N times)" for the N lines held back since the last one, else "".
  bool allow(int64_t now_ns, std::string* suffix);

 private:
  std::mutex mu_;
  const int64_t every_ns_;
  bool logged_ = false;  // a line went out already
  int64_t last_ns_ = 0;  // when
  uint64_t held_ = 0;    // lines held back since
};

// Sets up the default logger and routes libcuframes and FFmpeg logging; level by name.
void init_logging(const std::string& level);
bool set_log_level(const std::string& level);  // false for an unknown name
bool valid_log_level(const std::string& level);
// The level names, from the most verbose to off (log.level, --log-level; "warning" is also taken).
const std::vector<std::string_view>& log_level_names();
// A logger that prefixes messages with the camera's name.
std::shared_ptr<spdlog::logger> camera_logger(const std::string& camera);

}  // namespace cfsvc
