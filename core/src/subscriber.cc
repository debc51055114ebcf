#include "subscriber.h"

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

#include "clock.h"
#include "color.h"
#include "enums.h"
#include "log.h"
#include "observer.h"
#include "runtime_dir.h"
#include "socket.h"

namespace cuframes::detail {
namespace {

constexpr int kMaxAttempts = 10000;       // acquisition retries before waiting for the next note
constexpr uint32_t kMaxWindowUs = 10000;  // the most spin_us and warm_us may be

// "<program>-<pid>", sanitised to the name alphabet.
std::string default_name() {
  char comm[64] = {};
  if (FILE* f = std::fopen("/proc/self/comm", "re")) {
    if (std::fgets(comm, sizeof comm, f) == nullptr) comm[0] = '\0';
    std::fclose(f);
  }
  std::string base;
  for (const char* c = comm; *c && *c != '\n' && base.size() < 40; ++c) {
    bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-';
    base.push_back(ok ? *c : '_');
  }
  if (base.empty()) base = "cuframes";
  return base + "-" + std::to_string(::getpid());
}

struct ReleaseCtx {
  SubscriberCore* core;
  uint32_t slot;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// SubscriberCore

std::shared_ptr<SubscriberCore> SubscriberCore::make() {
  return std::shared_ptr<SubscriberCore>(new SubscriberCore, &SubscriberCore::dispose);
}

void SubscriberCore::dispose(SubscriberCore* core) {
  // Async releases still queued on a CUDA stream point at us: wait for them (they only run
  // drop_hold, so this waits on nothing but the GPU work queued before them). A stream that
  // never gets there (a sticky CUDA error) must not hang us forever: then leak the core, whose
  // memory those callbacks may still touch, and say so.
  std::unique_lock<std::mutex> lock(core->mu_);
  if (!core->cv_.wait_for(lock, std::chrono::seconds(10),
                          [core] { return core->pending_releases_ == 0; })) {
    log(CUFRAMES_LOG_ERROR,
        "%d frame release(s) still queued on a CUDA stream after 10 s (a stuck stream or a "
        "CUDA error?); leaking the subscriber's mappings",
        core->pending_releases_);
    return;
  }
  lock.unlock();
  delete core;
}

void SubscriberCore::drop_hold(uint32_t slot) {
  me->holds.fetch_and(~(1ull << slot), std::memory_order_seq_cst);
  wake_publisher_if_waiting();
}

void SubscriberCore::wake_publisher_if_waiting() {
  if (hdr->publisher_waiting.load(std::memory_order_seq_cst) != 0) {
    const uint32_t note = 1;
    (void)::send(sock.get(), &note, sizeof note, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
}

void SubscriberCore::release_callback(void* arg) {
  auto* ctx = static_cast<ReleaseCtx*>(arg);
  SubscriberCore* core = ctx->core;
  core->drop_hold(ctx->slot);
  delete ctx;
  std::lock_guard<std::mutex> lock(core->mu_);
  if (--core->pending_releases_ == 0) core->cv_.notify_all();
}

Status SubscriberCore::release(uint32_t slot, void* stream) {
  if (info.memory == CUFRAMES_MEMORY_HOST) {
    drop_hold(slot);
    return Ok();
  }
  auto* ctx = new ReleaseCtx{this, slot};
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++pending_releases_;
  }
  Status st =
      ring->release_after(stream != nullptr ? stream : consumer_stream, &release_callback, ctx);
  if (!st.ok()) {
    delete ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --pending_releases_;
    }
    drop_hold(slot);  // never leak the hold
    return st;
  }
  return Ok();
}

// ---------------------------------------------------------------------------------------------
// Subscriber

Status Subscriber::Create(const char* key, const cuframes_subscriber_options_t& o,
                          std::unique_ptr<Subscriber>* out) {
  std::string ctx = std::string("subscribe '") + (key ? key : "(null)") + "'";
  CUFRAMES_RETURN_IF_ERROR(std::move(check_key(key)).context(ctx));
  std::unique_ptr<Subscriber> s(new Subscriber);
  s->key_ = key;
  if (o.consumer_name != nullptr) {
    if (!valid_name(o.consumer_name)) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
                 "%s: invalid consumer_name '%.80s': want 1-63 characters of [A-Za-z0-9._-]",
                 ctx.c_str(), o.consumer_name);
    }
    s->name_ = o.consumer_name;
  } else {
    s->name_ = default_name();
  }
  if (!known_mode(raw_enum(o.mode))) {  // the caller's bits (enums.h)
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s: unknown mode %d", ctx.c_str(),
               static_cast<int>(raw_enum(o.mode)));
  }
  if (o.cuda_device < 0) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s: cuda_device %d is negative", ctx.c_str(),
               o.cuda_device);
  }
  if (o.connect_timeout_ms < -1) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s: connect_timeout_ms %d (want -1 or >= 0)",
               ctx.c_str(), o.connect_timeout_ms);
  }
  for (const auto& [name, us] :
       {std::pair{"spin_us", o.spin_us}, std::pair{"warm_us", o.warm_us}}) {
    if (us > kMaxWindowUs) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s: %s %u is above %u", ctx.c_str(), name, us,
                 kMaxWindowUs);
    }
  }
  s->mode_ = o.mode;
  s->spin_ns_ = int64_t{o.spin_us} * 1000;
  s->warm_ns_ = int64_t{o.warm_us} * 1000;
  s->spin_warm_ = o.spin_warm;
  s->spin_warm_arg_ = o.spin_warm_arg;
  std::string dir;
  CUFRAMES_RETURN_IF_ERROR(
      std::move(resolve_runtime_dir(o.runtime_dir, &dir, DirUse::kLook)).context(ctx));

  Hello hello = make_hello(Role::kSubscriber);
  hello.mode = o.mode;
  hello.cuda_device = o.cuda_device;
  std::snprintf(hello.name, sizeof hello.name, "%s", s->name_.c_str());
  Connection c;
  CUFRAMES_RETURN_IF_ERROR(
      std::move(connect_to_publisher(dir, s->key_, hello, o.connect_timeout_ms, &c)).context(ctx));

  std::shared_ptr<SubscriberCore> core = SubscriberCore::make();
  const Welcome& w = c.welcome;
  if (c.fds.size() < 2)
    return Err(CUFRAMES_ERR_SHM, "%s: handshake carried too few fds", ctx.c_str());
  CUFRAMES_RETURN_IF_ERROR(
      std::move(map_ring_header(c.fds[0].get(), w, &core->header_map, &core->info)).context(ctx));
  core->hdr = core->header_map.as<const RingHeader>();
  CUFRAMES_RETURN_IF_ERROR(
      std::move(map_table(c.fds[1].get(), w, core->info, &core->table_map)).context(ctx));
  core->table = core->table_map.as<const TableHeader>();
  if (c.fds.size() < 3)
    return Err(CUFRAMES_ERR_SHM, "%s: handshake carried too few fds", ctx.c_str());
  CUFRAMES_RETURN_IF_ERROR(
      std::move(map_own_entry(c.fds[2].get(), w, core->info, *core->table, &core->entry_map))
          .context(ctx));
  core->entry_index = w.entry_index;
  core->me = core->entry_map.as<SubscriberEntry>();

  MemoryBackend* backend = nullptr;
  CUFRAMES_RETURN_IF_ERROR(std::move(memory_backend(core->info.memory, &backend)).context(ctx));
  const bool has_fd = core->info.handle_type == HandleType::kMemfd ||
                      core->info.handle_type == HandleType::kCudaVmmFd;
  if (c.fds.size() != (has_fd ? 4u : 3u)) {
    return Err(CUFRAMES_ERR_SHM, "%s: handshake carried %zu fds", ctx.c_str(), c.fds.size());
  }
  int ring_fd = has_fd ? c.fds[3].get() : -1;
  CUFRAMES_RETURN_IF_ERROR(
      std::move(backend->import(core->info.handle_type, ring_fd, w.handle, core->info.ring_bytes,
                                o.cuda_device, &core->ring))
          .context(ctx));
  if (has_fd) (void)c.fds[3].release();  // the import owns it now
  core->consumer_stream = o.consumer_stream;
  core->sock = std::move(c.sock);
  s->core_ = std::move(core);
  // The subscription starts at the newest frame at attach: every frame from there on that is not
  // handed out is a gap (NEWEST_ONLY) or an overrun (STRICT_ORDER), also before the first read.
  s->cursor_ = rd(s->core_->me->cursor);
  s->last_seq_ = s->cursor_;
  log(CUFRAMES_LOG_INFO, "subscribed to '%s' as '%s' (entry %u)", s->key_.c_str(), s->name_.c_str(),
      w.entry_index);
  *out = std::move(s);
  return Ok();
}

