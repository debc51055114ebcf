#include "metrics.h"

#include <spdlog/fmt/fmt.h>

#include <cstring>
#include <functional>
#include <vector>

#include "camera_state.h"
#include "cuframes/cuframes.h"

namespace cfsvc {
namespace {

// Label values: backslash, double quote and newline escaped.
std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// One metric family: its HELP and TYPE lines, then its samples together.
class Family {
 public:
  Family(std::string name, const char* type, const char* help) : name_(std::move(name)) {
    head_ = "# HELP " + name_ + " " + help + "\n# TYPE " + name_ + " " + type + "\n";
  }
  void add(const std::vector<std::pair<const char*, std::string>>& labels, double value) {
    std::string line = name_;
    if (!labels.empty()) {
      line += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i) line += ',';
        line += fmt::format("{}=\"{}\"", labels[i].first, escape(labels[i].second));
      }
      line += '}';
    }
    line += fmt::format(" {}\n", value);
    samples_ += line;
  }
  void write(std::string* out) const {
    if (!samples_.empty()) *out += head_ + samples_;
  }

 private:
  std::string name_, head_, samples_;
};

}  // namespace

std::vector<std::string> subscriber_labels(const std::vector<cuframes_subscriber_stats_t>& subs) {
  std::vector<std::string> names;
  for (const cuframes_subscriber_stats_t& s : subs) {
    names.emplace_back(s.name, strnlen(s.name, sizeof s.name));
  }
  std::vector<std::string> out = names;
  for (size_t i = 0; i < subs.size(); ++i) {
    size_t same = 0;
    for (const std::string& n : names) same += n == names[i];
    if (same > 1) out[i] += "_" + std::to_string(subs[i].slot_index);
  }
  return out;
}

