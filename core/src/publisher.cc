#include "publisher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "clock.h"
#include "color.h"
#include "enums.h"
#include "geometry.h"
#include "log.h"
#include "publisher_server.h"
#include "runtime_dir.h"
#include "socket.h"

namespace cuframes::detail {
namespace {

constexpr int kWaitSliceMs = 100;  // STRICT_WAIT re-checks at least this often

uint64_t random_epoch() {
  uint64_t v = 0;
  while (v == 0) {
    if (::getrandom(&v, sizeof v, 0) != sizeof v) v = static_cast<uint64_t>(now_ns()) ^ ::getpid();
  }
  return v;
}

// Takes the key's lock file (an OFD write lock, released by the kernel when we die).
// Whether path still names the file open as fd (nobody unlinked or replaced it).
bool still_named(const std::string& path, int fd) {
  struct stat named, held;
  return ::lstat(path.c_str(), &named) == 0 && ::fstat(fd, &held) == 0 &&
         named.st_dev == held.st_dev && named.st_ino == held.st_ino;
}

Status lock_key(const std::string& dir, const std::string& key, UniqueFd* out) {
  std::string path = lock_path(dir, key);
  // A publisher removes its lock file at a clean stop (still holding the lock): a file we open
  // just before that and lock just after is no longer the key's. Then we start over.
  for (int attempt = 0;; ++attempt) {
    // O_NOFOLLOW: the directory is shared with a group; a planted symlink must not redirect us.
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660));
    if (!fd.valid()) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "opening %s", path.c_str());
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Err(CUFRAMES_ERR_SHM, "%s is not a regular file", path.c_str());
    }
    // Past the umask, so publishers of the same group can take turns on the key.
    if (st.st_uid == ::geteuid()) (void)::fchmod(fd.get(), 0660);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd.get(), F_OFD_SETLK, &fl) != 0) {
      if (errno == EAGAIN || errno == EACCES) {
        char buf[32] = {};
        ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
        int pid = n > 0 ? std::atoi(buf) : 0;
        return Err(CUFRAMES_ERR_SHM, "key '%s' is already published (pid %d) in %s", key.c_str(),
                   pid, dir.c_str());
      }
      return ErrnoErr(CUFRAMES_ERR_SHM, errno, "locking %s", path.c_str());
    }
    if (!still_named(path, fd.get())) {
      if (attempt < 100) continue;
      return Err(CUFRAMES_ERR_SHM, "%s keeps changing under us", path.c_str());
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) != 0 ||
        ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      log(CUFRAMES_LOG_DEBUG, "could not write pid into %s", path.c_str());
    }
    *out = std::move(fd);
    return Ok();
  }
}

Status validate_options(const cuframes_publisher_options_t& o) {
  // The enums first, as the caller's bits (enums.h): nothing may load them before.
  if (!known_format(raw_enum(o.format))) return unknown_format(raw_enum(o.format));
  if (!known_memory(raw_enum(o.memory))) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown memory %d",
               static_cast<int>(raw_enum(o.memory)));
  }
  if (!known_policy(raw_enum(o.policy))) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown policy %d",
               static_cast<int>(raw_enum(o.policy)));
  }
  if (o.slots < 2 || o.slots > kMaxSlots) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "slots %u is outside 2..%u", o.slots, kMaxSlots);
  }
  if (o.max_subscribers < 1 || o.max_subscribers > kMaxSubscribers) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "max_subscribers %u is outside 1..%u",
               o.max_subscribers, kMaxSubscribers);
  }
  if (o.wait_timeout_ms < -1) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "wait_timeout_ms %d (want -1 or >= 0)",
               o.wait_timeout_ms);
  }
  if (o.cuda_device < 0) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "cuda_device %d is negative", o.cuda_device);
  }
  if (o.packet_ring_bytes != 0) {
    CUFRAMES_RETURN_IF_ERROR(check_packet_ring_options(o.packet_ring_bytes, o.packet_ring_entries));
  }
  return Ok();
}

}  // namespace

