// Where a camera's ingest thread spends its CPU: the thread's own CPU time
// (CLOCK_THREAD_CPUTIME_ID) cut into stages at the boundaries of its loop. Each lap() charges the
// thread's CPU since the previous lap to one stage, so the stages always add up to the thread's
// CPU since start() (less the last, open lap). A lap is one clock_gettime: about a microsecond
// of CPU per frame for the 5-6 laps of a frame, so the account stays on.
//
// Written by the ingest thread only; read (snapshot()) by any thread: every figure is an atomic.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cfsvc {

// One list of the stages: the status file, /metrics and the docs take the names from here.
enum class CpuStage {
  kOpen,     // opening the source: connecting, probing, creating the decoder; the backoff waits
  kRead,     // demuxing (av_read_frame, a loop's seek) and feeding the packet ring
  kDecode,   // avcodec_send_packet / avcodec_receive_frame, drains and flushes; testsrc's drawing
  kPace,     // the real-time pacing wait (realtime: true files, testsrc)
  kConvert,  // software frames converted (swscale), NVDEC frames downloaded for a host ring
  kPublish,  // Camera::on_frame: the ring's publish (the copy into the slot, its event sync, the
             // Notes), a new ring at the first frame, the packet queue flushed into it
  kOther,    // the rest of the thread's loop
  kCount
};
inline constexpr size_t kCpuStages = static_cast<size_t>(CpuStage::kCount);
const char* to_string(CpuStage s);

struct CpuSnapshot {
  pid_t tid = 0;           // the ingest thread (0: not started)
  uint64_t frames = 0;     // frames handed to on_frame
  uint64_t thread_ns = 0;  // the ingest thread's CPU time, read now (0: not running)
  std::array<uint64_t, kCpuStages> stage_ns{};
};

class CpuAccount {
 public:
  // On the ingest thread, first: its id, and where the first lap starts.
  void start();
  // On the ingest thread when it ends: its CPU can no longer be read from outside.
  void finish();
  // On the ingest thread: the CPU since the previous lap goes to `s`.
  void lap(CpuStage s);
  void count_frame() { frames_.fetch_add(1, std::memory_order_relaxed); }
  // Any thread.
  CpuSnapshot snapshot() const;

 private:
  int64_t last_ = 0;  // ingest thread only
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> running_{false};
  std::atomic<clockid_t> clock_{0};  // the ingest thread's CPU clock, for other threads
  std::atomic<uint64_t> frames_{0};
  std::array<std::atomic<uint64_t>, kCpuStages> ns_{};
};

// The snapshot as the status file's "cpu" object writes it, in order: tid, frames, thread_us,
// then <stage>_us for each stage (microseconds of CPU).
std::vector<std::pair<std::string, uint64_t>> cpu_fields(const CpuSnapshot& s);

// A null-safe lap: sources take a CpuAccount* that may be null (tests, tools).
inline void lap(CpuAccount* a, CpuStage s) {
  if (a != nullptr) a->lap(s);
}

}  // namespace cfsvc
