#include "logging.h"

extern "C" {
#include <libavutil/log.h>
}
#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
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


spdlog::level::level_enum parse_level(const std::string& s, bool* ok) {
  *ok = true;
  if (s == "trace") return spdlog::level::trace;
  if (s == "debug") return spdlog::level::debug;
  if (s == "info") return spdlog::level::info;
  if (s == "warn" || s == "warning") return spdlog::level::warn;
  if (s == "error") return spdlog::level::err;
  if (s == "off") return spdlog::level::off;
  *ok = false;
  return spdlog::level::info;
}

void cuframes_to_spdlog(void*, cuframes_log_level_t level, const char* message) {
  switch (level) {
    case CUFRAMES_LOG_DEBUG: spdlog::debug("libcuframes: {}", message); break;
    case CUFRAMES_LOG_INFO: spdlog::info("libcuframes: {}", message); break;
    case CUFRAMES_LOG_WARN: spdlog::warn("libcuframes: {}", message); break;
    default: spdlog::error("libcuframes: {}", message); break;
  }
}

// FFmpeg is chatty on bad streams: at most 20 lines a second reach the log.
void ffmpeg_to_spdlog(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > av_log_get_level()) return;
  static std::atomic<int64_t> window{0};
  static std::atomic<int> count{0};
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (window.exchange(now) != now) count = 0;
  if (++count > 20) return;
  char line[1024];
  int prefix = 1;
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &prefix);
  std::string msg(line);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  if (msg.empty()) return;
  if (level <= AV_LOG_ERROR) {
    spdlog::error("ffmpeg: {}", msg);
  } else if (level <= AV_LOG_WARNING) {
    spdlog::warn("ffmpeg: {}", msg);
  } else {
    spdlog::debug("ffmpeg: {}", msg);
  }
}

}  // namespace

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
