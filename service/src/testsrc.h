// The built-in test source: NV12 frames whose every byte is a function of the frame's seq, so a
// subscriber can verify them exactly (docs/configuration.md, "testsrc"):
//   Y[r][c]  = (c + 2r + 3 seq) mod 256, except bytes 0..7 of row 0: seq, little-endian
//   UV[r][c] = (3c + r + 5 seq) mod 256   (r, c: row and byte within the UV plane)
// The pattern moves diagonally as seq grows.
#pragma once

#include <cstdint>

#include "cuframes/cuframes.h"

namespace cfsvc {

// Draws frame `seq` into planes laid out as in fi (CPU pointers, NV12).
void draw_testsrc(const cuframes_frame_info_t& fi, uint64_t seq);

}  // namespace cfsvc