Subscriber::~Subscriber() {
  stop_callback();
}

void Subscriber::bump(Counter counter, uint64_t by) {
  Shared<uint64_t>& c = core_->me->counters.v[counter];
  wr(c, rd(c) + by);
}

Status Subscriber::next(int timeout_ms, std::unique_ptr<HeldFrame>* out) {
  if (cb_running_.load()) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "next_frame while a frame callback is running");
  }
  if (timeout_ms < -1) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "timeout_ms %d (want -1 or >= 0)", timeout_ms);
  }
  return next_impl(timeout_ms, /*count_timeout=*/timeout_ms != 0, out);
}

Status Subscriber::next_slice(int timeout_ms, std::unique_ptr<HeldFrame>* out) {
  if (cb_running_.load()) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "next_frame while a frame callback is running");
  }
  if (timeout_ms < -1) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "timeout_ms %d (want -1 or >= 0)", timeout_ms);
  }
  return next_impl(timeout_ms, /*count_timeout=*/false, out);
}

bool Subscriber::publisher_hung_up() {
  if (gone_) return true;
  pollfd p{fd(), POLLIN, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) gone_ = true;
  return gone_;
}

Status Subscriber::try_acquire(std::unique_ptr<HeldFrame>* out, Got* got, uint64_t* lost) {
  Status st =
      mode_ == CUFRAMES_MODE_NEWEST_ONLY ? try_newest(out, got) : try_strict(out, got, lost);
  if (!st.ok()) {
    bump(kErrors);
    return std::move(st).context(key_);
  }
  if (*got == Got::kOverrun) {
    bump(kErrors);
    bump(kOverruns);
    return Err(CUFRAMES_ERR_OVERRUN,
               "'%s': the publisher overwrote %llu frame(s) before they were read; resuming at "
               "the oldest frame in the ring",
               key_.c_str(), static_cast<unsigned long long>(*lost));
  }
  return Ok();
}

