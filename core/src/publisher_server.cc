// The publisher's server: its service thread (Publisher::serve) and everything that runs on it,
// the contract of which is in publisher_server.h. The producer's side (the ring, slot selection,
// publishing) is publisher.cc.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "clock.h"
#include "enums.h"
#include "log.h"
#include "publisher.h"
#include "publisher_server.h"
#include "runtime_dir.h"
#include "socket.h"

namespace cuframes::detail {

void Publisher::serve() {
  std::vector<Pending> pending;
  std::vector<pollfd> pfds;
  char scratch[256];
  for (;;) {
    pfds.clear();
    pfds.push_back({stop_fd_.get(), POLLIN, 0});
    int timeout = 1000;
    if (accept_paused_until_ > now_ns()) {
      pfds.push_back({-1, 0, 0});  // ignored by poll
      timeout = std::min(timeout, ms_until(accept_paused_until_));
    } else {
      pfds.push_back({listen_fd_.get(), POLLIN, 0});
    }
    for (const Pending& p : pending) {
      pfds.push_back({p.fd.get(), POLLIN, 0});
      timeout = std::min(timeout, ms_until(p.deadline_ns));
    }
    const size_t peer_base = pfds.size();
    for (const Peer& p : peers_) pfds.push_back({p.fd.get(), POLLIN, 0});
    const size_t notes_index = pfds.size();
    pfds.push_back({notes_wake_.get(), POLLIN, 0});
    int rc = ::poll(pfds.data(), pfds.size(), timeout);
    if (rc < 0) {
      if (errno == EINTR) continue;
      log(CUFRAMES_LOG_ERROR, "'%s': poll failed: %s", key_.c_str(), std::strerror(errno));
      ::poll(nullptr, 0, 100);  // do not spin on a persistent failure
      continue;
    }
    if (pfds[0].revents != 0) return;
    if (pfds[notes_index].revents != 0) send_deferred_notes();  // first: frames wait on them

    // Peers: any message from a subscriber means "I dropped a hold while you were waiting"; a
    // refresh Note from an observer asks for fresh counters (answered once per pass, below);
    // anything else after the handshake is ignored; a hang-up detaches the peer.
    bool woke = false, refresh = false;
    for (size_t i = peers_.size(); i-- > 0;) {
      if (pfds[peer_base + i].revents == 0) continue;
      bool closed = false;
      for (int n = 0; n < 64; ++n) {
        size_t len = 0;
        RecvResult r;
        Status st = recv_message(peers_[i].fd.get(), scratch, sizeof scratch, &len, nullptr, &r);
        if (!st.ok() || r == RecvResult::kClosed) {
          closed = true;
          break;
        }
        if (r == RecvResult::kWouldBlock) break;
        if (peers_[i].role == Role::kSubscriber) woke = true;
        Note note;
        if (peers_[i].role == Role::kObserver && len == sizeof note) {
          std::memcpy(&note, scratch, sizeof note);
          if (note.kind == kNoteRefresh) {
            peers_[i].refresh_token = note.seq;
            refresh = true;
          }
        }
      }
      if (closed || (pfds[peer_base + i].revents & (POLLHUP | POLLERR))) remove_peer(i);
    }
    if (woke) wake_producer();
    if (refresh) answer_refreshes();

    for (size_t i = pending.size(); i-- > 0;) {
      bool done = false;
      if (pfds[2 + i].revents != 0) {
        done = handshake(pending[i]);
      } else if (now_ns() >= pending[i].deadline_ns) {
        log(CUFRAMES_LOG_WARN, "'%s': a peer connected but sent no hello within %d ms; closed",
            key_.c_str(), kHandshakeTimeoutMs);
        done = true;
      }
      if (done) pending.erase(pending.begin() + static_cast<long>(i));
    }

    if (pfds[1].revents & POLLIN) accept_peers(&pending);
  }
}

void Publisher::accept_peers(std::vector<Pending>* pending) {
  for (;;) {
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of fds or memory: stop accepting for a while instead of spinning on the backlog.
        accept_paused_until_ = now_ns() + int64_t{kAcceptPauseMs} * 1000000;
        warn_limited(&last_accept_warn_ns_,
                     "'%s': cannot accept connections: %s; retrying in %d ms", key_.c_str(),
                     std::strerror(err), kAcceptPauseMs);
      } else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != ECONNABORTED) {
        warn_limited(&last_accept_warn_ns_, "'%s': accept: %s", key_.c_str(), std::strerror(err));
      }
      return;
    }
    if (pending->size() >= kMaxPending) {
      // Full: first the connections whose Hello is already here (many peers connecting at once,
      // 64 subscribers at a publisher's start), so that only a silent one is ever dropped.
      std::erase_if(*pending, [this](Pending& p) { return handshake(p); });
    }
    if (pending->size() >= kMaxPending) {
      // Silent connections must not lock everyone out: the oldest one makes room.
      warn_limited(&last_pending_warn_ns_,
                   "'%s': %zu handshakes pending; dropping the oldest silent connection",
                   key_.c_str(), pending->size());
      pending->erase(pending->begin());
    }
    pending->push_back({std::move(fd), now_ns() + int64_t{kHandshakeTimeoutMs} * 1000000});
  }
}

