// The service: owns the cameras, applies configurations (start, restart only what changed, stop)
// and writes the status file <runtime_dir>/cuframes-service.json.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "camera.h"
#include "config.h"
#include "fd_event.h"
#include "health.h"

namespace cfsvc {

class Service {
 public:
  Service();
  ~Service();

  // Applies a validated config. Cameras whose effective settings are unchanged keep running
  // untouched; changed ones restart; removed ones stop; new ones start. A changed runtime_dir
  // restarts every camera. Returns false (nothing changed) if the runtime dir is unusable. What
  // can run out of memory is done before any camera changes: an exception leaves them as they
  // were.
  bool apply(const Config& config, std::string* error);
  // Stops every camera (in parallel) and removes the status file.
  void stop_all();

  // Readable when a camera changed state (then call write_status).
  int change_fd() const { return changed_.fd(); }
  void clear_change() { changed_.clear(); }
  // Rewrites the status file (atomically: write then rename).
  void write_status();
  std::string status_json() const;
  // Every camera's status, in config order. Thread-safe (the MQTT monitor calls it).
  ServiceSnapshot snapshot() const;
  const std::string& status_path() const { return status_path_; }

 private:
  // Guards config_ and cameras_ against snapshot() (apply and stop_all run on one thread).
  mutable std::mutex mu_;
  Config config_;
  std::string runtime_dir_;
  std::string status_path_;
  std::map<std::string, std::unique_ptr<Camera>> cameras_;  // by name
  EventFd changed_;
  int64_t started_ns_ = 0;
};

}  // namespace cfsvc
