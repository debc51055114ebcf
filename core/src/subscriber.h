// Subscriber: attaches to a publisher, takes holds on frames and hands them out.
//
// SubscriberCore is what frames keep alive: the socket, the mappings and the imported ring. A
// frame released after its subscriber was destroyed still drops its hold correctly, and the
// socket (whose hang-up makes the publisher reclaim our table entry) closes only once the last
// frame is released.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "client.h"
#include "memory.h"
#include "status.h"

namespace cuframes::detail {

class SubscriberCore {
 public:
  // Always held by shared_ptr through make(): its deleter waits for queued async releases.
  static std::shared_ptr<SubscriberCore> make();
  // Drops the hold on slot; any thread. Wakes a publisher blocked in STRICT_WAIT.
  void drop_hold(uint32_t slot);
  // Tells a publisher blocked in STRICT_WAIT that a slot may have come free (a note on our own
  // socket; never blocks, a full socket already has one pending).
  void wake_publisher_if_waiting();
  // Drops the hold once the work queued on stream has finished (host: now).
  Status release(uint32_t slot, void* stream);

  UniqueFd sock;
  Mapping header_map;
  Mapping table_map;  // the whole table, read-only
  Mapping entry_map;  // our own entry (a memfd of its own), read-write
  const RingHeader* hdr = nullptr;
  const TableHeader* table = nullptr;
  SubscriberEntry* me = nullptr;
  uint32_t entry_index = 0;
  RingInfo info;
  std::unique_ptr<RingImport> ring;
  void* consumer_stream = nullptr;

 private:
  SubscriberCore() = default;
  static void dispose(SubscriberCore* core);
  static void release_callback(void* arg);
  std::mutex mu_;
  std::condition_variable cv_;
  int pending_releases_ = 0;  // async releases not yet run (guarded by mu_)
};

// A held frame (inside the C ABI's cuframes_frame_t). Destroying it unreleased releases it on
// the subscriber's consumer stream, so a hold is never leaked.
struct HeldFrame {
  HeldFrame() = default;
  HeldFrame(const HeldFrame&) = delete;
  HeldFrame& operator=(const HeldFrame&) = delete;
  ~HeldFrame() {
    if (core) (void)release(nullptr);
  }
  // Drops the hold (see SubscriberCore::release); a second call does nothing.
  Status release(void* stream) {
    if (!core) return Status();
    Status st = core->release(slot, stream);
    core.reset();
    return st;
  }

  std::shared_ptr<SubscriberCore> core;
  uint32_t slot = 0;
  cuframes_frame_info_t info{};
};

class Subscriber {
 public:
  static Status Create(const char* key, const cuframes_subscriber_options_t& options,
                       std::unique_ptr<Subscriber>* out);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  int fd() const { return core_->sock.get(); }
  const std::string& name() const { return name_; }
  const RingInfo& info() const { return core_->info; }
  Status next(int timeout_ms, std::unique_ptr<HeldFrame>* out);
  // next() for callers that wait in slices: a slice that ends without a frame is not counted.
  Status next_slice(int timeout_ms, std::unique_ptr<HeldFrame>* out);
  void stats(cuframes_subscriber_stats_t* out) const;
  void ring_status(cuframes_ring_status_t* out) const;
  void note_timeout() { bump(kTimeouts); }

  // Runs cb on a thread of its own for every frame (status OK) and every failure but timeouts
  // (frame null); ends after PUBLISHER_GONE or a failure other than OVERRUN. stop_callback joins
  // the thread; called from inside the callback it only asks the loop to end.
  using Callback = std::function<void(std::unique_ptr<HeldFrame> frame, const Status& status)>;
  Status start_callback(Callback cb);
  void stop_callback();
  // Destroys a subscriber; from inside its own callback the destruction completes on the
  // callback thread once the callback returns.
  static void destroy(std::unique_ptr<Subscriber> self);

 private:
  enum class Got { kFrame, kNone, kOverrun };
  Subscriber() = default;
  Status next_impl(int timeout_ms, bool count_timeout, std::unique_ptr<HeldFrame>* out);
  Status try_acquire(std::unique_ptr<HeldFrame>* out, Got* got, uint64_t* lost);
  bool publisher_hung_up();
  // spin_us: waits for the next frame around its expected arrival. Returns true with *out set
  // when one came; false when the caller should wait normally.
  bool spin_for_frame(int64_t deadline, std::unique_ptr<HeldFrame>* out, Status* st);
  // warm_us: sleeps until warm_us before the next frame is expected, looks, and calls spin_warm
  // if there is no frame yet. True with *out or *st set when it found one (or failed); false
  // when the caller should look again and wait normally.
  bool warm_before_frame(int64_t deadline, std::unique_ptr<HeldFrame>* out, Status* st);
  // Sleeps on the socket from now until `until`: true when that time came, false when the
  // socket woke it first (a note, the hang-up) or ppoll failed.
  bool sleep_until(int64_t now, int64_t until);
  // One try to acquire a frame: true with *out set (a frame) or *st failed; false: none yet.
  bool look(std::unique_ptr<HeldFrame>* out, Status* st);
  // When the next frame is due on the publisher's beat, as of now: the one after the beat's next
  // if that was due more than late_ns ago (missed, or the publisher paused).
  int64_t next_expected(int64_t now, int64_t late_ns) const;
  void callback_loop(const Callback& cb);
  bool on_callback_thread() const;
  Status try_newest(std::unique_ptr<HeldFrame>* out, Got* got);
  Status try_strict(std::unique_ptr<HeldFrame>* out, Got* got, uint64_t* lost);
  Status take_hold(uint32_t slot, uint64_t seq, bool* held);
  void deliver(uint32_t slot, uint64_t seq, std::unique_ptr<HeldFrame>* out);
  void bump(Counter counter, uint64_t by = 1);

  std::shared_ptr<SubscriberCore> core_;
  std::string key_, name_;
  cuframes_mode_t mode_ = CUFRAMES_MODE_NEWEST_ONLY;
  uint64_t last_seq_ = 0;  // the last frame handed out (at first: the frame before the start)
  uint64_t cursor_ = 0;    // STRICT_ORDER: last consumed seq
  bool gone_ = false;
  // spin_us: the publisher's cadence, learned from delivered frames: its period and its phase
  // (when frame last_publish_seq_ was due on that beat; one late frame moves it only a quarter
  // of its lateness, so the frame after it, back on the beat, still finds us spinning).
  int64_t spin_ns_ = 0;
  int64_t warm_ns_ = 0;                 // options.warm_us
  void (*spin_warm_)(void*) = nullptr;  // options.spin_warm, spin_warm_arg
  void* spin_warm_arg_ = nullptr;
  int64_t last_publish_ns_ = 0;
  uint64_t last_publish_seq_ = 0;
  int64_t interval_ns_ = 0;  // smoothed time between publications
  int64_t phase_ns_ = 0;     // frame last_publish_seq_'s time on the publisher's beat

  std::thread cb_thread_;
  std::mutex cb_start_mu_;  // held by start_callback until cb_thread_ is set
  UniqueFd cb_stop_;
  std::atomic<bool> cb_running_{false};
  std::atomic<std::thread::id> cb_thread_id_{};
  std::atomic<bool> stop_requested_{false};  // checked by the loop before every frame
  std::unique_ptr<Subscriber> self_owned_;   // set by destroy() from inside the callback
};

}  // namespace cuframes::detail
