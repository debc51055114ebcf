#include "client.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "clock.h"
#include "geometry.h"
#include "runtime_dir.h"
#include "socket.h"

namespace cuframes::detail {
namespace {

constexpr int kReplyTimeoutMs = 5000;
constexpr int kMaxBackoffMs = 100;
constexpr uint64_t kMaxHeaderBytes = 1 << 20;

// Sleeps until the runtime dir changes or up to wait_ms, whichever comes first.
void wait_for_dir_change(int inotify_fd, int wait_ms, int* backoff_ms) {
  if (inotify_fd < 0) {
    ::poll(nullptr, 0, wait_ms);
    *backoff_ms = std::min(*backoff_ms * 2, kMaxBackoffMs);
    return;
  }
  pollfd p{inotify_fd, POLLIN, 0};
  if (::poll(&p, 1, wait_ms) > 0) {
    char buf[4096];
    while (::read(inotify_fd, buf, sizeof buf) > 0) {
    }
    *backoff_ms = 1;  // something appeared: retry quickly (bind comes a moment before listen)
  } else {
    *backoff_ms = std::min(*backoff_ms * 2, kMaxBackoffMs);
  }
}

}  // namespace

Hello make_hello(Role role) {
  Hello h{};
  h.pre = {kWireMagic, kProtocolVersion, static_cast<uint32_t>(MsgType::kHello)};
  h.role = static_cast<uint32_t>(role);
  h.pid = ::getpid();
  return h;
}

Status connect_to_publisher(const std::string& dir, const std::string& key, const Hello& hello,
                            int timeout_ms, Connection* out) {
  const std::string path = socket_path(dir, key);
  const int64_t deadline = deadline_after(timeout_ms);
  UniqueFd inotify;
  bool watching = false;
  int backoff = 1;
  UniqueFd sock;
  for (;;) {
    bool retry = false;
    Status st = connect_unix(path, &sock, &retry);
    if (st.ok()) break;
    if (!retry) return st;
    const int left = deadline == INT64_MAX ? -1 : ms_until(deadline);
    if (left == 0) {
      struct stat d;
      const bool dir_there = ::stat(dir.c_str(), &d) == 0;
      return Err(CUFRAMES_ERR_PUBLISHER_GONE, "no publisher for '%s' in %s%s%s", key.c_str(),
                 dir.c_str(), dir_there ? "" : " (no such directory)",
                 timeout_ms > 0 ? strformat(" within %d ms", timeout_ms).c_str() : "");
    }
    if (!watching) {
      if (!inotify.valid()) inotify.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
      if (inotify.valid() && ::inotify_add_watch(inotify.get(), dir.c_str(),
                                                 IN_CREATE | IN_MOVED_TO | IN_ATTRIB) >= 0) {
        watching = true;
        continue;  // retry once now that the watch is in place: no appearance is missed
      }
      // No watch: the directory is not there yet (a publisher makes it), or no inotify. Poll,
      // and try the watch again next time.
    }
    wait_for_dir_change(watching ? inotify.get() : -1, left < 0 ? backoff : std::min(left, backoff),
                        &backoff);
  }

  CUFRAMES_RETURN_IF_ERROR(send_message(sock.get(), &hello, sizeof hello, nullptr, 0));
  // The reply has a limit of its own: connect_timeout_ms bounds waiting for a publisher to
  // appear, not a live one answering (which may be briefly busy).
  short revents = 0;
  CUFRAMES_RETURN_IF_ERROR(poll_in(sock.get(), kReplyTimeoutMs, &revents));
  if (revents == 0) {
    return Err(CUFRAMES_ERR_SHM, "publisher '%s' did not answer the handshake within %d ms",
               key.c_str(), kReplyTimeoutMs);
  }
  alignas(8) uint8_t buf[sizeof(Welcome) + 64];
  size_t len = 0;
  RecvResult r;
  std::vector<UniqueFd> fds;
  CUFRAMES_RETURN_IF_ERROR(recv_message(sock.get(), buf, sizeof buf, &len, &fds, &r));
  if (r == RecvResult::kClosed) {
    return Err(CUFRAMES_ERR_PUBLISHER_GONE, "publisher '%s' hung up during the handshake",
               key.c_str());
  }
  if (r != RecvResult::kMessage) {
    return Err(CUFRAMES_ERR_SHM, "publisher '%s': no handshake reply", key.c_str());
  }
  Preamble pre{};
  if (len < sizeof pre) return Err(CUFRAMES_ERR_SHM, "malformed reply (%zu bytes)", len);
  std::memcpy(&pre, buf, sizeof pre);
  if (pre.magic != kWireMagic) {
    return Err(CUFRAMES_ERR_PROTOCOL_MISMATCH, "%s is not a cuframes publisher socket",
               path.c_str());
  }
  if (pre.version != kProtocolVersion) {
    return Err(CUFRAMES_ERR_PROTOCOL_MISMATCH,
               "publisher '%s' speaks protocol v%u, this library v%u", key.c_str(), pre.version,
               kProtocolVersion);
  }
  if (pre.type != static_cast<uint32_t>(MsgType::kWelcome) || len != sizeof(Welcome)) {
    return Err(CUFRAMES_ERR_SHM, "malformed reply from publisher '%s' (%zu bytes)", key.c_str(),
               len);
  }
  Welcome w;
  std::memcpy(&w, buf, sizeof w);
  w.message[sizeof w.message - 1] = '\0';
  if (w.status != CUFRAMES_OK) {
    const cuframes_status_t code = w.status > 0 && w.status <= CUFRAMES_ERR_OVERRUN
                                       ? static_cast<cuframes_status_t>(w.status)
                                       : CUFRAMES_ERR_SHM;
    std::string msg;
    for (const char* c = w.message; *c; ++c) msg.push_back(*c >= 0x20 && *c < 0x7f ? *c : '?');
    return Status(code, "publisher refused: " + msg);
  }
  if (fds.size() != w.nfds) {
    return Err(CUFRAMES_ERR_SHM, "publisher '%s' sent %zu fds, announced %u", key.c_str(),
               fds.size(), w.nfds);
  }
  out->sock = std::move(sock);
  out->welcome = w;
  out->fds = std::move(fds);
  return Ok();
}

Status map_ring_header(int fd, const Welcome& w, Mapping* map, RingInfo* info) {
  if (w.header_bytes < sizeof(RingHeader) || w.header_bytes > kMaxHeaderBytes) {
    return Err(CUFRAMES_ERR_SHM, "ring header of %llu bytes announced",
               static_cast<unsigned long long>(w.header_bytes));
  }
  Mapping m;
  CUFRAMES_RETURN_IF_ERROR(map_peer_region(fd, w.header_bytes, false, "ring header", &m));
  const RingHeader& h = *m.as<const RingHeader>();
  if (h.magic.load(std::memory_order_acquire) != kRingMagic) {
    return Err(CUFRAMES_ERR_SHM, "ring header: bad magic");
  }
  if (rd(h.version) != kProtocolVersion) {
    return Err(CUFRAMES_ERR_PROTOCOL_MISMATCH, "ring header is protocol v%u, this library v%u",
               rd(h.version), kProtocolVersion);
  }
  RingInfo in;
  in.epoch = rd(h.epoch);
  if (in.epoch != w.epoch) return Err(CUFRAMES_ERR_SHM, "ring header: epoch mismatch");
  in.key = load_string(h.key, CUFRAMES_KEY_MAX);
  in.publisher_pid = rd(h.publisher_pid);
  in.created_ns = rd(h.created_ns);
  in.geometry = read_geometry(h);
  if (!geometry_consistent(in.geometry)) {
    return Err(CUFRAMES_ERR_SHM, "ring header: inconsistent geometry (%s %ux%u pitch %u)",
               cuframes_format_name(in.geometry.format), in.geometry.width, in.geometry.height,
               in.geometry.pitch_y);
  }
  in.slot_count = rd(h.slot_count);
  in.max_subscribers = rd(h.max_subscribers);
  in.slot_stride = rd(h.slot_stride);
  in.ring_bytes = rd(h.ring_bytes);
  in.packet_ring_bytes = rd(h.packet_ring_bytes);
  if (in.slot_count < 2 || in.slot_count > kMaxSlots) {
    return Err(CUFRAMES_ERR_SHM, "ring header: slot count %u", in.slot_count);
  }
  if (in.max_subscribers < 1 || in.max_subscribers > kMaxSubscribers) {
    return Err(CUFRAMES_ERR_SHM, "ring header: subscriber table of %u", in.max_subscribers);
  }
  if (in.slot_stride < in.geometry.frame_bytes || in.slot_stride % kSlotAlignment != 0 ||
      in.slot_stride > (1ull << 40) || in.ring_bytes != in.slot_stride * in.slot_count ||
      in.ring_bytes != w.ring_bytes) {
    return Err(CUFRAMES_ERR_SHM, "ring header: slot stride %llu / ring of %llu bytes do not fit",
               static_cast<unsigned long long>(in.slot_stride),
               static_cast<unsigned long long>(in.ring_bytes));
  }
  uint32_t mem = rd(h.memory_kind);
  if (mem != CUFRAMES_MEMORY_HOST && mem != CUFRAMES_MEMORY_CUDA) {
    return Err(CUFRAMES_ERR_SHM, "ring header: memory kind %u", mem);
  }
  in.memory = static_cast<cuframes_memory_t>(mem);
  in.handle_type = static_cast<HandleType>(rd(h.handle_type));
  if (rd(h.handle_type) != w.handle_type) {
    return Err(CUFRAMES_ERR_SHM, "ring header: handle type differs from the handshake");
  }
  in.device = rd(h.device);
  uint32_t policy = rd(h.policy);
  if (policy != CUFRAMES_POLICY_DROP && policy != CUFRAMES_POLICY_STRICT_WAIT) {
    return Err(CUFRAMES_ERR_SHM, "ring header: policy %u", policy);
  }
  in.policy = static_cast<cuframes_policy_t>(policy);
  *map = std::move(m);
  *info = std::move(in);
  return Ok();
}

Status map_table(int fd, const Welcome& w, const RingInfo& info, Mapping* map) {
  const uint64_t want = table_region_bytes(info.max_subscribers);
  if (w.table_bytes < want) {
    return Err(CUFRAMES_ERR_SHM, "subscriber table of %llu bytes, need %llu",
               static_cast<unsigned long long>(w.table_bytes),
               static_cast<unsigned long long>(want));
  }
  Mapping m;
  CUFRAMES_RETURN_IF_ERROR(map_peer_region(fd, want, false, "subscriber table", &m));
  const TableHeader& t = *m.as<const TableHeader>();
  if (t.magic.load(std::memory_order_acquire) != kTableMagic) {
    return Err(CUFRAMES_ERR_SHM, "subscriber table: bad magic");
  }
  if (rd(t.version) != kProtocolVersion) {
    return Err(CUFRAMES_ERR_PROTOCOL_MISMATCH, "subscriber table is protocol v%u, this library v%u",
               rd(t.version), kProtocolVersion);
  }
  if (rd(t.entries) != info.max_subscribers || rd(t.epoch) != info.epoch) {
    return Err(CUFRAMES_ERR_SHM, "subscriber table header does not match the ring");
  }
  *map = std::move(m);
  return Ok();
}

Status map_own_entry(int fd, const Welcome& w, const RingInfo& info, const TableHeader& table,
                     Mapping* map) {
  if (w.entry_index >= info.max_subscribers) {
    return Err(CUFRAMES_ERR_SHM, "subscriber entry %u out of range (table of %u)", w.entry_index,
               info.max_subscribers);
  }
  const EntryView& v = *table_view(&table, w.entry_index);
  if (v.state.load(std::memory_order_acquire) != kEntryActive ||
      v.generation.load(std::memory_order_acquire) != w.entry_generation) {
    return Err(CUFRAMES_ERR_SHM, "table entry %u was not set up for us", w.entry_index);
  }
  if (w.entry_bytes != kEntryRegionBytes) {
    return Err(CUFRAMES_ERR_SHM, "subscriber entry of %llu bytes announced, want %llu",
               static_cast<unsigned long long>(w.entry_bytes),
               static_cast<unsigned long long>(kEntryRegionBytes));
  }
  Mapping m;
  CUFRAMES_RETURN_IF_ERROR(map_peer_region(fd, kEntryRegionBytes, true, "subscriber entry", &m));
  const SubscriberEntry& e = *m.as<const SubscriberEntry>();
  if (e.magic.load(std::memory_order_acquire) != kEntryMagic) {
    return Err(CUFRAMES_ERR_SHM, "subscriber entry: bad magic");
  }
  if (rd(e.version) != kProtocolVersion) {
    return Err(CUFRAMES_ERR_PROTOCOL_MISMATCH, "subscriber entry is protocol v%u, this library v%u",
               rd(e.version), kProtocolVersion);
  }
  if (rd(e.index) != w.entry_index || rd(e.epoch) != info.epoch ||
      rd(e.generation) != w.entry_generation) {
    return Err(CUFRAMES_ERR_SHM, "subscriber entry %u was not set up for us", w.entry_index);
  }
  *map = std::move(m);
  return Ok();
}

bool drain_notes(int sock) {
  char buf[64];
  for (int i = 0; i < 4096; ++i) {
    size_t len = 0;
    RecvResult r;
    Status st = recv_message(sock, buf, sizeof buf, &len, nullptr, &r);
    if (!st.ok() || r == RecvResult::kClosed) return false;
    if (r == RecvResult::kWouldBlock) return true;
  }
  return true;
}

}  // namespace cuframes::detail