Status Publisher::Create(const char* key, const cuframes_publisher_options_t& options,
                         std::unique_ptr<Publisher>* out) {
  std::unique_ptr<Publisher> p(new Publisher);
  Status st = p->init(key, options);
  if (!st.ok()) {
    return std::move(st).context(std::string("publish '") + (key ? key : "(null)") + "'");
  }
  *out = std::move(p);
  return Ok();
}

Status Publisher::init(const char* key, const cuframes_publisher_options_t& o) {
  CUFRAMES_RETURN_IF_ERROR(check_key(key));
  key_ = key;
  CUFRAMES_RETURN_IF_ERROR(validate_options(o));
  CUFRAMES_RETURN_IF_ERROR(memory_backend(o.memory, &backend_));
  CUFRAMES_RETURN_IF_ERROR(compute_geometry(o.format, o.width, o.height, o.pitch,
                                            backend_->pitch_alignment(), &geometry_));
  policy_ = o.policy;
  wait_timeout_ms_ = o.wait_timeout_ms;
  device_ = o.cuda_device;
  slots_ = o.slots;
  slot_mask_ = slots_ == 64 ? ~0ull : (1ull << slots_) - 1;
  max_subscribers_ = o.max_subscribers;
  slot_stride_ = align_up(geometry_.frame_bytes, kSlotAlignment);
  const uint64_t ring_bytes = slot_stride_ * slots_;

  CUFRAMES_RETURN_IF_ERROR(resolve_runtime_dir(o.runtime_dir, &dir_));
  CUFRAMES_RETURN_IF_ERROR(lock_key(dir_, key_, &lock_fd_));
  epoch_ = random_epoch();

  // The frame memory first: it is the allocation most likely to fail.
  CUFRAMES_RETURN_IF_ERROR(backend_->allocate(ring_bytes, device_, &ring_));

  CUFRAMES_RETURN_IF_ERROR(
      create_shared_region("cuframes-header", header_region_bytes(), &header_region_));
  hdr_ = header_region_.map.as<RingHeader>();
  RingHeader& h = *hdr_;
  wr(h.version, kProtocolVersion);
  wr(h.header_bytes, header_region_bytes());
  wr(h.epoch, epoch_);
  wr(h.publisher_pid, ::getpid());
  wr(h.created_ns, now_ns());
  store_string(h.key, key_);
  write_geometry(h, geometry_);
  wr(h.slot_stride, slot_stride_);
  wr(h.ring_bytes, ring_bytes);
  wr(h.slot_count, slots_);
  wr(h.max_subscribers, max_subscribers_);
  wr(h.memory_kind, backend_->kind());
  wr(h.handle_type, static_cast<uint32_t>(ring_->handle_type()));
  wr(h.device, device());
  wr(h.policy, policy_);
  wr(h.packet_ring_bytes, o.packet_ring_bytes);
  h.magic.store(kRingMagic, std::memory_order_release);
  CUFRAMES_RETURN_IF_ERROR(seal_shared_region(header_region_, /*readonly_for_peers=*/true));

  CUFRAMES_RETURN_IF_ERROR(
      create_shared_region("cuframes-table", table_region_bytes(max_subscribers_), &table_region_));
  table_ = table_region_.map.as<TableHeader>();
  wr(table_->version, kProtocolVersion);
  wr(table_->entries, max_subscribers_);
  wr(table_->epoch, epoch_);
  table_->magic.store(kTableMagic, std::memory_order_release);
  CUFRAMES_RETURN_IF_ERROR(seal_shared_region(table_region_, /*readonly_for_peers=*/true));

  // Address space for every subscriber's entry, zero pages until one attaches (entry()).
  void* window = ::mmap(nullptr, kEntryWindowStride * max_subscribers_, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (window == MAP_FAILED) return ErrnoErr(CUFRAMES_ERR_OUT_OF_MEMORY, errno, "entry window");
  entries_window_ = Mapping(window, kEntryWindowStride * max_subscribers_);

  if (o.packet_ring_bytes != 0) {
    CUFRAMES_RETURN_IF_ERROR(
        PacketRingWriter::Create(o.packet_ring_bytes, o.packet_ring_entries, epoch_, &packets_));
  }

  producer_wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  notes_wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!producer_wake_.valid() || !stop_fd_.valid() || !notes_wake_.valid()) {
    return ErrnoErr(CUFRAMES_ERR_SHM, errno, "eventfd");
  }

  // Everything is in place: open the door. We hold the key's lock, so a socket file left here
  // belongs to a dead publisher.
  const std::string sock = socket_path(dir_, key_);
  if (::unlink(sock.c_str()) != 0 && errno != ENOENT) {
    const int err = errno;
    struct stat st;
    if ((err == EPERM || err == EACCES) && ::lstat(sock.c_str(), &st) == 0) {
      return Err(CUFRAMES_ERR_SHM,
                 "stale socket %s belongs to uid %u and cannot be removed by uid %u (the runtime "
                 "dir is sticky): run every publisher of a key as the same user, or remove it",
                 sock.c_str(), st.st_uid, ::geteuid());
    }
    return ErrnoErr(CUFRAMES_ERR_SHM, err, "removing stale socket %s", sock.c_str());
  }
  CUFRAMES_RETURN_IF_ERROR(listen_unix(sock, &listen_fd_, &socket_ino_));
  socket_bound_ = true;
  thread_ = std::thread(&Publisher::serve, this);
  log(CUFRAMES_LOG_INFO, "publishing '%s' (%s %ux%u, %u slots, %s) at %s", key_.c_str(),
      cuframes_format_name(geometry_.format), geometry_.width, geometry_.height, slots_,
      memory() == CUFRAMES_MEMORY_CUDA ? "cuda" : "host", sock.c_str());
  return Ok();
}

