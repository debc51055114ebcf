#include "testsrc.h"

#include <cstring>

namespace cfsvc {

void draw_testsrc(const cuframes_frame_info_t& fi, uint64_t seq) {
  const cuframes_geometry_t& g = fi.geometry;
  const uint32_t row = g.width * g.bytes_per_sample;
  auto* y = static_cast<uint8_t*>(fi.plane_y);
  for (uint32_t r = 0; r < g.height; ++r) {
    uint8_t* p = y + uint64_t{r} * g.pitch_y;
    const uint8_t base = static_cast<uint8_t>(2 * r + 3 * seq);
    for (uint32_t c = 0; c < row; ++c) p[c] = static_cast<uint8_t>(base + c);
  }
  std::memcpy(y, &seq, sizeof seq);  // little-endian hosts only (x86-64, aarch64)
  if (g.num_planes == 2) {
    auto* uv = static_cast<uint8_t*>(fi.plane_uv);
    for (uint32_t r = 0; r < g.height_uv; ++r) {
      uint8_t* p = uv + uint64_t{r} * g.pitch_uv;
      const uint8_t base = static_cast<uint8_t>(r + 5 * seq);
      for (uint32_t c = 0; c < row; ++c) p[c] = static_cast<uint8_t>(base + 3 * c);
    }
  }
}

}  // namespace cfsvc
