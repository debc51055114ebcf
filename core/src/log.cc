#include "log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "enums.h"

namespace cuframes::detail {
namespace {

cuframes_log_level_t level_from_env() {
  const char* v = std::getenv("CUFRAMES_LOG_LEVEL");
  if (v == nullptr) return CUFRAMES_LOG_WARN;
  if (!std::strcmp(v, "debug")) return CUFRAMES_LOG_DEBUG;
  if (!std::strcmp(v, "info")) return CUFRAMES_LOG_INFO;
  if (!std::strcmp(v, "error")) return CUFRAMES_LOG_ERROR;
  if (!std::strcmp(v, "off")) return CUFRAMES_LOG_OFF;
  return CUFRAMES_LOG_WARN;
}

struct Sink {
  std::mutex mu;
  cuframes_log_fn fn = nullptr;
  void* user = nullptr;
  std::atomic<int> min_level{level_from_env()};
};

Sink& sink() {
  static Sink* s = new Sink;  // never destroyed: usable from threads during exit
  return *s;
}

const char* level_name(cuframes_log_level_t l) {
  switch (l) {
    case CUFRAMES_LOG_DEBUG:
      return "debug";
    case CUFRAMES_LOG_INFO:
      return "info";
    case CUFRAMES_LOG_WARN:
      return "warning";
    case CUFRAMES_LOG_ERROR:
      return "error";
    default:
      return "?";
  }
}

}  // namespace

bool log_enabled(cuframes_log_level_t level) {
  return level >= sink().min_level.load(std::memory_order_relaxed);
}

void log(cuframes_log_level_t level, const char* fmt, ...) {
  if (!log_enabled(level)) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  // The handler runs outside the lock, so it may log or replace itself.
  Sink& s = sink();
  cuframes_log_fn fn;
  void* user;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    fn = s.fn;
    user = s.user;
  }
  if (fn != nullptr) {
    fn(user, level, buf);
  } else {
    std::fprintf(stderr, "cuframes %s: %s\n", level_name(level), buf);
  }
}

}  // namespace cuframes::detail

extern "C" void cuframes_set_log_handler(cuframes_log_fn fn, void* user,
                                         cuframes_log_level_t min_level) {
  auto& s = cuframes::detail::sink();
  std::lock_guard<std::mutex> lock(s.mu);
  s.fn = fn;
  s.user = user;
  // As the caller's bits (enums.h), never loaded as the enum.
  s.min_level.store(static_cast<int>(cuframes::detail::raw_enum(min_level)),
                    std::memory_order_relaxed);
}