Status Subscriber::next_impl(int timeout_ms, bool count_timeout, std::unique_ptr<HeldFrame>* out) {
  SubscriberEntry& me = *core_->me;
  const int64_t deadline = deadline_after(timeout_ms);
  bool warmed = false;  // warm_us: once per call
  // A call that ends without a frame (OVERRUN included) leaves Notes on: a caller that goes back
  // to polling the fd must be woken by the next frame.
  auto failed = [&me](Status st) {
    me.waiting.store(1, std::memory_order_seq_cst);
    return st;
  };
  for (;;) {
    wr(me.counters.v[kHeartbeatNs], now_ns());
    if (publisher_hung_up()) {
      bump(kErrors);
      return Err(CUFRAMES_ERR_PUBLISHER_GONE, "publisher of '%s' is gone", key_.c_str());
    }
    // The ring first: frames left from an earlier wake-up are found without one, and the notes
    // stay queued (the fd stays readable) as long as we deliver. Only when the ring has nothing
    // do we drain the notes, look once more, and wait.
    Got got = Got::kNone;
    uint64_t lost = 0;
    if (Status st = try_acquire(out, &got, &lost); !st.ok()) return failed(std::move(st));
    if (got == Got::kFrame) return Ok();
    // About to wait: ask for Notes first, then look once more (the Dekker pair with the
    // publisher's notify(): either that look sees the frame or its Note comes).
    me.waiting.store(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!drain_notes(fd())) gone_ = true;
    CUFRAMES_RETURN_IF_ERROR(try_acquire(out, &got, &lost));
    if (got == Got::kFrame) return Ok();
    if (gone_) continue;  // reported at the top
    if (now_ns() >= deadline) {
      if (count_timeout) bump(kTimeouts);
      return Err(CUFRAMES_ERR_FRAME_TIMEOUT, "no frame from '%s' within %d ms", key_.c_str(),
                 timeout_ms);
    }
    if (spin_ns_ > 0 && timeout_ms != 0) {
      Status sst;
      if (spin_for_frame(deadline, out, &sst)) return sst.ok() ? sst : failed(std::move(sst));
      continue;  // the window passed (or a note came): look again
    }
    if (warm_ns_ > 0 && timeout_ms != 0 && !warmed) {
      warmed = true;
      Status wst;
      if (warm_before_frame(deadline, out, &wst)) return wst.ok() ? wst : failed(std::move(wst));
      continue;  // warmed (or a note came): look again, then sleep until the note
    }
    const int left = deadline == INT64_MAX ? -1 : ms_until(deadline);
    short revents = 0;
    Status pst = poll_in(fd(), left, &revents);
    if (!pst.ok()) {
      bump(kErrors);
      return pst;
    }
  }
}

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
}  // namespace

