// Camera snapshots (docs/mqtt.md "Snapshots", docs/http.md): one worker thread for every camera,
// off the cameras' decode threads. It reads each camera's ring through a subscriber of its own
// (NEWEST_ONLY, named kSnapshotConsumer, left out of the status and MQTT reports), holds the
// newest frame only while it is scaled (FrameEncoder), and never makes a publisher wait: a
// NEWEST_ONLY reader keeps no frame back from a DROP or STRICT_WAIT ring.
//
// Two kinds of work: periodic pictures of every streaming camera handed to a sink (the MQTT
// monitor publishes them), each only when the camera has a frame newer than its last picture (a
// stalled camera gets none); and pictures on request (HTTP), which wait a little for a frame.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "health.h"
#include "snapshot_frame.h"

namespace cfsvc {

// Per camera: pictures made, failures, and what they cost (SnapshotCost).
struct SnapshotCounters {
  uint64_t pictures = 0, failures = 0;
  double cpu_s = 0, gpu_s = 0;
};

class SnapshotWorker {
 public:
  using SnapshotFn = std::function<ServiceSnapshot()>;
  // Gets each periodic picture; called on the worker thread.
  using Sink = std::function<void(const std::string& camera, const SnapshotPicture& picture)>;

  enum class Outcome { kOk, kUnknownCamera, kNoFrame, kError };
  struct Result {
    Outcome outcome = Outcome::kError;
    std::string message;  // why not (kUnknownCamera, kNoFrame, kError)
    SnapshotPicture picture;
  };

  // `snapshot` (thread-safe) tells the cameras, their rings and states.
  explicit SnapshotWorker(SnapshotFn snapshot);
  ~SnapshotWorker();  // stops and joins; subscribers detach
  SnapshotWorker(const SnapshotWorker&) = delete;
  SnapshotWorker& operator=(const SnapshotWorker&) = delete;

  // Periodic pictures at most max_width wide every interval to sink; interval 0 or no sink:
  // none. Once this returns the previous sink is not called any more.
  void set_periodic(Duration interval, uint32_t max_width, Sink sink);
  // A picture of a streaming camera's next frame, at most max_width wide (0: full size), waiting
  // up to `wait` for a frame newer than the last one read. Thread-safe; blocks the caller.
  Result take(const std::string& camera, uint32_t max_width, Duration wait);
  // Every camera's counters so far (by name).
  std::map<std::string, SnapshotCounters> counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cfsvc