Publisher::~Publisher() {
  if (thread_.joinable()) {
    if (!eventfd_signal(stop_fd_.get())) {
      log(CUFRAMES_LOG_ERROR, "'%s': cannot stop the service thread: %s", key_.c_str(),
          std::strerror(errno));
    }
    thread_.join();
  }
  if (socket_bound_) {
    // Only our own socket: never one a later publisher of the key (or anyone else) put there.
    const std::string sock = socket_path(dir_, key_);
    struct stat st;
    if (::lstat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == socket_ino_) {
      ::unlink(sock.c_str());
    }
  }
  listen_fd_.reset();
  {
    std::lock_guard<std::mutex> lock(peers_mu_);
    peers_.clear();  // closing the sockets is the hang-up every peer sees
  }
  // The lock file goes too, while we still hold the lock, and only if it is still ours: a clean
  // stop leaves nothing behind (lock_key copes with a file unlinked under it). A publisher that
  // never got the lock has none to remove.
  if (lock_fd_.valid()) {
    const std::string path = lock_path(dir_, key_);
    if (still_named(path, lock_fd_.get())) ::unlink(path.c_str());
  }
}

// ---------------------------------------------------------------------------------------------
// Slot selection. A slot may be (re)written when no subscriber holds it, it is not the newest
// frame, it is not loaned, and (STRICT_WAIT) no STRICT_ORDER subscriber still has to read it.
// Claiming is a Dekker handshake with the subscribers' hold-then-recheck: we mark the slot
// claimed, then look at the holds again; a subscriber sets its hold, then re-reads the slot's seq.
// With both sides seq_cst, at least one of them sees the other and backs off.

uint64_t Publisher::held_mask() const {
  uint64_t active = active_entries_.load(std::memory_order_seq_cst);
  uint64_t m = 0;
  while (active != 0) {
    int i = std::countr_zero(active);
    active &= active - 1;
    m |= entry_of(static_cast<uint32_t>(i))->holds.load(std::memory_order_seq_cst);
  }
  return m & slot_mask_;
}

uint64_t Publisher::reserved_mask() const {
  uint64_t strict = active_entries_.load(std::memory_order_seq_cst) &
                    strict_entries_.load(std::memory_order_relaxed);
  if (strict == 0) return 0;
  uint64_t min_cursor = UINT64_MAX;
  while (strict != 0) {
    int i = std::countr_zero(strict);
    strict &= strict - 1;
    min_cursor = std::min(
        min_cursor, entry_of(static_cast<uint32_t>(i))->cursor.load(std::memory_order_seq_cst));
  }
  uint64_t m = 0;
  for (uint32_t s = 0; s < slots_; ++s) {
    if (slot_seq_[s] != kSeqEmpty && slot_seq_[s] > min_cursor) m |= 1ull << s;
  }
  return m;
}

