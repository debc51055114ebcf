#include "pacer.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace cfsvc {

int64_t mono_ns() {
  return cuframes_now_ns();
}

bool sleep_until(int64_t deadline_ns, const std::atomic<bool>* stop) {
  for (;;) {
    if (stop->load()) return false;
    const int64_t left = deadline_ns - mono_ns();
    if (left <= 0) return true;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(left, 10000000)));
  }
}

void Pacer::start(int64_t nominal_ns) {
  nominal_ns_ = nominal_ns;
  frame_ns_ = nominal_ns;
  anchor_pts_ = kNoTimestamp;
  last_pts_ns_ = kNoTimestamp;
}

bool Pacer::wait(int64_t pts, SourceSink* sink, const std::atomic<bool>* stop) {
  const int64_t prev_pts = last_pts_ns_;
  int64_t pts_ns = pts;
  if (pts_ns == kNoTimestamp) pts_ns = prev_pts == kNoTimestamp ? 0 : prev_pts + nominal_ns_;
  last_pts_ns_ = pts_ns;
  if (anchor_pts_ == kNoTimestamp || prev_pts == kNoTimestamp) {
    anchor_pts_ = pts_ns;
    anchor_wall_ = last_wall_ = mono_ns();
    return true;
  }
  const int64_t step = pts_ns - prev_pts;
  const int64_t jump_after = std::max<int64_t>(kJumpMinNs, kJumpFrames * nominal_ns_);
  if (step < 0 || step > jump_after) {
    // A loop's start-over is no jump, nor is a small step back (timestamps out of order).
    if (!rewound_ && (step > jump_after || step < -jump_after)) sink->on_timestamp_jump(step);
    // The clock goes on from when the last frame was due, not from now: a source running
    // late (a loop's seek, a decoder re-created, a busy GPU) catches up instead of losing the
    // lateness from its rate. Only a stall longer than kCatchUpNs starts afresh from now.
    anchor_pts_ = pts_ns;
    const int64_t next = last_wall_ + frame_ns_;
    const int64_t now = mono_ns();
    anchor_wall_ = now - next > kCatchUpNs ? now : next;
  } else if (step > 0) {
    frame_ns_ = step;
  }
  rewound_ = false;
  const int64_t due = anchor_wall_ + (pts_ns - anchor_pts_);
  last_wall_ = due;
  return sleep_until(due, stop);
}

}  // namespace cfsvc