bool Subscriber::spin_for_frame(int64_t deadline, std::unique_ptr<HeldFrame>* out, Status* st) {
  int64_t now = now_ns();
  if (interval_ns_ <= 0) {  // cadence unknown yet: wait for a note, a little at a time
    short revents = 0;
    *st = poll_in(fd(), std::min(ms_until(deadline), 100), &revents);
    return !st->ok();
  }
  const int64_t expected = next_expected(now, spin_ns_);
  const int64_t spin_from = expected - spin_ns_;
  const bool slept = now < spin_from;
  // Sleep until the window opens (or a note wakes us early, or the deadline); a note (or an
  // error) takes the normal path, which looks at it.
  if (slept && !sleep_until(now, std::min(spin_from, deadline))) return false;
  const int64_t spin_to = std::min(expected + spin_ns_, deadline);
  // Busy-waiting sees the frame by itself: no Note needed (next_impl asks again before sleeping).
  wr(core_->me->waiting, 0);
  bool warm = slept && spin_warm_ != nullptr;  // once, when the first look finds no frame
  while (now_ns() < spin_to) {
    if (look(out, st)) return true;
    if (warm) {
      warm = false;
      spin_warm_(spin_warm_arg_);  // the window opened with no frame yet: the caller warms up
      continue;
    }
    for (int i = 0; i < 32; ++i) cpu_relax();
  }
  return false;
}

int64_t Subscriber::next_expected(int64_t now, int64_t late_ns) const {
  int64_t expected = phase_ns_ + interval_ns_;
  if (expected + late_ns < now) {  // missed (or the publisher paused): the next one due
    expected += ((now - late_ns - expected) / interval_ns_ + 1) * interval_ns_;
  }
  return expected;
}

bool Subscriber::sleep_until(int64_t now, int64_t until) {
  timespec ts{static_cast<time_t>((until - now) / 1000000000),
              static_cast<long>((until - now) % 1000000000)};
  pollfd p{fd(), POLLIN, 0};
  return ::ppoll(&p, 1, &ts, nullptr) == 0;
}

bool Subscriber::look(std::unique_ptr<HeldFrame>* out, Status* st) {
  Got got = Got::kNone;
  uint64_t lost = 0;
  *st = try_acquire(out, &got, &lost);
  return !st->ok() || got == Got::kFrame;
}

