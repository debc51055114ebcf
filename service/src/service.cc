#include "service.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "atomic_file.h"
#include "cuframes/cuframes.h"
#include "health.h"
#include "json.h"
#include "source.h"

namespace cfsvc {

Service::Service() : started_ns_(mono_ns()) {}

Service::~Service() {
  stop_all();
}

bool Service::apply(const Config& config, std::string* error) {
  // The rings' own rule (cuframes.h), made as a publisher makes it: the status file lives there.
  char resolved[CUFRAMES_PATH_MAX];
  if (cuframes_runtime_dir_create(config.runtime_dir ? config.runtime_dir->c_str() : nullptr,
                                  resolved, sizeof resolved) != CUFRAMES_OK) {
    if (error) *error = cuframes_last_error();
    return false;
  }
  const std::string dir = resolved;
  const bool dir_changed = !runtime_dir_.empty() && dir != runtime_dir_;

  // What can fail (memory) comes before anything changes: the copy of the config, and the
  // cameras to start (made, not started). An exception here leaves every camera as it was.
  Config next = config;
  std::vector<std::string> going;  // stopped: removed, or changed (restarted)
  for (const auto& [name, cam] : cameras_) {
    const CameraConfig* now = nullptr;
    for (const CameraConfig& c : config.cameras) {
      if (c.name == name) now = &c;
    }
    if (now == nullptr || dir_changed || !(*now == cam->config())) going.push_back(name);
  }
  std::vector<std::unique_ptr<Camera>> fresh;
  for (const CameraConfig& c : config.cameras) {
    const bool kept =
        cameras_.count(c.name) != 0 && std::find(going.begin(), going.end(), c.name) == going.end();
    if (!kept) fresh.push_back(std::make_unique<Camera>(c, dir, [this] { changed_.set(); }));
  }
  std::vector<std::unique_ptr<Camera>> stopping;
  stopping.reserve(going.size());
  if (dir_changed) spdlog::info("runtime dir changes to {}: restarting every camera", dir);

  // Stop what goes away or changes, in parallel, before starting anything: a restarted camera
  // must free its key first.
  for (const std::string& name : going) {
    auto it = cameras_.find(name);
    const bool removed = std::none_of(config.cameras.begin(), config.cameras.end(),
                                      [&](const CameraConfig& c) { return c.name == name; });
    spdlog::info("camera '{}': {}", name, removed ? "removed" : "changed, restarting");
    it->second->request_stop();
    std::lock_guard<std::mutex> lk(mu_);
    stopping.push_back(std::move(it->second));
    cameras_.erase(it);
  }
  for (auto& c : stopping) c->join();
  stopping.clear();

  if (dir_changed && !status_path_.empty()) ::unlink(status_path_.c_str());  // the old dir's
  std::lock_guard<std::mutex> lk(mu_);
  runtime_dir_ = dir;
  status_path_ = dir + "/cuframes-service.json";
  if (const int n = cfcommon::remove_stale_temporaries(status_path_); n > 0) {
    spdlog::info("removed {} temporary status file(s) left by a process gone", n);
  }
  config_ = std::move(next);
  for (std::unique_ptr<Camera>& cam : fresh) {
    const CameraConfig& c = cam->config();
    spdlog::info("camera '{}': starting ({})", c.name, mask_credentials(c.url));
    cam->start();
    const std::string name = c.name;
    cameras_.emplace(name, std::move(cam));
  }
  changed_.set();
  return true;
}

void Service::stop_all() {
  for (auto& [name, cam] : cameras_) cam->request_stop();
  for (auto& [name, cam] : cameras_) cam->join();
  std::lock_guard<std::mutex> lk(mu_);
  cameras_.clear();
  if (!status_path_.empty()) ::unlink(status_path_.c_str());
}

ServiceSnapshot Service::snapshot() const {
  ServiceSnapshot s;
  s.uptime_s = static_cast<double>(mono_ns() - started_ns_) / 1e9;
  std::lock_guard<std::mutex> lk(mu_);
  s.runtime_dir = runtime_dir_;
  for (const CameraConfig& c : config_.cameras) {  // in config order
    auto it = cameras_.find(c.name);
    if (it != cameras_.end()) s.cameras.push_back(it->second->status());
  }
  return s;
}

std::string Service::status_json() const {
  const ServiceSnapshot snap = snapshot();
  cfcommon::Json w;
  w["version"] = cuframes_version_string();
  w["pid"] = static_cast<int64_t>(::getpid());
  w["uptime_s"] = cfcommon::fixed(snap.uptime_s, 1);
  w["config"] = config_.path;
  w["runtime_dir"] = runtime_dir_;
  cfcommon::Json& cameras = w["cameras"] = cfcommon::Json::object();
  for (const CameraStatus& s : snap.cameras) {
    cfcommon::Json& c = cameras[s.name];
    c["key"] = s.key;
    c["url"] = s.url;
    write_camera_fields(c, s);
    cfcommon::Json& cpu = c["cpu"] = cfcommon::Json::object();  // the ingest thread (cpu_account.h)
    for (const auto& [k, v] : cpu_fields(s.cpu)) cpu[k] = v;
  }
  return cfcommon::dump(w);
}

void Service::write_status() {
  if (status_path_.empty()) return;
  const std::string error = cfcommon::write_file_atomic(status_path_, status_json() + "\n", 0640);
  if (!error.empty()) spdlog::warn("{}", error);
}

}  // namespace cfsvc