uint64_t Publisher::held_mask_for_peers() {
  uint64_t active = active_entries_.load(std::memory_order_seq_cst);
  uint64_t m = 0;
  while (active != 0) {
    const auto i = static_cast<uint32_t>(std::countr_zero(active));
    active &= active - 1;
    const uint64_t h = entry_of(i)->holds.load(std::memory_order_seq_cst) & slot_mask_;
    wr(table_view(table_, i)->holds, h);  // the peers' view of the occupancy
    m |= h;
  }
  return m;
}

bool Publisher::try_claim(uint32_t* out) {
  uint64_t blocked = held_mask_for_peers() | loaned_;
  if (newest_slot_ < slots_) blocked |= 1ull << newest_slot_;
  if (policy_ == CUFRAMES_POLICY_STRICT_WAIT) blocked |= reserved_mask();
  uint64_t candidates = ~blocked & slot_mask_;
  while (candidates != 0) {
    // The slot with the oldest frame (empty ones first) keeps newer frames around longest.
    uint32_t best = UINT32_MAX;
    for (uint64_t c = candidates; c != 0; c &= c - 1) {
      uint32_t s = static_cast<uint32_t>(std::countr_zero(c));
      if (best == UINT32_MAX || slot_seq_[s] < slot_seq_[best]) best = s;
    }
    const uint64_t bit = 1ull << best;
    SlotState& st = hdr_->slots[best];
    st.seq.store(kSeqClaimBit | slot_seq_[best], std::memory_order_seq_cst);
    if (held_mask() & bit) {  // a subscriber took it meanwhile: it keeps the frame
      st.seq.store(slot_seq_[best], std::memory_order_seq_cst);
      candidates &= ~bit;
      continue;
    }
    st.seq.store(kSeqWriting, std::memory_order_seq_cst);
    slot_seq_[best] = kSeqEmpty;
    loaned_ |= bit;
    *out = best;
    return true;
  }
  return false;
}

Status Publisher::acquire_slot(uint32_t* slot, bool* dropped) {
  *dropped = false;
  if (try_claim(slot)) return Ok();
  if (policy_ == CUFRAMES_POLICY_DROP) {
    wr(hdr_->dropped, rd(hdr_->dropped) + 1);
    *dropped = true;
    return Ok();
  }
  const int64_t start = now_ns();
  const int64_t deadline = deadline_after(wait_timeout_ms_);
  hdr_->publisher_waiting.store(1, std::memory_order_seq_cst);
  bool got = false;
  for (;;) {
    if (try_claim(slot)) {
      got = true;
      break;
    }
    int left = deadline == INT64_MAX ? kWaitSliceMs : ms_until(deadline);
    if (left == 0) break;
    short revents = 0;
    Status st = poll_in(producer_wake_.get(), std::min(left, kWaitSliceMs), &revents);
    if (!st.ok()) {
      hdr_->publisher_waiting.store(0, std::memory_order_relaxed);
      return st;
    }
    if ((revents & POLLIN) && !eventfd_drain(producer_wake_.get())) {
      log(CUFRAMES_LOG_ERROR, "'%s': wake-up read failed: %s", key_.c_str(), std::strerror(errno));
    }
  }
  hdr_->publisher_waiting.store(0, std::memory_order_relaxed);
  wr(hdr_->blocked_ns, rd(hdr_->blocked_ns) + static_cast<uint64_t>(now_ns() - start));
  if (got) return Ok();
  wr(hdr_->dropped, rd(hdr_->dropped) + 1);
  return Err(CUFRAMES_ERR_FRAME_TIMEOUT,
             "no free slot within %d ms: %u of %u slots held by subscribers (STRICT_WAIT)",
             wait_timeout_ms_, static_cast<unsigned>(std::popcount(held_mask())), slots_);
}