bool Subscriber::warm_before_frame(int64_t deadline, std::unique_ptr<HeldFrame>* out, Status* st) {
  if (interval_ns_ <= 0) return false;  // the cadence unknown yet: nothing to time
  const int64_t now = now_ns();
  const int64_t at = std::min(next_expected(now, 0) - warm_ns_, deadline);
  // Sleep until then, waiting (Notes on) all along: a frame that comes first wakes us, and a
  // note (or an error) takes the normal path.
  if (at > now && (!sleep_until(now, at) || at == deadline)) return false;
  if (look(out, st)) return true;
  // No frame yet: the caller warms up; then the normal path sleeps until the note, a short
  // sleep from which the CPU wakes faster than from the whole period's.
  if (spin_warm_ != nullptr) spin_warm_(spin_warm_arg_);
  return false;
}

Status Subscriber::take_hold(uint32_t slot, uint64_t seq, bool* held) {
  const uint64_t bit = 1ull << slot;
  const uint64_t prev = core_->me->holds.fetch_or(bit, std::memory_order_seq_cst);
  if (prev & bit) {
    // We hold an older frame in this slot, so the publisher cannot have rewritten it: the ring
    // is corrupt. Our own hold stays as it was.
    return Err(CUFRAMES_ERR_SHM, "ring corrupt: frame %llu is in slot %u, which we still hold",
               static_cast<unsigned long long>(seq), slot);
  }
  *held = core_->hdr->slots[slot].seq.load(std::memory_order_seq_cst) == seq;
  if (!*held) core_->drop_hold(slot);
  return Ok();
}

Status Subscriber::try_newest(std::unique_ptr<HeldFrame>* out, Got* got) {
  const RingHeader& h = *core_->hdr;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const uint64_t packed = h.newest.load(std::memory_order_seq_cst);
    if (packed == 0) break;
    const uint64_t seq = newest_seq(packed);
    const uint32_t slot = newest_slot(packed);
    if (slot >= core_->info.slot_count) {
      return Err(CUFRAMES_ERR_SHM, "ring corrupt: newest frame in slot %u of %u", slot,
                 core_->info.slot_count);
    }
    if (seq <= last_seq_) break;
    bool held = false;
    CUFRAMES_RETURN_IF_ERROR(take_hold(slot, seq, &held));
    if (!held) continue;  // it was being replaced: look again
    deliver(slot, seq, out);
    *got = Got::kFrame;
    return Ok();
  }
  *got = Got::kNone;
  return Ok();
}

Status Subscriber::try_strict(std::unique_ptr<HeldFrame>* out, Got* got, uint64_t* lost) {
  const RingHeader& h = *core_->hdr;
  const uint32_t n = core_->info.slot_count;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const uint64_t want = cursor_ + 1;
    const uint64_t packed = h.newest.load(std::memory_order_seq_cst);
    if (packed == 0 || newest_seq(packed) < want) break;
    int found = -1;
    bool claimed = false;
    uint64_t oldest = UINT64_MAX;
    for (uint32_t s = 0; s < n; ++s) {
      const uint64_t v = h.slots[s].seq.load(std::memory_order_seq_cst);
      if (v == want) {
        found = static_cast<int>(s);
        break;
      }
      if (v == (kSeqClaimBit | want)) claimed = true;
      // A claimed slot may be given back with its frame intact: count its old seq as present.
      const uint64_t present = (v & kSeqClaimBit) ? v & ~kSeqClaimBit : v;
      if (present > want && present <= kSeqMax) oldest = std::min(oldest, present);
    }
    if (found >= 0) {
      bool held = false;
      CUFRAMES_RETURN_IF_ERROR(take_hold(static_cast<uint32_t>(found), want, &held));
      if (!held) continue;
      cursor_ = want;
      core_->me->cursor.store(want, std::memory_order_seq_cst);
      deliver(static_cast<uint32_t>(found), want, out);
      *got = Got::kFrame;
      return Ok();
    }
    if (claimed) {  // the publisher is deciding whether it may overwrite it: ask again shortly
      sched_yield();
      continue;
    }
    if (oldest == UINT64_MAX) continue;  // every later frame is being rewritten right now
    // Lapped: go on from the oldest frame still in the ring.
    cursor_ = oldest - 1;
    core_->me->cursor.store(cursor_, std::memory_order_seq_cst);
    core_->wake_publisher_if_waiting();  // the frames we skipped are no longer reserved
    *lost = oldest - want;
    bump(kGaps, *lost);
    *got = Got::kOverrun;
    return Ok();
  }
  *got = Got::kNone;
  return Ok();
}

