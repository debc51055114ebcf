#include "subscriber_rates.h"

namespace cfcommon {

std::optional<double> per_second(uint64_t now, uint64_t before, double dt_s) {
  if (!(dt_s > 0)) return std::nullopt;
  return now >= before ? static_cast<double>(now - before) / dt_s : 0.0;
}

std::vector<std::optional<double>> SubscriberRates::update(
    const std::vector<cuframes_subscriber_stats_t>& now, int64_t now_ns) {
  const double dt_s = static_cast<double>(now_ns - last_ns_) / 1e9;
  std::vector<std::optional<double>> rates;
  rates.reserve(now.size());
  std::map<Key, uint64_t> next;
  for (const cuframes_subscriber_stats_t& s : now) {
    const Key key{s.slot_index, s.attached_ns};
    auto it = last_.find(key);
    rates.push_back(it == last_.end() ? std::nullopt
                                      : per_second(s.frames_received, it->second, dt_s));
    next[key] = s.frames_received;
  }
  last_ = std::move(next);
  last_ns_ = now_ns;
  return rates;
}

}  // namespace cfcommon
