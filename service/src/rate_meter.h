// A camera's frame rate as reported: computed when it is read, over the recent past, so a
// report never repeats a stale number. When frames stop it falls to 0 within the window.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>

namespace cfsvc {

class RateMeter {
 public:
  static constexpr int64_t kWindowNs = 2'000'000'000;  // docs/configuration.md: "the last 2 s"

  // A frame at t_ns (CLOCK_MONOTONIC, non-decreasing). Called by one thread.
  void add(int64_t t_ns);
  // Forgets every frame (a new connection starts counting afresh).
  void clear();
  // Frames per second at now_ns over the frames of (now - window, now]: (n - 1) intervals over
  // the time from the first of them to now, 0 with fewer than two. Any thread.
  double rate(int64_t now_ns) const;

 private:
  static constexpr size_t kMaxFrames = 4096;  // a burst at connect stays bounded
  mutable std::mutex mu_;
  std::deque<int64_t> times_;  // oldest first
};

}  // namespace cfsvc
