#include "observer.h"

#include <bit>
#include <cstdio>
#include <cstring>

#include <sys/socket.h>

#include "clock.h"
#include "runtime_dir.h"
#include "socket.h"

namespace cuframes::detail {

Status Observer::Create(const char* key, const char* runtime_dir, int connect_timeout_ms,
                        std::unique_ptr<Observer>* out) {
  std::string ctx = std::string("observe '") + (key ? key : "(null)") + "'";
  CUFRAMES_RETURN_IF_ERROR(std::move(check_key(key)).context(ctx));
  if (connect_timeout_ms < -1) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s: connect_timeout_ms %d", ctx.c_str(),
               connect_timeout_ms);
  }
  std::string dir;
  CUFRAMES_RETURN_IF_ERROR(
      std::move(resolve_runtime_dir(runtime_dir, &dir, DirUse::kLook)).context(ctx));
  Connection c;
  CUFRAMES_RETURN_IF_ERROR(
      std::move(connect_to_publisher(dir, key, make_hello(Role::kObserver), connect_timeout_ms, &c))
          .context(ctx));
  if (c.fds.size() != 2)
    return Err(CUFRAMES_ERR_SHM, "%s: handshake carried %zu fds", ctx.c_str(), c.fds.size());
  std::unique_ptr<Observer> o(new Observer);
  CUFRAMES_RETURN_IF_ERROR(
      std::move(map_ring_header(c.fds[0].get(), c.welcome, &o->header_map_, &o->info_))
          .context(ctx));
  CUFRAMES_RETURN_IF_ERROR(
      std::move(map_table(c.fds[1].get(), c.welcome, o->info_, &o->table_map_)).context(ctx));
  o->sock_ = std::move(c.sock);
  *out = std::move(o);
  return Ok();
}

void read_ring(const RingHeader& h, const TableHeader& t, const RingInfo& info,
               cuframes_ring_status_t* ring, cuframes_subscriber_stats_t* subs, size_t cap,
               size_t* count, const SubscriberEntry* own, uint32_t own_index) {
  const uint64_t newest = newest_seq(h.newest.load(std::memory_order_acquire));
  size_t n = 0;
  uint64_t held = 0;
  for (uint32_t i = 0; i < info.max_subscribers; ++i) {
    const EntryView& v = *table_view(&t, i);
    const bool mine = own != nullptr && i == own_index;
    const uint64_t holds = (mine ? rd(own->holds) : rd(v.holds)) & info.slot_mask();
    cuframes_subscriber_stats_t s;
    if (!read_entry(v, mine ? own->counters : v.counters, holds, i, newest, info.slot_mask(), &s)) {
      continue;
    }
    held |= holds;
    if (n < cap) subs[n] = s;
    ++n;
  }
  if (count) *count = n;
  if (ring == nullptr) return;
  cuframes_ring_status_t r{};
  std::snprintf(r.key, sizeof r.key, "%s", info.key.c_str());
  r.epoch = info.epoch;
  r.publisher_pid = info.publisher_pid;
  r.memory = info.memory;
  r.device = info.device;
  r.policy = info.policy;
  r.geometry = info.geometry;
  r.created_ns = info.created_ns;
  r.max_subscribers = info.max_subscribers;
  r.has_packet_ring = info.packet_ring_bytes != 0;
  const char* transport = "unknown";
  switch (info.handle_type) {
    case HandleType::kMemfd:
      transport = "memfd";
      break;
    case HandleType::kCudaVmmFd:
      transport = "cuda-vmm-fd";
      break;
    case HandleType::kCudaIpc:
      transport = "cuda-ipc";
      break;
    case HandleType::kNone:
      break;
  }
  std::snprintf(r.transport, sizeof r.transport, "%s", transport);
  cuframes_publisher_stats_t& s = r.stats;
  s.published = rd(h.published);
  s.dropped = rd(h.dropped);
  s.blocked_ns = rd(h.blocked_ns);
  s.last_seq = newest;
  s.slots = info.slot_count;
  s.held_slots = static_cast<uint32_t>(std::popcount(held));
  s.subscribers = rd(h.subscribers);
  s.waiting = rd(h.publisher_waiting);
  s.last_publish_ns = rd(h.last_publish_ns);
  *ring = r;
}

void Observer::refresh() {
  // Ask the publisher to copy the subscribers' counters into the table, and wait (briefly) for
  // its answer. If it does not come, the copy we read is older: never an error.
  if (!drain_notes(sock_.get())) {
    gone_ = true;
    return;
  }
  const Note ask{kNoteRefresh, 0, ++token_};
  if (::send(sock_.get(), &ask, sizeof ask, MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof ask) return;
  const int64_t deadline = deadline_after(kRefreshWaitMs);
  for (;;) {
    short revents = 0;
    if (!poll_in(sock_.get(), ms_until(deadline), &revents).ok() || revents == 0) return;
    Note got{};
    size_t len = 0;
    RecvResult r;
    if (!recv_message(sock_.get(), &got, sizeof got, &len, nullptr, &r).ok() ||
        r == RecvResult::kClosed) {
      gone_ = true;
      return;
    }
    if (r == RecvResult::kMessage && len == sizeof got && got.kind == kNoteRefresh &&
        got.seq == token_) {
      return;
    }
  }
}

Status Observer::read(cuframes_ring_status_t* ring, cuframes_subscriber_stats_t* subs, size_t cap,
                      size_t* count) {
  if (!gone_) refresh();
  if (gone_)
    return Err(CUFRAMES_ERR_PUBLISHER_GONE, "publisher of '%s' is gone", info_.key.c_str());
  read_ring(*header_map_.as<const RingHeader>(), *table_map_.as<const TableHeader>(), info_, ring,
            subs, cap, count);
  return Ok();
}

}  // namespace cuframes::detail