std::string prometheus_metrics(const ServiceSnapshot& s, const std::optional<GpuStats>& gpu,
                               const std::map<std::string, SnapshotCounters>& snapshots) {
  std::string out;
  using L = std::vector<std::pair<const char*, std::string>>;

  Family info("cuframes_info", "gauge", "The service's version (always 1).");
  info.add({{"version", cuframes_version_string()}}, 1);
  Family uptime("cuframes_uptime_seconds", "gauge", "Seconds since the service started.");
  uptime.add({}, s.uptime_s);
  uint64_t streaming = 0;
  for (const CameraStatus& c : s.cameras) streaming += c.state == "streaming";
  Family cameras("cuframes_cameras", "gauge", "Cameras configured.");
  cameras.add({}, static_cast<double>(s.cameras.size()));
  Family streaming_f("cuframes_cameras_streaming", "gauge", "Cameras streaming.");
  streaming_f.add({}, static_cast<double>(streaming));
  for (const Family* f : {&info, &uptime, &cameras, &streaming_f}) f->write(&out);

  if (gpu) {
    Family mem("cuframes_gpu_memory_used_bytes", "gauge", "GPU memory in use (NVML).");
    mem.add({{"gpu", gpu->name}}, static_cast<double>(gpu->memory_used_bytes));
    Family total("cuframes_gpu_memory_total_bytes", "gauge", "GPU memory in all (NVML).");
    total.add({{"gpu", gpu->name}}, static_cast<double>(gpu->memory_total_bytes));
    Family util("cuframes_gpu_utilization_percent", "gauge", "GPU utilization (NVML).");
    if (gpu->utilization_percent >= 0) util.add({{"gpu", gpu->name}}, gpu->utilization_percent);
    Family dec("cuframes_gpu_decoder_utilization_percent", "gauge", "NVDEC utilization (NVML).");
    if (gpu->decoder_utilization_percent >= 0) {
      dec.add({{"gpu", gpu->name}}, gpu->decoder_utilization_percent);
    }
    for (const Family* f : {&mem, &total, &util, &dec}) f->write(&out);
  }

  // Camera figures: (family, value of a camera).
  struct CameraMetric {
    Family family;
    std::function<std::optional<double>(const CameraStatus&)> value;
  };
  auto num = [](auto v) { return std::optional<double>(static_cast<double>(v)); };
  std::vector<CameraMetric> cam = {
      {{"cuframes_camera_up", "gauge", "1 while the camera is streaming, else 0."},
       [&](const CameraStatus& c) { return num(c.state == "streaming"); }},
      {{"cuframes_camera_fps", "gauge", "Frames per second into the ring (last 2 s)."},
       [&](const CameraStatus& c) { return num(c.fps); }},
      {{"cuframes_camera_frames_total", "counter", "Frames decoded and published."},
       [&](const CameraStatus& c) { return num(c.frames); }},
      {{"cuframes_camera_dropped_frames_total", "counter",
        "Frames dropped by the ring (every slot held)."},
       [&](const CameraStatus& c) { return num(c.dropped); }},
      {{"cuframes_camera_decode_errors_total", "counter", "Decode errors."},
       [&](const CameraStatus& c) { return num(c.decode_errors); }},
      {{"cuframes_camera_reconnects_total", "counter", "Reconnects (and retries)."},
       [&](const CameraStatus& c) { return num(c.reconnects); }},
      {{"cuframes_camera_subscribers", "gauge", "Subscribers attached to the ring."},
       [&](const CameraStatus& c) { return num(c.subscribers); }},
      {{"cuframes_camera_ring_occupancy", "gauge", "Ring slots held by subscribers."},
       [&](const CameraStatus& c) { return num(c.occupancy); }},
      {{"cuframes_camera_ring_slots", "gauge", "Slots in the ring."},
       [&](const CameraStatus& c) { return num(c.slots); }},
      {{"cuframes_camera_last_frame_age_seconds", "gauge",
        "Seconds since the last frame reached the ring (absent before the first)."},
       [&](const CameraStatus& c) {
         return c.last_frame_age_ms < 0 ? std::nullopt
                                        : num(static_cast<double>(c.last_frame_age_ms) / 1e3);
       }},
  };
  auto snap_of = [&](const CameraStatus& c) {
    auto it = snapshots.find(c.name);
    return it == snapshots.end() ? SnapshotCounters{} : it->second;
  };
  cam.push_back({{"cuframes_camera_snapshots_total", "counter", "Snapshots made (MQTT, HTTP)."},
                 [&](const CameraStatus& c) { return num(snap_of(c).pictures); }});
  cam.push_back({{"cuframes_camera_snapshot_failures_total", "counter", "Snapshots that failed."},
                 [&](const CameraStatus& c) { return num(snap_of(c).failures); }});
  cam.push_back({{"cuframes_camera_snapshot_cpu_seconds_total", "counter",
                  "CPU time the snapshots took (scaling host frames, copying, encoding)."},
                 [&](const CameraStatus& c) { return num(snap_of(c).cpu_s); }});
  cam.push_back({{"cuframes_camera_snapshot_gpu_seconds_total", "counter",
                  "GPU time the snapshots of cuda rings took (scaling, copy to the host)."},
                 [&](const CameraStatus& c) { return num(snap_of(c).gpu_s); }});
  for (CameraMetric& m : cam) {
    for (const CameraStatus& c : s.cameras) {
      if (std::optional<double> v = m.value(c)) m.family.add({{"camera", c.name}}, *v);
    }
    m.family.write(&out);
  }
  // The state as an enum: one series per state, 1 for the camera's.
  Family state("cuframes_camera_state", "gauge", "1 for the camera's state, 0 for the others.");
  for (const CameraStatus& c : s.cameras) {
    for (CameraState st : kCameraStates) {
      state.add({{"camera", c.name}, {"state", to_string(st)}}, c.state == to_string(st));
    }
  }
  state.write(&out);
  // The ingest thread's CPU by stage (cpu_account.h).
  Family ingest("cuframes_camera_ingest_cpu_seconds_total", "counter",
                "CPU time of the camera's ingest thread, by stage of its loop.");
  for (const CameraStatus& c : s.cameras) {
    for (size_t i = 0; i < kCpuStages; ++i) {
      ingest.add({{"camera", c.name}, {"stage", to_string(static_cast<CpuStage>(i))}},
                 static_cast<double>(c.cpu.stage_ns[i]) / 1e9);
    }
  }
  ingest.write(&out);

  // Subscribers: (family, value of a subscriber).
  struct SubMetric {
    Family family;
    std::function<double(const cuframes_subscriber_stats_t&)> value;
  };
  using S = cuframes_subscriber_stats_t;
  std::vector<SubMetric> sub = {
      {{"cuframes_subscriber_frames_total", "counter", "Frames handed to the subscriber."},
       [](const S& x) { return static_cast<double>(x.frames_received); }},
      {{"cuframes_subscriber_gaps_total", "counter",
        "Frames published that the subscriber never got."},
       [](const S& x) { return static_cast<double>(x.gaps); }},
      {{"cuframes_subscriber_timeouts_total", "counter", "Waits for a frame that timed out."},
       [](const S& x) { return static_cast<double>(x.timeouts); }},
      {{"cuframes_subscriber_errors_total", "counter", "Reads that failed otherwise."},
       [](const S& x) { return static_cast<double>(x.errors); }},
      {{"cuframes_subscriber_overruns_total", "counter", "STRICT_ORDER laps."},
       [](const S& x) { return static_cast<double>(x.overruns); }},
      {{"cuframes_subscriber_latency_seconds", "gauge", "Publish to next_frame of the last frame."},
       [](const S& x) {
         return static_cast<double>(std::max<int64_t>(x.last_latency_ns, 0)) / 1e9;
       }},
      {{"cuframes_subscriber_lag_frames", "gauge", "Newest published seq - the last one read."},
       [](const S& x) { return static_cast<double>(x.lag); }},
      {{"cuframes_subscriber_held_frames", "gauge", "Frames the subscriber holds."},
       [](const S& x) { return static_cast<double>(x.held_frames); }},
  };
  for (SubMetric& m : sub) {
    for (const CameraStatus& c : s.cameras) {
      const std::vector<std::string> names = subscriber_labels(c.subscriber_stats);
      for (size_t i = 0; i < c.subscriber_stats.size(); ++i) {
        m.family.add(L{{"camera", c.name}, {"subscriber", names[i]}},
                     m.value(c.subscriber_stats[i]));
      }
    }
    m.family.write(&out);
  }
  return out;
}

}  // namespace cfsvc
