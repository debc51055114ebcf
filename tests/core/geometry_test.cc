// Geometry and format math.
#include <gtest/gtest.h>

#include "cuframes/cuframes.h"
#include "geometry.h"

namespace {

cuframes_geometry_t geo(cuframes_format_t f, uint32_t w, uint32_t h, uint32_t pitch = 0,
                        uint32_t align = 1) {
  cuframes_geometry_t g{};
  EXPECT_EQ(cuframes_geometry_compute(f, w, h, pitch, align, &g), CUFRAMES_OK)
      << cuframes_last_error();
  return g;
}

TEST(Geometry, Nv12_1080pHostAlignment) {
  cuframes_geometry_t g = geo(CUFRAMES_FORMAT_NV12, 1920, 1080, 0, 64);
  EXPECT_EQ(g.bytes_per_sample, 1u);
  EXPECT_EQ(g.num_planes, 2u);
  EXPECT_EQ(g.pitch_y, 1920u);
  EXPECT_EQ(g.pitch_uv, 1920u);
  EXPECT_EQ(g.height_uv, 540u);
  EXPECT_EQ(g.offset_y, 0u);
  EXPECT_EQ(g.offset_uv, 1920ull * 1080);
  EXPECT_EQ(g.frame_bytes, 1920ull * 1080 * 3 / 2);
}

TEST(Geometry, NvdecStylePitchIsKept) {
  // NVDEC hands out pitch 2048 for 1920-wide frames; a ring may be created with it.
  cuframes_geometry_t g = geo(CUFRAMES_FORMAT_NV12, 1920, 1080, 2048);
  EXPECT_EQ(g.pitch_y, 2048u);
  EXPECT_EQ(g.offset_uv, 2048ull * 1080);
  EXPECT_EQ(g.frame_bytes, 2048ull * 1080 + 2048ull * 540);
}

TEST(Geometry, OddWidthsAlignUp) {
  cuframes_geometry_t g = geo(CUFRAMES_FORMAT_NV12, 1366, 768, 0, 256);
  EXPECT_EQ(g.pitch_y, 1536u);
  g = geo(CUFRAMES_FORMAT_NV12, 2688, 1520, 0, 256);
  EXPECT_EQ(g.pitch_y, 2816u);  // 2688 = 10.5 * 256
  EXPECT_EQ(g.height_uv, 760u);
}

TEST(Geometry, P010UsesTwoBytesPerSample) {
  cuframes_geometry_t g = geo(CUFRAMES_FORMAT_P010, 1920, 1080, 0, 256);
  EXPECT_EQ(g.bytes_per_sample, 2u);
  EXPECT_EQ(g.pitch_y, 3840u);
  EXPECT_EQ(g.frame_bytes, 3840ull * 1080 * 3 / 2);
}

TEST(Geometry, Gray8HasOnePlane) {
  cuframes_geometry_t g = geo(CUFRAMES_FORMAT_GRAY8, 641, 479, 0, 1);
  EXPECT_EQ(g.num_planes, 1u);
  EXPECT_EQ(g.pitch_uv, 0u);
  EXPECT_EQ(g.offset_uv, 0u);
  EXPECT_EQ(g.frame_bytes, 641ull * 479);
}

TEST(Geometry, RejectsBadInput) {
  cuframes_geometry_t g;
  EXPECT_EQ(cuframes_geometry_compute(CUFRAMES_FORMAT_NV12, 1921, 1080, 0, 64, &g),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("even"), std::string::npos);
  EXPECT_EQ(cuframes_geometry_compute(CUFRAMES_FORMAT_NV12, 1920, 1081, 0, 64, &g),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_geometry_compute(CUFRAMES_FORMAT_NV12, 0, 1080, 0, 64, &g),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_geometry_compute(CUFRAMES_FORMAT_NV12, 20000, 1080, 0, 64, &g),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_geometry_compute(CUFRAMES_FORMAT_NV12, 1920, 1080, 1000, 64, &g),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("pitch 1000"), std::string::npos);
  EXPECT_EQ(cuframes_geometry_compute(CUFRAMES_FORMAT_P010, 1920, 1080, 3841, 1, &g),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_geometry_compute(CUFRAMES_FORMAT_NV12, 1920, 1080, 0, 100, &g),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_geometry_compute(static_cast<cuframes_format_t>(42), 64, 64, 0, 1, &g),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(cuframes_geometry_compute(CUFRAMES_FORMAT_NV12, 64, 64, 0, 1, nullptr),
            CUFRAMES_ERR_INVALID_ARGUMENT);
}

TEST(Geometry, ConsistencyCheckCatchesTampering) {
  cuframes_geometry_t g = geo(CUFRAMES_FORMAT_NV12, 640, 480, 0, 64);
  EXPECT_TRUE(cuframes::detail::geometry_consistent(g));
  cuframes_geometry_t bad = g;
  bad.offset_uv += 1;
  EXPECT_FALSE(cuframes::detail::geometry_consistent(bad));
  bad = g;
  bad.frame_bytes = 10;
  EXPECT_FALSE(cuframes::detail::geometry_consistent(bad));
  bad = g;
  bad.pitch_y = 100;
  EXPECT_FALSE(cuframes::detail::geometry_consistent(bad));
  bad = g;
  bad.format = CUFRAMES_FORMAT_INVALID;
  EXPECT_FALSE(cuframes::detail::geometry_consistent(bad));
}

TEST(Names, EnumsHaveNames) {
  EXPECT_STREQ(cuframes_format_name(CUFRAMES_FORMAT_NV12), "NV12");
  EXPECT_STREQ(cuframes_format_name(CUFRAMES_FORMAT_P010), "P010");
  EXPECT_STREQ(cuframes_format_name(CUFRAMES_FORMAT_GRAY8), "GRAY8");
  EXPECT_STREQ(cuframes_status_name(CUFRAMES_ERR_OVERRUN), "OVERRUN");
  EXPECT_STREQ(cuframes_status_name(static_cast<cuframes_status_t>(77)), "UNKNOWN");
  EXPECT_STREQ(cuframes_codec_name(CUFRAMES_CODEC_HEVC), "hevc");
  // what the CLI, the service's status file and MQTT print
  EXPECT_STREQ(cuframes_memory_name(CUFRAMES_MEMORY_HOST), "host");
  EXPECT_STREQ(cuframes_memory_name(CUFRAMES_MEMORY_CUDA), "cuda");
  EXPECT_STREQ(cuframes_memory_name(static_cast<cuframes_memory_t>(9)), "invalid");
  EXPECT_STREQ(cuframes_policy_name(CUFRAMES_POLICY_DROP), "drop");
  EXPECT_STREQ(cuframes_policy_name(CUFRAMES_POLICY_STRICT_WAIT), "strict_wait");
  EXPECT_STREQ(cuframes_policy_name(static_cast<cuframes_policy_t>(9)), "invalid");
  EXPECT_STREQ(cuframes_mode_name(CUFRAMES_MODE_NEWEST_ONLY), "newest_only");
  EXPECT_STREQ(cuframes_mode_name(CUFRAMES_MODE_STRICT_ORDER), "strict_order");
  EXPECT_STREQ(cuframes_mode_name(static_cast<cuframes_mode_t>(9)), "invalid");
  EXPECT_STREQ(cuframes_version_string(), CUFRAMES_VERSION_STRING);  // the header's, from CMake
  EXPECT_EQ(std::string(CUFRAMES_VERSION_STRING), std::to_string(CUFRAMES_VERSION_MAJOR) + "." +
                                                      std::to_string(CUFRAMES_VERSION_MINOR) + "." +
                                                      std::to_string(CUFRAMES_VERSION_PATCH));
  EXPECT_EQ(cuframes_protocol_version(), 3u);
}

}  // namespace