void Subscriber::deliver(uint32_t slot, uint64_t seq, std::unique_ptr<HeldFrame>* out) {
  const RingInfo& in = core_->info;
  const SlotState& ss = core_->hdr->slots[slot];
  SubscriberEntry& me = *core_->me;
  auto f = std::make_unique<HeldFrame>();
  f->core = core_;
  f->slot = slot;
  cuframes_frame_info_t& fi = f->info;
  fi.seq = seq;
  fi.pts_ns = rd(ss.pts_ns);
  fi.publish_ns = rd(ss.publish_ns);
  fi.geometry = in.geometry;
  fi.data = core_->ring->base() + uint64_t{slot} * in.slot_stride;
  fi.plane_y = static_cast<uint8_t*>(fi.data) + in.geometry.offset_y;
  fi.plane_uv = in.geometry.num_planes == 2 ? static_cast<uint8_t*>(fi.data) + in.geometry.offset_uv
                                            : nullptr;
  fi.memory = in.memory;
  fi.device = core_->ring->device();
  fi.slot = slot;
  fi.color_matrix = color_matrix_from(rd(ss.color_matrix));
  fi.color_range = color_range_from(rd(ss.color_range));
  // Busy with frames: no Notes until next_impl finds the ring empty again.
  if (rd(me.waiting) != 0) wr(me.waiting, 0);

  if (mode_ == CUFRAMES_MODE_NEWEST_ONLY && seq > last_seq_ + 1) {
    bump(kGaps, seq - last_seq_ - 1);
  }
  // The publisher's cadence, for spin_us.
  if (last_publish_seq_ != 0 && seq > last_publish_seq_ && fi.publish_ns > last_publish_ns_) {
    const int64_t n = static_cast<int64_t>(seq - last_publish_seq_);
    const int64_t d = (fi.publish_ns - last_publish_ns_) / n;
    interval_ns_ = interval_ns_ == 0 ? d : interval_ns_ + (d - interval_ns_) / 8;
    // The phase follows the beat: a quarter of each frame's lateness (or earliness), and all of
    // it after a pause or a change of pace (off the beat by more than a quarter period).
    const int64_t due = phase_ns_ + n * interval_ns_;
    const int64_t off = fi.publish_ns - due;
    phase_ns_ = (off > interval_ns_ / 4 || off < -interval_ns_ / 4) ? fi.publish_ns : due + off / 4;
  } else {
    phase_ns_ = fi.publish_ns;
  }
  last_publish_ns_ = fi.publish_ns;
  last_publish_seq_ = seq;
  last_seq_ = seq;
  bump(kFramesReceived);
  wr(me.counters.v[kLastSeq], seq);
  wr(me.counters.v[kLastFramePtsNs], fi.pts_ns);
  wr(me.counters.v[kLastLatencyNs], now_ns() - fi.publish_ns);
  *out = std::move(f);
}

void Subscriber::stats(cuframes_subscriber_stats_t* out) const {
  // Our identity as the publisher recorded it, our counters live from our own entry.
  const SubscriberCore& c = *core_;
  const uint64_t newest = newest_seq(c.hdr->newest.load(std::memory_order_acquire));
  const EntryView& view = *table_view(c.table, c.entry_index);
  if (read_entry(view, c.me->counters, rd(c.me->holds), c.entry_index, newest, c.info.slot_mask(),
                 out)) {
    return;
  }
  // Only a broken publisher changes our view while we are attached: then report our counters
  // under the identity we asked for.
  EntryView mine{};
  wr(mine.state, kEntryActive);
  wr(mine.pid, ::getpid());
  wr(mine.mode, mode_);
  store_string(mine.name, name_);
  (void)read_entry(mine, c.me->counters, rd(c.me->holds), c.entry_index, newest, c.info.slot_mask(),
                   out);
}

