// Subscriber rates between two samples of a ring's subscriber table: each subscriber of the new
// sample is matched with the same one in the previous sample (the same table entry and attach
// time: one attachment of one subscriber), and its frames per second between the two worked out.
// Used by `cuframes stat --watch` and the service's MQTT subscriber states. Not installed.
#ifndef CUFRAMES_COMMON_SUBSCRIBER_RATES_H_
#define CUFRAMES_COMMON_SUBSCRIBER_RATES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "cuframes/cuframes.h"

namespace cfcommon {

// Counts per second from `before` to `now` over dt_s seconds: nullopt when dt_s <= 0, 0 when the
// counter went back (another publisher, a restarted count).
std::optional<double> per_second(uint64_t now, uint64_t before, double dt_s);

class SubscriberRates {
 public:
  // The rates of the subscribers in `now` (sampled at now_ns, CLOCK_MONOTONIC), one per entry in
  // its order: frames per second since the previous update, nullopt for one that was not in it
  // (and for all of them at the first update, or when no time has passed). `now` becomes the
  // previous sample.
  std::vector<std::optional<double>> update(const std::vector<cuframes_subscriber_stats_t>& now,
                                            int64_t now_ns);
  // Forgets the previous sample (the ring was made anew: none of its subscribers are the same).
  void clear() { last_.clear(); }

 private:
  using Key = std::pair<uint32_t, int64_t>;  // table entry, attach time
  std::map<Key, uint64_t> last_;             // frames received, by subscriber
  int64_t last_ns_ = 0;
};

}  // namespace cfcommon

#endif  // CUFRAMES_COMMON_SUBSCRIBER_RATES_H_
