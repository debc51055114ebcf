// GPU stats through NVML (service/src/nvml.h) on a real GPU, and what the MQTT monitor makes of
// them: the service JSON and the three GPU entities. Label "gpu": runs on the GPU machine
// (tests/gpu/run.sh), where CUFRAMES_TEST_EXPECT_GPU=1 turns a missing NVML into a failure.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "health.h"
#include "nvml.h"

namespace cfsvc {
namespace {

bool expect_gpu() {
  const char* v = std::getenv("CUFRAMES_TEST_EXPECT_GPU");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

TEST(Nvml, ReportsGpuZero) {
  const std::optional<GpuStats> g = query_gpu(0);
  if (!g) {
    if (expect_gpu()) FAIL() << "NVML gave nothing for GPU 0 on a GPU machine";
    GTEST_SKIP() << "no NVML here";
  }
  std::printf("GPU 0: %s, %.0f of %.0f MB used, utilization %d%%, decoder %d%%\n", g->name.c_str(),
              g->memory_used_bytes / 1e6, g->memory_total_bytes / 1e6, g->utilization_percent,
              g->decoder_utilization_percent);
  EXPECT_FALSE(g->name.empty());
  EXPECT_GT(g->memory_total_bytes, uint64_t{1} << 30);
  EXPECT_LE(g->memory_used_bytes, g->memory_total_bytes);
  EXPECT_GE(g->utilization_percent, 0);
  EXPECT_LE(g->utilization_percent, 100);
  EXPECT_GE(g->decoder_utilization_percent, 0);
  EXPECT_LE(g->decoder_utilization_percent, 100);

  // No such device: nothing, quietly (and again: the library stays loaded).
  EXPECT_FALSE(query_gpu(4096).has_value());
  EXPECT_TRUE(query_gpu(0).has_value());

  MqttConfig m;
  m.host = "localhost";
  m.node_id = "n1";
  m.base_topic = "cuframes/n1";
  const std::string json = service_stats_json(m, ServiceSnapshot{}, g);
  EXPECT_NE(json.find("\"name\":\"" + g->name + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"memory_total_mb\":"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"gpu\":null"), std::string::npos) << json;
  int gpu_entities = 0;
  for (const Discovery& d : service_discovery(m, true)) {
    gpu_entities += d.object_id.rfind("cuframes_n1_gpu_", 0) == 0;
  }
  EXPECT_EQ(gpu_entities, 3);
}

}  // namespace
}  // namespace cfsvc
