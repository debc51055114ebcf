// Files in real time (realtime: true): each frame waits for its presentation time, counted from
// an anchor (a timestamp and the moment it was due). A jump in the timestamps (forward by more
// than max(1 s, 10 frame intervals), or any step back), or a loop starting over, re-anchors: the
// frame comes one frame interval after the one before, and the clock goes on from when that one
// was due, not from now, so a source running late catches up instead of losing the lateness
// from its rate (only one more than 2 s late starts afresh from now). Frames without a
// timestamp are one nominal interval apart. Jumps (not a loop's start-over) are reported to the
// sink. Used on the ingest thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>

#include "source.h"

namespace cfsvc {

class Pacer {
 public:
  static constexpr int64_t kNoTimestamp = std::numeric_limits<int64_t>::min();

  // A new open: the next frame anchors the clock; nominal_ns is the stream's frame interval.
  void start(int64_t nominal_ns);
  // A loop started over in place: the timestamps go back, and that is no jump.
  void rewound() { rewound_ = true; }
  // Waits until the frame with timestamp pts_ns (kNoTimestamp: none) is due. false when *stop
  // was set while waiting.
  bool wait(int64_t pts_ns, SourceSink* sink, const std::atomic<bool>* stop);

 private:
  // A step in the timestamps larger than this many frame intervals (and than kJumpMinNs), or
  // one back, is a jump: the pacing re-anchors instead of waiting for it.
  static constexpr int64_t kJumpFrames = 10;
  static constexpr int64_t kJumpMinNs = 1000000000;
  // A paced source at most this late catches up (frames at once until on time again).
  static constexpr int64_t kCatchUpNs = 2000000000;

  int64_t nominal_ns_ = 0;  // the stream's frame interval (its rate, else `fps`)
  int64_t anchor_pts_ = kNoTimestamp;
  int64_t anchor_wall_ = 0;
  int64_t last_pts_ns_ = kNoTimestamp;  // the last frame's pts,
  int64_t last_wall_ = 0;               // when it was due,
  int64_t frame_ns_ = 0;                // and the interval before it
  bool rewound_ = false;                // a loop started over since the last frame
};

}  // namespace cfsvc