Status Publisher::loan(uint32_t* slot) {
  bool dropped = false;
  CUFRAMES_RETURN_IF_ERROR(acquire_slot(slot, &dropped));
  if (dropped) {
    return Err(CUFRAMES_ERR_FRAME_TIMEOUT, "every slot is held by subscribers (DROP policy)");
  }
  return Ok();
}

Status Publisher::commit(uint32_t slot, int64_t pts_ns, void* stream,
                         cuframes_color_matrix_t matrix, cuframes_color_range_t range,
                         uint64_t* seq_out) {
  if (slot >= slots_ || (loaned_ & (1ull << slot)) == 0) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "slot %u is not loaned", slot);
  }
  Status st = ring_->finish_writes(stream);
  if (!st.ok()) {
    abandon(slot);
    return st;
  }
  const uint64_t seq = next_seq_++;
  const int64_t now = now_ns();
  SlotState& s = hdr_->slots[slot];
  wr(s.pts_ns, pts_ns);
  wr(s.publish_ns, now);
  wr(s.color_matrix, matrix);
  wr(s.color_range, range);
  s.seq.store(seq, std::memory_order_seq_cst);
  slot_seq_[slot] = seq;
  loaned_ &= ~(1ull << slot);
  newest_slot_ = slot;
  hdr_->newest.store(pack_newest(seq, slot), std::memory_order_seq_cst);
  wr(hdr_->published, rd(hdr_->published) + 1);
  wr(hdr_->last_publish_ns, now);
  notify(Role::kSubscriber, 1, seq);
  if (seq_out) *seq_out = seq;
  return Ok();
}

void Publisher::abandon(uint32_t slot) {
  if (slot >= slots_ || (loaned_ & (1ull << slot)) == 0) return;
  hdr_->slots[slot].seq.store(kSeqEmpty, std::memory_order_seq_cst);
  slot_seq_[slot] = kSeqEmpty;
  loaned_ &= ~(1ull << slot);
}

Status Publisher::publish(const cuframes_source_t& src, int64_t pts_ns, uint64_t* seq_out) {
  const cuframes_geometry_t& g = geometry_;
  const uint64_t row = uint64_t{g.width} * g.bytes_per_sample;
  for (uint32_t p = 0; p < g.num_planes; ++p) {
    if (src.planes[p] == nullptr) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "source plane %u is NULL", p);
    }
    if (src.pitches[p] < row) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
                 "source pitch %llu of plane %u is below the row "
                 "size %llu",
                 static_cast<unsigned long long>(src.pitches[p]), p,
                 static_cast<unsigned long long>(row));
    }
  }
  if (!known_memory(raw_enum(src.memory))) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown source memory %d",
               static_cast<int>(raw_enum(src.memory)));
  }
  if (src.memory == CUFRAMES_MEMORY_CUDA && memory() == CUFRAMES_MEMORY_HOST) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "a host ring takes host sources only");
  }
  CUFRAMES_RETURN_IF_ERROR(
      check_color(raw_enum(src.color_matrix), raw_enum(src.color_range), "source"));
  uint32_t slot;
  bool dropped = false;
  CUFRAMES_RETURN_IF_ERROR(acquire_slot(&slot, &dropped));
  if (dropped) {
    if (seq_out) *seq_out = 0;
    return Ok();
  }
  uint8_t* base = slot_base(slot);
  // Both planes in one copy when the source lays them out as the ring does (UV rows right after
  // the Y rows, same pitch): one copy instead of two launches on CUDA.
  const auto* y = static_cast<const uint8_t*>(src.planes[0]);
  const bool one_copy = g.num_planes == 2 && src.pitches[0] == src.pitches[1] &&
                        src.planes[1] == y + src.pitches[0] * g.height && g.pitch_y == g.pitch_uv &&
                        g.offset_uv == uint64_t{g.pitch_y} * g.height;
  Status st =
      ring_->copy_rows(base + g.offset_y, g.pitch_y, src.planes[0], src.pitches[0], row,
                       one_copy ? g.height + g.height_uv : g.height, src.memory, src.cuda_stream);
  if (st.ok() && g.num_planes == 2 && !one_copy) {
    st = ring_->copy_rows(base + g.offset_uv, g.pitch_uv, src.planes[1], src.pitches[1], row,
                          g.height_uv, src.memory, src.cuda_stream);
  }
  if (!st.ok()) {
    abandon(slot);
    return st;
  }
  return commit(slot, pts_ns, src.cuda_stream, src.color_matrix, src.color_range, seq_out);
}

