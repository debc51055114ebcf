// Colour descriptions of frames (cuframes_color_matrix_t, cuframes_color_range_t): validation,
// what UNKNOWN stands for, and the YUV -> RGB arithmetic a description implies (ITU-T H.273).
#pragma once

#include <cstdint>

#include "enums.h"  // raw_enum
#include "status.h"

namespace cuframes::detail {

// INVALID_ARGUMENT naming `what` ("source", "loan") for values outside the enums (the raw
// values: raw_enum).
Status check_color(uint32_t matrix, uint32_t range, const char* what);

// Values read from shared memory: anything outside the enums becomes UNKNOWN.
cuframes_color_matrix_t color_matrix_from(uint32_t value);
cuframes_color_range_t color_range_from(uint32_t value);

// The description a frame is converted with: UNKNOWN matrix -> BT.709 for frames at least 720
// rows high, BT.601 below; UNKNOWN range -> LIMITED, but FULL for GRAY8 (its sample is the grey
// level).
struct FrameColor {
  cuframes_color_matrix_t matrix;
  cuframes_color_range_t range;
};
FrameColor resolve_color(cuframes_format_t format, uint32_t height, cuframes_color_matrix_t matrix,
                         cuframes_color_range_t range);

// The affine map from stored samples to R, G, B levels on the 0..255 scale (before clamping):
//   level[c] = m[c][0] * Y + m[c][1] * U + m[c][2] * V + m[c][3],   c = R, G, B,
// with Y, U, V the sample values (0..255 for 8 bits, 0..1023 for P010's 10 bits). GRAY8 has no
// chroma: its U and V columns are 0 and the three rows are equal.
void yuv_to_rgb(FrameColor color, cuframes_format_t format, float m[3][4]);

}  // namespace cuframes::detail
