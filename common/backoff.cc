#include "backoff.h"

#include <algorithm>

namespace cfcommon {

std::chrono::milliseconds jittered(std::chrono::milliseconds d) {
  thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.8, 1.2);
  return std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(d.count()) * factor(rng)));
}

std::chrono::milliseconds Backoff::next() {
  const std::chrono::milliseconds now = jittered(next_);
  next_ = std::min(next_ * 2, max_);
  return now;
}

}  // namespace cfcommon
