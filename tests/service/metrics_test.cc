// The Prometheus exposition (service/src/metrics.h) and the snapshot size rule
// (common/image.h): label values escaped, one HELP/TYPE per family with its samples together,
// subscribers told apart by slot where they share a name, counters named _total.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "image.h"
#include "metrics.h"

namespace cfsvc {
namespace {

cuframes_subscriber_stats_t sub(const char* name, uint32_t slot, uint64_t frames) {
  cuframes_subscriber_stats_t s{};
  std::strncpy(s.name, name, sizeof s.name - 1);
  s.slot_index = slot;
  s.frames_received = frames;
  return s;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Metrics, FamiliesTypesLabelsAndEscaping) {
  ServiceSnapshot s;
  s.uptime_s = 12.5;
  CameraStatus a;
  a.name = "front";
  a.state = "streaming";
  a.frames = 1234;
  a.fps = 15;
  a.last_frame_age_ms = 40;
  a.cpu.stage_ns[static_cast<size_t>(CpuStage::kDecode)] = 1500000000;
  a.subscriber_stats = {sub("det", 0, 10), sub("det", 3, 20), sub("we\"ird\\", 1, 5)};
  CameraStatus b;
  b.name = "yard";
  b.state = "stalled";
  s.cameras = {a, b};
  std::map<std::string, SnapshotCounters> snaps;
  snaps["front"] = {7, 1, 0.25, 0.0125};
  const std::string m = prometheus_metrics(s, std::nullopt, snaps);

  EXPECT_NE(m.find("# TYPE cuframes_camera_frames_total counter\n"), std::string::npos) << m;
  EXPECT_NE(m.find("cuframes_camera_frames_total{camera=\"front\"} 1234\n"), std::string::npos);
  EXPECT_NE(m.find("# TYPE cuframes_camera_fps gauge\n"), std::string::npos);
  EXPECT_NE(m.find("cuframes_camera_snapshots_total{camera=\"front\"} 7\n"), std::string::npos);
  EXPECT_NE(m.find("cuframes_camera_snapshots_total{camera=\"yard\"} 0\n"), std::string::npos);
  EXPECT_NE(m.find("cuframes_camera_snapshot_gpu_seconds_total{camera=\"front\"} 0.0125\n"),
            std::string::npos);
  // The ingest thread's CPU: a series per camera and stage, in seconds.
  EXPECT_NE(
      m.find("cuframes_camera_ingest_cpu_seconds_total{camera=\"front\",stage=\"decode\"} 1.5\n"),
      std::string::npos);
  EXPECT_EQ(count(m, "cuframes_camera_ingest_cpu_seconds_total{camera=\"yard\","), kCpuStages);
  // One HELP and one TYPE per family, even with several cameras.
  EXPECT_EQ(count(m, "# TYPE cuframes_camera_up "), 1u);
  EXPECT_EQ(count(m, "# HELP cuframes_camera_up "), 1u);
  // last_frame_age: only for a camera that has had a frame.
  EXPECT_EQ(count(m, "cuframes_camera_last_frame_age_seconds{"), 1u);
  // The state as an enum: five series per camera, one of them 1.
  EXPECT_NE(m.find("cuframes_camera_state{camera=\"yard\",state=\"stalled\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.find("cuframes_camera_state{camera=\"yard\",state=\"streaming\"} 0\n"),
            std::string::npos);
  EXPECT_EQ(count(m, "cuframes_camera_state{camera=\"front\""), 5u);
  // Subscribers sharing a name get their slot; label values are escaped.
  EXPECT_NE(m.find("{camera=\"front\",subscriber=\"det_0\"} 10\n"), std::string::npos) << m;
  EXPECT_NE(m.find("{camera=\"front\",subscriber=\"det_3\"} 20\n"), std::string::npos);
  EXPECT_NE(m.find("{camera=\"front\",subscriber=\"we\\\"ird\\\\\"} 5\n"), std::string::npos);
  // The samples of a family follow its TYPE line, before the next family's.
  const size_t type = m.find("# TYPE cuframes_subscriber_frames_total counter");
  const size_t next = m.find("# HELP", type);
  const size_t sample =
      m.find("cuframes_subscriber_frames_total{camera=\"front\",subscriber=\"det_3\"}");
  EXPECT_TRUE(type < sample && sample < next) << m;
  // No GPU: no GPU families.
  EXPECT_EQ(m.find("cuframes_gpu_"), std::string::npos);
}

TEST(Metrics, GpuFamiliesWhenNvmlAnswers) {
  GpuStats g;
  g.name = "H200";
  g.memory_used_bytes = 1000;
  g.memory_total_bytes = 2000;
  g.utilization_percent = 5;
  g.decoder_utilization_percent = -1;  // not reported: left out
  const std::string m = prometheus_metrics(ServiceSnapshot{}, g, {});
  EXPECT_NE(m.find("cuframes_gpu_memory_used_bytes{gpu=\"H200\"} 1000\n"), std::string::npos) << m;
  EXPECT_NE(m.find("cuframes_gpu_utilization_percent{gpu=\"H200\"} 5\n"), std::string::npos);
  EXPECT_EQ(m.find("cuframes_gpu_decoder_utilization_percent{"), std::string::npos);
}

TEST(ScaledSize, KeepsTheAspectAndNeverScalesUp) {
  uint32_t w = 0, h = 0;
  cfimage::scaled_size(1920, 1080, 640, &w, &h);
  EXPECT_EQ(w, 640u);
  EXPECT_EQ(h, 360u);
  cfimage::scaled_size(2688, 1520, 640, &w, &h);
  EXPECT_EQ(w, 640u);
  EXPECT_EQ(h, 362u);  // 361.9
  cfimage::scaled_size(320, 240, 640, &w, &h);
  EXPECT_EQ(w, 320u);
  EXPECT_EQ(h, 240u);
  cfimage::scaled_size(1280, 720, 0, &w, &h);
  EXPECT_EQ(w, 1280u);
  EXPECT_EQ(h, 720u);
  cfimage::scaled_size(16384, 2, 16, &w, &h);
  EXPECT_EQ(w, 16u);
  EXPECT_EQ(h, 1u);  // at least one row
}

}  // namespace
}  // namespace cfsvc