void Publisher::warn_limited(int64_t* last_ns, const char* fmt, ...) {
  const int64_t now = now_ns();
  if (*last_ns != 0 && now - *last_ns < 1000000000) return;  // at most one a second
  *last_ns = now;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  log(CUFRAMES_LOG_WARN, "%s", buf);
}

void Publisher::reply_error(int fd, cuframes_status_t code, const std::string& message) {
  Welcome w{};
  w.pre = {kWireMagic, kProtocolVersion, static_cast<uint32_t>(MsgType::kWelcome)};
  w.status = code;
  std::snprintf(w.message, sizeof w.message, "%s", message.c_str());
  (void)send_message(fd, &w, sizeof w, nullptr, 0);
}

bool Publisher::handshake(Pending& p) {
  alignas(8) uint8_t buf[sizeof(Hello) + 64];
  size_t len = 0;
  RecvResult r;
  Status st = recv_message(p.fd.get(), buf, sizeof buf, &len, nullptr, &r);
  if (!st.ok()) {
    log(CUFRAMES_LOG_WARN, "'%s': handshake: %s", key_.c_str(), st.message().c_str());
    return true;
  }
  if (r == RecvResult::kWouldBlock) return false;  // spurious wake-up: keep waiting
  if (r == RecvResult::kClosed) return true;       // the peer left (a liveness probe, say)
  Preamble pre{};
  if (len < sizeof pre) {
    log(CUFRAMES_LOG_WARN, "'%s': garbage handshake (%zu bytes); closed", key_.c_str(), len);
    return true;
  }
  std::memcpy(&pre, buf, sizeof pre);
  if (pre.magic != kWireMagic) {
    log(CUFRAMES_LOG_WARN, "'%s': garbage handshake (bad magic); closed", key_.c_str());
    return true;
  }
  if (pre.version != kProtocolVersion) {
    std::string msg = strformat("publisher '%s' speaks protocol v%u, the peer v%u", key_.c_str(),
                                kProtocolVersion, pre.version);
    log(CUFRAMES_LOG_WARN, "%s; refused", msg.c_str());
    reply_error(p.fd.get(), CUFRAMES_ERR_PROTOCOL_MISMATCH, msg);
    return true;
  }
  if (pre.type != static_cast<uint32_t>(MsgType::kHello) || len != sizeof(Hello)) {
    log(CUFRAMES_LOG_WARN, "'%s': malformed hello (%zu bytes); closed", key_.c_str(), len);
    reply_error(p.fd.get(), CUFRAMES_ERR_SHM, "malformed hello");
    return true;
  }
  Hello hello;
  std::memcpy(&hello, buf, sizeof hello);
  st = answer_hello(hello, &p.fd);
  if (!st.ok()) {
    log(CUFRAMES_LOG_WARN, "'%s': refused a peer (pid %d): %s", key_.c_str(), hello.pid,
        st.message().c_str());
    if (p.fd.valid()) reply_error(p.fd.get(), st.code(), st.message());
    return true;
  }
  return true;
}

