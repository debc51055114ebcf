// Frame geometry: plane sizes, pitches and offsets of each pixel format. Pure functions.
#pragma once

#include <cstdint>

#include "status.h"

namespace cuframes::detail {

constexpr uint32_t kMaxDimension = 16384;

// INVALID_ARGUMENT "unknown pixel format N" (known_format, enums.h, says which are known).
Status unknown_format(uint32_t raw);

// Fills *out for the given format and size (see cuframes_geometry_compute).
Status compute_geometry(cuframes_format_t format, uint32_t width, uint32_t height, uint32_t pitch,
                        uint32_t pitch_alignment, cuframes_geometry_t* out);

// True when g is internally consistent (every plane inside frame_bytes, pitches >= rows). Used
// on geometry read from shared memory.
bool geometry_consistent(const cuframes_geometry_t& g);

// x rounded up to a multiple of a power of two.
constexpr uint64_t align_up(uint64_t x, uint64_t pow2) {
  return (x + pow2 - 1) & ~(pow2 - 1);
}
constexpr bool is_pow2(uint64_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

}  // namespace cuframes::detail
