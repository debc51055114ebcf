// Latency percentiles without keeping every sample: a log-scale histogram (16 buckets per
// doubling, so a percentile is within about 4.5% of the true value).
#ifndef CUFRAMES_CLI_LATENCY_H_
#define CUFRAMES_CLI_LATENCY_H_

#include <array>
#include <cstdint>
#include <optional>

namespace cli {

class LatencyHistogram {
 public:
  void add(int64_t ns);
  uint64_t count() const { return count_; }
  int64_t max() const { return max_; }
  // The q-quantile (0 < q <= 1), nullopt without samples.
  std::optional<int64_t> percentile(double q) const;
  void clear() { *this = LatencyHistogram(); }

 private:
  static constexpr int kPerDoubling = 16;
  static constexpr int kBuckets = 64 * kPerDoubling;  // up to 2^64 ns
  static int bucket_of(int64_t ns);
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  int64_t max_ = 0;
};

}  // namespace cli

#endif  // CUFRAMES_CLI_LATENCY_H_
