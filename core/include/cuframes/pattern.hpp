// Verifiable frame content for host memory: a stamp (the frame's seq and a checksum of every
// other byte of every plane) in the first 16 bytes of the Y plane. A reader checks that a frame
// carries the seq it was delivered with and that no byte changed: a torn frame, or one
// overwritten while held, fails. Used by the demo, the tests and the service's testsrc.
// Header-only; works on any cuframes_frame_info_t whose planes are CPU pointers.
#ifndef CUFRAMES_PATTERN_HPP_
#define CUFRAMES_PATTERN_HPP_

#include <cstdint>
#include <cstring>
#include <string>

#include "cuframes/cuframes.h"

namespace cuframes::pattern {

constexpr size_t kStampBytes = 16;

namespace detail {

inline uint64_t mix(uint64_t h, uint64_t w) {
  h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

// Calls fn(ptr, len) for each row of each plane, skipping the stamp.
template <class Fn>
void for_each_row(const cuframes_frame_info_t& fi, Fn&& fn) {
  const cuframes_geometry_t& g = fi.geometry;
  const size_t row = size_t{g.width} * g.bytes_per_sample;
  auto* y = static_cast<uint8_t*>(fi.plane_y);
  for (uint32_t r = 0; r < g.height; ++r) {
    uint8_t* p = y + size_t{r} * g.pitch_y;
    if (r == 0)
      fn(p + kStampBytes, row - kStampBytes);
    else
      fn(p, row);
  }
  if (g.num_planes == 2) {
    auto* uv = static_cast<uint8_t*>(fi.plane_uv);
    for (uint32_t r = 0; r < g.height_uv; ++r) fn(uv + size_t{r} * g.pitch_uv, row);
  }
}

inline uint64_t checksum(const cuframes_frame_info_t& fi) {
  uint64_t h = 0x6a09e667f3bcc908ull;
  for_each_row(fi, [&](const uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = mix(h, w);
    }
    for (; i < n; ++i) h = mix(h, p[i]);
  });
  return h;
}

}  // namespace detail

// Writes the stamp for seq over whatever content the planes already hold.
inline void stamp(const cuframes_frame_info_t& fi, uint64_t seq) {
  uint64_t sum = detail::checksum(fi);
  auto* y = static_cast<uint8_t*>(fi.plane_y);
  std::memcpy(y, &seq, 8);
  std::memcpy(y + 8, &sum, 8);
}

// Fills every plane with noise derived from seq, then stamps it.
inline void fill(const cuframes_frame_info_t& fi, uint64_t seq) {
  uint64_t x = seq * 0x9e3779b97f4a7c15ull + 1;
  detail::for_each_row(fi, [&](uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(p + i, &x, 8);
    }
    for (; i < n; ++i) p[i] = static_cast<uint8_t>(x >> (8 * (i % 8)));
  });
  stamp(fi, seq);
}

// The seq stamped in a frame.
inline uint64_t stamped_seq(const cuframes_frame_info_t& fi) {
  uint64_t seq;
  std::memcpy(&seq, fi.plane_y, 8);
  return seq;
}

// True when the frame carries seq and every byte is as stamped; otherwise *why says what differs.
inline bool verify(const cuframes_frame_info_t& fi, uint64_t seq, std::string* why = nullptr) {
  uint64_t got_seq, got_sum;
  std::memcpy(&got_seq, fi.plane_y, 8);
  std::memcpy(&got_sum, static_cast<const uint8_t*>(fi.plane_y) + 8, 8);
  if (got_seq != seq) {
    if (why) *why = "stamped seq " + std::to_string(got_seq) + ", expected " + std::to_string(seq);
    return false;
  }
  if (detail::checksum(fi) != got_sum) {
    if (why) *why = "checksum mismatch in frame " + std::to_string(seq);
    return false;
  }
  return true;
}

}  // namespace cuframes::pattern

#endif  // CUFRAMES_PATTERN_HPP_
