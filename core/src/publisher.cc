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
#include <cstdarg>
#include <cstdio>
#include <bit>
#include <cerrno>
#include <cstring>

#include "clock.h"
#include "color.h"
#include "geometry.h"
#include "log.h"
#include "runtime_dir.h"
#include "socket.h"

namespace cuframes::detail {
namespace {

constexpr int kHandshakeTimeoutMs = 2000;
constexpr size_t kMaxPending = 32;
constexpr size_t kMaxObservers = 64;
constexpr size_t kMaxPacketReaders = 64;
constexpr int kAcceptPauseMs = 100;
constexpr int kWaitSliceMs = 100;  // STRICT_WAIT re-checks at least this often
// Sleeping subscribers the producer wakes itself per publication; the service thread wakes the
// others (a send() each would make publish() grow with the subscriber count).
constexpr int kDirectNotes = 4;
// Subscriber i's entry is mapped at entries_window_ + i * kEntryWindowStride: 64 KiB, a multiple
// of every Linux page size, so each one can be replaced on its own with MAP_FIXED.
constexpr uint64_t kEntryWindowStride = 64 * 1024;
static_assert(kEntryRegionBytes <= kEntryWindowStride);

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
    struct flock fl{};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd.get(), F_OFD_SETLK, &fl) != 0) {
      if (errno == EAGAIN || errno == EACCES) {
        char buf[32] = {};
        ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
        int pid = n > 0 ? std::atoi(buf) : 0;
        return Err(CUFRAMES_ERR_SHM, "key '%s' is already published (pid %d) in %s",
                   key.c_str(), pid, dir.c_str());
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
  if (o.slots < 2 || o.slots > kMaxSlots) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "slots %u is outside 2..%u", o.slots, kMaxSlots);
  }
  if (o.max_subscribers < 1 || o.max_subscribers > kMaxSubscribers) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "max_subscribers %u is outside 1..%u",
               o.max_subscribers, kMaxSubscribers);
  }
  if (o.policy != CUFRAMES_POLICY_DROP && o.policy != CUFRAMES_POLICY_STRICT_WAIT) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown policy %d", static_cast<int>(o.policy));
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

  CUFRAMES_RETURN_IF_ERROR(create_shared_region(
      "cuframes-table", table_region_bytes(max_subscribers_), &table_region_));
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
    uint64_t one = 1;
    if (::write(stop_fd_.get(), &one, sizeof one) < 0) log(CUFRAMES_LOG_ERROR, "stop: write failed");
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
    min_cursor = std::min(min_cursor,
                          entry_of(static_cast<uint32_t>(i))->cursor.load(std::memory_order_seq_cst));
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
    uint64_t drain;
    if (revents & POLLIN) (void)::read(producer_wake_.get(), &drain, sizeof drain);
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
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "source pitch %llu of plane %u is below the row "
                 "size %llu", static_cast<unsigned long long>(src.pitches[p]), p,
                 static_cast<unsigned long long>(row));
    }
  }
  if (src.memory != CUFRAMES_MEMORY_HOST && src.memory != CUFRAMES_MEMORY_CUDA) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown source memory %d",
               static_cast<int>(src.memory));
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
                        src.planes[1] == y + src.pitches[0] * g.height &&
                        g.pitch_y == g.pitch_uv && g.offset_uv == uint64_t{g.pitch_y} * g.height;
  Status st = ring_->copy_rows(base + g.offset_y, g.pitch_y, src.planes[0], src.pitches[0], row,
                               one_copy ? g.height + g.height_uv : g.height, src.memory,
                               src.cuda_stream);
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
    uint64_t one = 1;
    (void)::write(notes_wake_.get(), &one, sizeof one);
  }
}

// Service thread: the wake-ups notify() left to it. It alone changes peers_, so it reads the list
// without peers_mu_ (the producer's notify() is never held up by these sends).
void Publisher::send_deferred_notes() {
  uint64_t drain;
  (void)::read(notes_wake_.get(), &drain, sizeof drain);
  const uint64_t mask = deferred_notes_.exchange(0, std::memory_order_acquire);
  const Note note{1, 0, deferred_seq_.load(std::memory_order_relaxed)};
  for (const Peer& p : peers_) {
    if (p.role == Role::kSubscriber && p.entry >= 0 && (mask >> p.entry & 1) != 0) {
      (void)::send(p.fd.get(), &note, sizeof note, MSG_DONTWAIT | MSG_NOSIGNAL);
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
    if (!read_entry(*table_view(table_, index), e.counters, rd(e.holds), index, newest,
                    slot_mask_, &s)) {
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

// ---------------------------------------------------------------------------------------------
// Service thread: accept, handshake, hang-up detection.

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
        warn_limited(&last_accept_warn_ns_, "'%s': cannot accept connections: %s; retrying in %d ms",
                     key_.c_str(), std::strerror(err), kAcceptPauseMs);
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
  if (r == RecvResult::kClosed) return true;        // the peer left (a liveness probe, say)
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
      if (hello.mode != CUFRAMES_MODE_NEWEST_ONLY && hello.mode != CUFRAMES_MODE_STRICT_ORDER) {
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
        return Err(CUFRAMES_ERR_SHM, "subscriber table of '%s' is full (%u entries)",
                   key_.c_str(), max_subscribers_);
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
      role == Role::kSubscriber ? "subscriber" : role == Role::kObserver ? "observer"
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
  wr(e.waiting, 1);                            // Notes until it says otherwise
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
  uint64_t one = 1;
  (void)::write(producer_wake_.get(), &one, sizeof one);
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