void Publisher::notify(Role role, uint32_t kind, uint64_t seq) {
  Note note{kind, 0, seq};
  // The publication (seq_cst stores) before the `waiting` loads: a Dekker pair with the
  // subscriber's "waiting = 1, then look at the ring" (docs/protocol.md 8), so a subscriber
  // that is about to sleep either sees this frame or gets this Note.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  int direct = 0;
  uint64_t deferred = 0;
  {
    std::lock_guard<std::mutex> lock(peers_mu_);
    for (const Peer& p : peers_) {
      if (p.role != role) continue;
      // A subscriber that is busy with frames or busy-waiting needs no wake-up: skipping its
      // send() keeps the syscall (and the wake-up work in the kernel) out of publish().
      if (role == Role::kSubscriber && p.entry >= 0 &&
          entry_of(static_cast<uint32_t>(p.entry))->waiting.load(std::memory_order_seq_cst) == 0) {
        continue;
      }
      if (role == Role::kSubscriber && p.entry >= 0 && direct >= kDirectNotes) {
        deferred |= 1ull << p.entry;  // the service thread sends it
        continue;
      }
      ++direct;
      // Non-blocking: a full socket already has a wake-up pending, so dropping this one is fine.
      (void)::send(p.fd.get(), &note, sizeof note, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  }
  if (deferred != 0) {
    deferred_seq_.store(seq, std::memory_order_relaxed);
    deferred_notes_.fetch_or(deferred, std::memory_order_release);
    if (!eventfd_signal(notes_wake_.get())) {
      log(CUFRAMES_LOG_ERROR, "'%s': wake-up write failed: %s", key_.c_str(), std::strerror(errno));
    }
  }
}

void Publisher::stats(cuframes_publisher_stats_t* out) const {
  cuframes_publisher_stats_t s{};
  s.published = rd(hdr_->published);
  s.dropped = rd(hdr_->dropped);
  s.blocked_ns = rd(hdr_->blocked_ns);
  s.last_seq = newest_seq(hdr_->newest.load(std::memory_order_acquire));
  s.slots = slots_;
  s.held_slots = static_cast<uint32_t>(std::popcount(held_mask()));
  s.subscribers = rd(hdr_->subscribers);
  s.waiting = rd(hdr_->publisher_waiting);
  s.last_publish_ns = rd(hdr_->last_publish_ns);
  *out = s;
}

void Publisher::read_subscribers(cuframes_subscriber_stats_t* subs, size_t cap,
                                 size_t* count) const {
  const uint64_t newest = newest_seq(hdr_->newest.load(std::memory_order_acquire));
  uint64_t active = active_entries_.load(std::memory_order_acquire);
  size_t n = 0;
  while (active != 0) {
    int i = std::countr_zero(active);
    active &= active - 1;
    const auto index = static_cast<uint32_t>(i);
    const SubscriberEntry& e = *entry_of(index);
    cuframes_subscriber_stats_t s;
    if (!read_entry(*table_view(table_, index), e.counters, rd(e.holds), index, newest, slot_mask_,
                    &s)) {
      continue;
    }
    if (n < cap) subs[n] = s;
    ++n;
  }
  if (count) *count = n;
}

Status Publisher::set_codec(const cuframes_codec_params_t& p) {
  if (!packets_) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "'%s' has no packet ring", key_.c_str());
  return packets_->set_codec(p);
}

Status Publisher::write_packet(const cuframes_packet_t& p) {
  if (!packets_) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "'%s' has no packet ring", key_.c_str());
  uint64_t seq = 0;
  CUFRAMES_RETURN_IF_ERROR(packets_->write(p, &seq));
  notify(Role::kPacketReader, 2, seq);
  return Ok();
}

}  // namespace cuframes::detail
