#include "observer.h"

#include <bit>
#include <cstdio>
#include <cstring>

#include "runtime_dir.h"

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
  CUFRAMES_RETURN_IF_ERROR(std::move(resolve_runtime_dir(runtime_dir, &dir)).context(ctx));
  Connection c;
  CUFRAMES_RETURN_IF_ERROR(std::move(connect_to_publisher(dir, key, make_hello(Role::kObserver),
                                                          connect_timeout_ms, &c))
                               .context(ctx));
  if (c.fds.size() != 2) return Err(CUFRAMES_ERR_SHM, "%s: handshake carried %zu fds", ctx.c_str(),
                                    c.fds.size());
  std::unique_ptr<Observer> o(new Observer);
  CUFRAMES_RETURN_IF_ERROR(
      std::move(map_ring_header(c.fds[0].get(), c.welcome, &o->header_map_, &o->info_))
          .context(ctx));
  CUFRAMES_RETURN_IF_ERROR(
      std::move(map_table(c.fds[1].get(), c.welcome, o->info_, false, &o->table_map_))
          .context(ctx));
  o->sock_ = std::move(c.sock);
  *out = std::move(o);
  return Ok();
}

void read_ring(const RingHeader& h, const TableHeader& t, const RingInfo& info,
               cuframes_ring_status_t* ring, cuframes_subscriber_stats_t* subs, size_t cap,
               size_t* count) {
  const uint64_t newest = newest_seq(h.newest.load(std::memory_order_acquire));
  uint64_t held = 0;
  size_t n = 0;
  for (uint32_t i = 0; i < info.max_subscribers; ++i) {
    cuframes_subscriber_stats_t s;
    if (!read_entry(*table_entry(&t, i), i, newest, info.slot_mask(), &s)) continue;
    held |= rd(table_entry(&t, i)->holds) & info.slot_mask();
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
    case HandleType::kMemfd: transport = "memfd"; break;
    case HandleType::kCudaVmmFd: transport = "cuda-vmm-fd"; break;
    case HandleType::kCudaIpc: transport = "cuda-ipc"; break;
    case HandleType::kNone: break;
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
  s.waiting = rd(t.publisher_waiting);
  s.last_publish_ns = rd(h.last_publish_ns);
  *ring = r;
}

Status Observer::read(cuframes_ring_status_t* ring, cuframes_subscriber_stats_t* subs, size_t cap,
                      size_t* count) {
  if (!gone_ && !drain_notes(sock_.get())) gone_ = true;
  if (gone_) return Err(CUFRAMES_ERR_PUBLISHER_GONE, "publisher of '%s' is gone", info_.key.c_str());
  read_ring(*header_map_.as<const RingHeader>(), *table_map_.as<const TableHeader>(), info_, ring,
            subs, cap, count);
  return Ok();
}

}  // namespace cuframes::detail