Status Publisher::answer_hello(const Hello& hello, UniqueFd* fd) {
  Welcome w{};
  w.pre = {kWireMagic, kProtocolVersion, static_cast<uint32_t>(MsgType::kWelcome)};
  w.status = CUFRAMES_OK;
  w.epoch = epoch_;
  w.header_bytes = header_region_.map.size();
  w.table_bytes = table_region_.map.size();
  w.ring_bytes = ring_->size();
  w.handle_type = static_cast<uint32_t>(ring_->handle_type());
  w.entry_index = UINT32_MAX;
  int fds[kMaxFdsPerMessage];
  size_t nfds = 0;
  fds[nfds++] = header_region_.fd.get();

  const Role role = static_cast<Role>(hello.role);
  int entry = -1;
  UniqueFd entry_fd;  // subscribers: their own entry's memfd, closed here once sent
  switch (role) {
    case Role::kSubscriber: {
      if (!known_mode(hello.mode)) {
        return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown subscriber mode %u", hello.mode);
      }
      std::string_view name(hello.name, strnlen(hello.name, sizeof hello.name));
      if (name.size() == sizeof hello.name || !valid_name(name)) {
        return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "invalid consumer name");
      }
      const uint64_t used = active_entries_.load(std::memory_order_relaxed);
      for (uint32_t i = 0; i < max_subscribers_; ++i) {
        if ((used & (1ull << i)) == 0) {
          entry = static_cast<int>(i);
          break;
        }
      }
      if (entry < 0) {
        return Err(CUFRAMES_ERR_SHM, "subscriber table of '%s' is full (%u entries)", key_.c_str(),
                   max_subscribers_);
      }
      const auto index = static_cast<uint32_t>(entry);
      EntryView& v = *table_view(table_, index);
      const uint32_t gen = rd(v.generation) + 1;
      CUFRAMES_RETURN_IF_ERROR(make_entry(index, gen, &entry_fd));
      wr(v.pid, hello.pid);
      wr(v.mode, hello.mode);
      wr(v.attached_ns, now_ns());
      store_string(v.name, name);
      wr(v.holds, 0);
      copy_counters(entry_of(index)->counters, &v.counters);
      v.generation.store(gen, std::memory_order_release);
      v.state.store(kEntryActive, std::memory_order_release);
      const uint64_t bit = 1ull << entry;
      if (hello.mode == CUFRAMES_MODE_STRICT_ORDER) {
        strict_entries_.fetch_or(bit, std::memory_order_relaxed);
      } else {
        strict_entries_.fetch_and(~bit, std::memory_order_relaxed);
      }
      active_entries_.fetch_or(bit, std::memory_order_seq_cst);
      wr(hdr_->subscribers, rd(hdr_->subscribers) + 1);
      w.entry_index = index;
      w.entry_generation = gen;
      w.entry_bytes = kEntryRegionBytes;
      fds[nfds++] = table_region_.fd.get();
      fds[nfds++] = entry_fd.get();
      if (ring_->export_fd() >= 0) fds[nfds++] = ring_->export_fd();
      ring_->export_handle(w.handle, sizeof w.handle);
      break;
    }
    case Role::kObserver:
      if (count_peers(Role::kObserver) >= kMaxObservers) {
        return Err(CUFRAMES_ERR_SHM, "'%s' already has %zu observers", key_.c_str(), kMaxObservers);
      }
      fds[nfds++] = table_region_.fd.get();
      break;
    case Role::kPacketReader:
      if (count_peers(Role::kPacketReader) >= kMaxPacketReaders) {
        return Err(CUFRAMES_ERR_SHM, "'%s' already has %zu packet readers", key_.c_str(),
                   kMaxPacketReaders);
      }
      if (!packets_) {
        return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "publisher '%s' has no packet ring",
                   key_.c_str());
      }
      w.packet_bytes = packets_->region_bytes();
      fds[nfds++] = packets_->fd();
      break;
    default:
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown role %u", hello.role);
  }
  w.nfds = static_cast<uint32_t>(nfds);
  {
    // The welcome goes out and the peer joins the notify list under one lock: no note can come
    // before the welcome, and no frame published after the welcome goes unannounced.
    std::lock_guard<std::mutex> lock(peers_mu_);
    Status st = send_message(fd->get(), &w, sizeof w, fds, nfds);
    if (!st.ok()) {
      if (entry >= 0) release_entry(Peer{UniqueFd(), role, entry});
      return st;
    }
    peers_.push_back(Peer{std::move(*fd), role, entry});
  }
  log(CUFRAMES_LOG_INFO, "'%s': %s attached (pid %d%s%s)", key_.c_str(),
      role == Role::kSubscriber ? "subscriber"
      : role == Role::kObserver ? "observer"
                                : "packet reader",
      hello.pid, role == Role::kSubscriber ? ", " : "",
      role == Role::kSubscriber ? hello.name : "");
  return Ok();
}

size_t Publisher::count_peers(Role role) const {
  size_t n = 0;
  for (const Peer& p : peers_) n += p.role == role;
  return n;
}

void Publisher::release_entry(const Peer& peer) {
  if (peer.entry < 0) return;
  const auto index = static_cast<uint32_t>(peer.entry);
  EntryView& v = *table_view(table_, index);
  active_entries_.fetch_and(~(1ull << index), std::memory_order_seq_cst);
  v.state.store(kEntryFree, std::memory_order_release);
  v.generation.store(rd(v.generation) + 1, std::memory_order_release);
  wr(v.holds, 0);
  drop_entry(index);
  wr(hdr_->subscribers, rd(hdr_->subscribers) - 1);
  wake_producer();  // it may be blocked in STRICT_WAIT on this subscriber's holds
}

SubscriberEntry* Publisher::entry_of(uint32_t index) const {
  return reinterpret_cast<SubscriberEntry*>(entries_window_.data() + index * kEntryWindowStride);
}