void Subscriber::ring_status(cuframes_ring_status_t* out) const {
  read_ring(*core_->hdr, *core_->table, core_->info, out, nullptr, 0, nullptr, core_->me,
            core_->entry_index);
}

Status Subscriber::start_callback(Callback cb) {
  if (!cb) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "callback is NULL");
  if (on_callback_thread()) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "start_callback from inside the callback");
  }
  if (cb_running_.load()) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "a callback already runs");
  if (cb_thread_.joinable()) cb_thread_.join();  // an earlier one that ended by itself
  cb_thread_id_.store(std::thread::id());
  stop_requested_.store(false);
  cb_stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!cb_stop_.valid()) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "eventfd");
  cb_running_.store(true);
  // The new thread may find a frame at once, and its callback may destroy this subscriber
  // (detaching cb_thread_): it starts only once cb_thread_ and cb_thread_id_ are set.
  std::lock_guard<std::mutex> started(cb_start_mu_);
  try {
    cb_thread_ = std::thread([this, cb = std::move(cb)] { callback_loop(cb); });
  } catch (const std::system_error& e) {
    cb_running_.store(false);
    return Err(CUFRAMES_ERR_INTERNAL, "cannot start the callback thread: %s", e.what());
  }
  cb_thread_id_.store(cb_thread_.get_id());
  return Ok();
}

void Subscriber::callback_loop(const Callback& cb) {
  { std::lock_guard<std::mutex> wait_for_start(cb_start_mu_); }
  for (;;) {
    if (stop_requested_.load()) break;  // checked before every frame: none is taken after a stop
    std::unique_ptr<HeldFrame> frame;
    Status st = next_impl(0, /*count_timeout=*/false, &frame);
    if (st.code() == CUFRAMES_ERR_FRAME_TIMEOUT) {
      pollfd p[2] = {{fd(), POLLIN, 0}, {cb_stop_.get(), POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 && errno != EINTR) {
        cb(nullptr, ErrnoErr(CUFRAMES_ERR_SHM, errno, "'%s': poll", key_.c_str()));
        break;
      }
      if (p[1].revents != 0) break;
      continue;
    }
    cb(std::move(frame), st);
    if (self_owned_) {  // the callback destroyed its subscriber: finish that here
      cb_thread_.detach();
      std::unique_ptr<Subscriber> self = std::move(self_owned_);
      return;  // ~Subscriber runs as `self` goes; nothing here touches `this` after it
    }
    // Only OVERRUN is worth going on after: PUBLISHER_GONE and persistent failures end it.
    if (!st.ok() && st.code() != CUFRAMES_ERR_OVERRUN) break;
  }
  cb_running_.store(false);
}

bool Subscriber::on_callback_thread() const {
  return cb_thread_id_.load() == std::this_thread::get_id();
}

void Subscriber::stop_callback() {
  stop_requested_.store(true);
  if (on_callback_thread()) return;  // the loop ends when the callback returns; no self-join
  if (!cb_thread_.joinable()) return;
  if (!eventfd_signal(cb_stop_.get())) {
    log(CUFRAMES_LOG_ERROR, "cannot stop the callback thread: %s", std::strerror(errno));
  }
  cb_thread_.join();
  cb_running_.store(false);
  cb_thread_id_.store(std::thread::id());
  stop_requested_.store(false);
}

void Subscriber::destroy(std::unique_ptr<Subscriber> self) {
  if (self->on_callback_thread()) {
    Subscriber* raw = self.get();
    raw->self_owned_ = std::move(self);  // callback_loop finishes the destruction
    return;
  }
  self.reset();
}

}  // namespace cuframes::detail
