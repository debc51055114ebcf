#include "latency.h"

#include <algorithm>
#include <cmath>

namespace cli {

int LatencyHistogram::bucket_of(int64_t ns) {
  if (ns < 1) return 0;
  const int b = static_cast<int>(std::log2(static_cast<double>(ns)) * kPerDoubling);
  return std::clamp(b, 0, kBuckets - 1);
}

void LatencyHistogram::add(int64_t ns) {
  if (ns < 0) ns = 0;  // a clock step; count it as immediate
  ++buckets_[static_cast<size_t>(bucket_of(ns))];
  ++count_;
  max_ = std::max(max_, ns);
}

std::optional<int64_t> LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return std::nullopt;
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[static_cast<size_t>(b)];
    if (seen >= rank) {
      // The bucket's geometric middle, never above the largest sample.
      const double mid = std::exp2((b + 0.5) / kPerDoubling);
      return std::min(max_, static_cast<int64_t>(mid));
    }
  }
  return max_;
}

}  // namespace cli