Status Publisher::make_entry(uint32_t index, uint32_t generation, UniqueFd* fd) {
  SharedRegion r;
  CUFRAMES_RETURN_IF_ERROR(create_shared_region("cuframes-subscriber", kEntryRegionBytes, &r));
  CUFRAMES_RETURN_IF_ERROR(seal_shared_region(r, /*readonly_for_peers=*/false));
  void* at = entry_of(index);
  if (::mmap(at, kEntryRegionBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r.fd.get(),
             0) == MAP_FAILED) {
    return ErrnoErr(CUFRAMES_ERR_OUT_OF_MEMORY, errno, "mapping subscriber entry %u", index);
  }
  SubscriberEntry& e = *entry_of(index);
  const uint64_t newest = newest_seq(hdr_->newest.load(std::memory_order_acquire));
  wr(e.version, kProtocolVersion);
  wr(e.index, index);
  wr(e.epoch, epoch_);
  wr(e.generation, generation);
  wr(e.cursor, newest > 0 ? newest - 1 : 0);  // STRICT_ORDER starts at the newest frame
  wr(e.waiting, 1);                           // Notes until it says otherwise
  wr(e.counters.v[kHeartbeatNs], now_ns());
  e.magic.store(kEntryMagic, std::memory_order_release);
  *fd = std::move(r.fd);  // r's own mapping goes; the window keeps the memory mapped
  return Ok();
}

void Publisher::drop_entry(uint32_t index) {
  // A zero page replaces the subscriber's memfd in one step: a producer still reading this
  // entry's holds sees either, never an unmapped address. The subscriber's own mapping (and any
  // frames it holds) are its own business from here on.
  if (::mmap(entry_of(index), kEntryWindowStride, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
    log(CUFRAMES_LOG_WARN, "'%s': unmapping subscriber entry %u: %s (kept until reused)",
        key_.c_str(), index, std::strerror(errno));
  }
}

void Publisher::answer_refreshes() {
  mirror_entries();
  for (Peer& p : peers_) {
    if (p.refresh_token == 0) continue;
    const Note done{kNoteRefresh, 0, p.refresh_token};
    (void)::send(p.fd.get(), &done, sizeof done, MSG_DONTWAIT | MSG_NOSIGNAL);
    p.refresh_token = 0;
  }
}

void Publisher::mirror_entries() {
  uint64_t active = active_entries_.load(std::memory_order_acquire);
  while (active != 0) {
    const auto index = static_cast<uint32_t>(std::countr_zero(active));
    active &= active - 1;
    const SubscriberEntry& e = *entry_of(index);
    EntryView& v = *table_view(table_, index);
    wr(v.holds, rd(e.holds) & slot_mask_);
    copy_counters(e.counters, &v.counters);
  }
  wr(table_->mirrored_ns, now_ns());
}

void Publisher::wake_producer() {
  if (!eventfd_signal(producer_wake_.get())) {
    log(CUFRAMES_LOG_ERROR, "'%s': wake-up write failed: %s", key_.c_str(), std::strerror(errno));
  }
}

// Service thread: the wake-ups notify() left to it. It alone changes peers_, so it reads the list
// without peers_mu_ (the producer's notify() is never held up by these sends).
void Publisher::send_deferred_notes() {
  if (!eventfd_drain(notes_wake_.get())) {
    log(CUFRAMES_LOG_ERROR, "'%s': wake-up read failed: %s", key_.c_str(), std::strerror(errno));
  }
  const uint64_t mask = deferred_notes_.exchange(0, std::memory_order_acquire);
  const Note note{1, 0, deferred_seq_.load(std::memory_order_relaxed)};
  for (const Peer& p : peers_) {
    if (p.role == Role::kSubscriber && p.entry >= 0 && (mask >> p.entry & 1) != 0) {
      (void)::send(p.fd.get(), &note, sizeof note, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  }
}

void Publisher::remove_peer(size_t index) {
  Peer& peer = peers_[index];
  if (peer.entry >= 0) {
    const auto index = static_cast<uint32_t>(peer.entry);
    const SubscriberEntry& e = *entry_of(index);
    cuframes_subscriber_stats_t s{};
    read_entry(*table_view(table_, index), e.counters, rd(e.holds), index, 0, slot_mask_, &s);
    log(CUFRAMES_LOG_INFO, "'%s': subscriber '%s' (pid %d) detached, %u held frames reclaimed",
        key_.c_str(), s.name, s.pid, s.held_frames);
  }
  release_entry(peer);
  std::lock_guard<std::mutex> lock(peers_mu_);
  peers_.erase(peers_.begin() + static_cast<long>(index));
}

}  // namespace cuframes::detail
