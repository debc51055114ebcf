#include "rate_meter.h"

#include <algorithm>

namespace cfsvc {

void RateMeter::add(int64_t t_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  times_.push_back(t_ns);
  while (!times_.empty() && (times_.front() <= t_ns - kWindowNs || times_.size() > kMaxFrames)) {
    times_.pop_front();
  }
}

void RateMeter::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  times_.clear();
}

double RateMeter::rate(int64_t now_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto first = std::upper_bound(times_.begin(), times_.end(), now_ns - kWindowNs);
  const auto n = times_.end() - first;
  if (n < 2 || now_ns <= *first) return 0;
  return static_cast<double>(n - 1) * 1e9 / static_cast<double>(now_ns - *first);
}

}  // namespace cfsvc
