#include "logging.h"

extern "C" {
#include <libavutil/log.h>
}
#include <spdlog/sinks/stdout_color_sinks.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "cuframes/cuframes.h"

namespace cfsvc {
namespace {

// Camera loggers, so that a new level reaches the running cameras.
std::mutex g_loggers_mu;
std::vector<std::weak_ptr<spdlog::logger>> g_loggers;

int ffmpeg_level(spdlog::level::level_enum l) {
  return l <= spdlog::level::debug ? AV_LOG_VERBOSE
         : l == spdlog::level::off ? AV_LOG_QUIET
                                   : AV_LOG_WARNING;
}

// The levels by name, in log_level_names() order.
constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::trace, spdlog::level::debug,
                                                 spdlog::level::info,  spdlog::level::warn,
                                                 spdlog::level::err,   spdlog::level::off};

spdlog::level::level_enum parse_level(const std::string& s, bool* ok) {
  *ok = true;
  if (s == "warning") return spdlog::level::warn;
  const std::vector<std::string_view>& names = log_level_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (s == names[i]) return kLevels[i];
  }
  *ok = false;
  return spdlog::level::info;
}

void cuframes_to_spdlog(void*, cuframes_log_level_t level, const char* message) {
  switch (level) {
    case CUFRAMES_LOG_DEBUG:
      spdlog::debug("libcuframes: {}", message);
      break;
    case CUFRAMES_LOG_INFO:
      spdlog::info("libcuframes: {}", message);
      break;
    case CUFRAMES_LOG_WARN:
      spdlog::warn("libcuframes: {}", message);
      break;
    default:
      spdlog::error("libcuframes: {}", message);
      break;
  }
}

// FFmpeg is chatty on bad streams. One cause is one call site (its format string) in one
// FFmpeg context (a camera's demuxer or decoder): each is throttled as LogThrottle does, and
// whatever gets through is capped at 20 lines a second for the whole process (the lines held
// back by the cap are counted in a line of their own).
struct FfmpegCauses {
  static constexpr size_t kMaxCauses = 1024;  // then forgotten, all at once
  static constexpr int kPerSecond = 20;
  std::mutex mu;
  std::map<std::pair<const void*, const char*>, std::unique_ptr<LogThrottle>> causes;
  int64_t second = 0;   // the current one-second window
  int lines = 0;        // lines let through in it
  uint64_t capped = 0;  // lines held back by the cap in it
};

void ffmpeg_to_spdlog(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > av_log_get_level()) return;
  // FFmpeg writes some lines in parts: one line is what ends in a newline.
  // Its cause is where its first part comes from.
  thread_local std::string partial;
  thread_local int partial_prefix = 1;
  thread_local const char* first_fmt = nullptr;
  char line[1024];
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &partial_prefix);
  if (partial.empty()) first_fmt = fmt;
  fmt = first_fmt;
  partial += line;
  if (partial.size() > 4096) partial.resize(4096);
  if (partial.empty() || (partial.back() != '\n' && partial.back() != '\r')) return;
  std::string msg = std::move(partial);
  partial.clear();
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  if (msg.empty()) return;
  static FfmpegCauses g;
  const int64_t now = cuframes_now_ns();
  std::string suffix;
  uint64_t capped_before = 0;
  {
    std::lock_guard<std::mutex> lock(g.mu);
    if (g.causes.size() >= FfmpegCauses::kMaxCauses) g.causes.clear();
    auto& cause = g.causes[{avcl, fmt}];
    if (!cause) cause = std::make_unique<LogThrottle>();
    if (!cause->allow(now, &suffix)) return;
    if (now / 1000000000 != g.second) {
      g.second = now / 1000000000;
      g.lines = 0;
      capped_before = std::exchange(g.capped, 0);
    }
    if (++g.lines > FfmpegCauses::kPerSecond) {
      ++g.capped;
      return;
    }
  }
  if (capped_before > 0) {
    spdlog::warn("ffmpeg: {} more lines in one second were held back (at most {} a second)",
                 capped_before, FfmpegCauses::kPerSecond);
  }
  msg += suffix;
  if (level <= AV_LOG_ERROR) {
    spdlog::error("ffmpeg: {}", msg);
  } else if (level <= AV_LOG_WARNING) {
    spdlog::warn("ffmpeg: {}", msg);
  } else {
    spdlog::debug("ffmpeg: {}", msg);
  }
}

}  // namespace

bool LogThrottle::allow(int64_t now_ns, std::string* suffix) {
  std::lock_guard<std::mutex> lock(mu_);
  if (logged_ && now_ns - last_ns_ < every_ns_) {
    ++held_;
    return false;
  }
  suffix->clear();
  if (held_ > 0) {
    *suffix = " (repeated " + std::to_string(held_) + (held_ == 1 ? " time)" : " times)");
  }
  logged_ = true;
  last_ns_ = now_ns;
  held_ = 0;
  return true;
}

void init_logging(const std::string& level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("cuframes-service", sink);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::info);
  cuframes_set_log_handler(&cuframes_to_spdlog, nullptr, CUFRAMES_LOG_INFO);
  av_log_set_callback(&ffmpeg_to_spdlog);
  set_log_level(level);
}

bool set_log_level(const std::string& level) {
  bool ok;
  auto l = parse_level(level, &ok);
  if (!ok) return false;
  spdlog::set_level(l);
  av_log_set_level(ffmpeg_level(l));
  std::lock_guard<std::mutex> lock(g_loggers_mu);
  std::erase_if(g_loggers, [](const auto& w) { return w.expired(); });
  for (const auto& w : g_loggers) {
    if (auto logger = w.lock()) logger->set_level(l);
  }
  return true;
}

const std::vector<std::string_view>& log_level_names() {
  static const std::vector<std::string_view> names = {"trace", "debug", "info",
                                                      "warn",  "error", "off"};
  return names;
}

bool valid_log_level(const std::string& level) {
  bool ok;
  parse_level(level, &ok);
  return ok;
}

std::shared_ptr<spdlog::logger> camera_logger(const std::string& camera) {
  // A sink of its own: a logger's pattern belongs to its sinks. (Console sinks share one
  // process-wide mutex, so lines never interleave.)
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(camera, sink);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [cam %n] %v");
  logger->set_level(spdlog::get_level());
  logger->flush_on(spdlog::level::info);
  std::lock_guard<std::mutex> lock(g_loggers_mu);
  g_loggers.push_back(logger);
  return logger;
}

}  // namespace cfsvc
