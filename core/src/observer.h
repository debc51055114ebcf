// Observer: a read-only view of a publisher's ring and subscriber table, for monitors and the
// CLI. It takes no table entry and holds no frames.
#pragma once

#include <memory>

#include "client.h"

namespace cuframes::detail {

class Observer {
 public:
  static Status Create(const char* key, const char* runtime_dir, int connect_timeout_ms,
                       std::unique_ptr<Observer>* out);
  // PUBLISHER_GONE once the publisher has hung up.
  Status read(cuframes_ring_status_t* ring, cuframes_subscriber_stats_t* subs, size_t cap,
              size_t* count);

 private:
  // How long read() waits for the publisher to refresh the subscribers' counters.
  static constexpr int kRefreshWaitMs = 250;
  Observer() = default;
  void refresh();
  UniqueFd sock_;
  uint64_t token_ = 0;
  Mapping header_map_, table_map_;
  RingInfo info_;
  bool gone_ = false;
};

// Reads the ring status and the attached subscribers (up to cap into subs; *count gets how many
// there are) from mapped header and table: the subscribers' counters and holds as the publisher
// last copied them (at every claim of a slot; Observer::read asks for a fresh copy first), except
// a subscriber's own (own, at own_index), read live. Shared by observers and subscribers.
void read_ring(const RingHeader& h, const TableHeader& t, const RingInfo& info,
               cuframes_ring_status_t* ring, cuframes_subscriber_stats_t* subs, size_t cap,
               size_t* count, const SubscriberEntry* own = nullptr, uint32_t own_index = 0);

}  // namespace cuframes::detail
