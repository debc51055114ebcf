// CLOCK_MONOTONIC helpers.
#pragma once

#include <time.h>

#include <cstdint>

namespace cuframes::detail {

inline int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Milliseconds from now until deadline_ns, rounded up, never negative.
inline int ms_until(int64_t deadline_ns) {
  int64_t left = deadline_ns - now_ns();
  if (left <= 0) return 0;
  int64_t ms = (left + 999999) / 1000000;
  return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

// Deadline for a timeout in ms; -1 stays "never" (INT64_MAX).
inline int64_t deadline_after(int timeout_ms) {
  return timeout_ms < 0 ? INT64_MAX : now_ns() + int64_t{timeout_ms} * 1000000;
}

}  // namespace cuframes::detail
