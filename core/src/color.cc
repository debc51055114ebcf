#include "color.h"

namespace cuframes::detail {
namespace {

constexpr uint32_t kMinHdRows = 720;  // UNKNOWN matrix: BT.709 from this height up, BT.601 below

struct Weights {
  double kr, kb;
};

Weights weights(cuframes_color_matrix_t m) {
  switch (m) {
    case CUFRAMES_COLOR_MATRIX_BT601:
      return {0.299, 0.114};
    case CUFRAMES_COLOR_MATRIX_BT2020:
      return {0.2627, 0.0593};
    case CUFRAMES_COLOR_MATRIX_BT709:
    default:
      return {0.2126, 0.0722};
  }
}

}  // namespace

Status check_color(uint32_t matrix, uint32_t range, const char* what) {
  if (static_cast<uint32_t>(color_matrix_from(matrix)) != matrix) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s: unknown color_matrix %d (want 0..%d)", what,
               static_cast<int32_t>(matrix), static_cast<int>(CUFRAMES_COLOR_MATRIX_BT2020));
  }
  if (static_cast<uint32_t>(color_range_from(range)) != range) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s: unknown color_range %d (want 0..%d)", what,
               static_cast<int32_t>(range), static_cast<int>(CUFRAMES_COLOR_RANGE_FULL));
  }
  return Ok();
}

cuframes_color_matrix_t color_matrix_from(uint32_t v) {
  return v <= CUFRAMES_COLOR_MATRIX_BT2020 ? static_cast<cuframes_color_matrix_t>(v)
                                           : CUFRAMES_COLOR_MATRIX_UNKNOWN;
}

cuframes_color_range_t color_range_from(uint32_t v) {
  return v <= CUFRAMES_COLOR_RANGE_FULL ? static_cast<cuframes_color_range_t>(v)
                                        : CUFRAMES_COLOR_RANGE_UNKNOWN;
}

FrameColor resolve_color(cuframes_format_t format, uint32_t height, cuframes_color_matrix_t matrix,
                         cuframes_color_range_t range) {
  FrameColor c{matrix, range};
  if (c.matrix == CUFRAMES_COLOR_MATRIX_UNKNOWN) {
    c.matrix = height >= kMinHdRows ? CUFRAMES_COLOR_MATRIX_BT709 : CUFRAMES_COLOR_MATRIX_BT601;
  }
  if (c.range == CUFRAMES_COLOR_RANGE_UNKNOWN) {
    c.range =
        format == CUFRAMES_FORMAT_GRAY8 ? CUFRAMES_COLOR_RANGE_FULL : CUFRAMES_COLOR_RANGE_LIMITED;
  }
  return c;
}

void yuv_to_rgb(FrameColor color, cuframes_format_t format, float m[3][4]) {
  // H.273: with n bits, limited range Y = 16 + 219 E'y, C = 128 + 224 E'c (x 2^(n-8)); full range
  // Y = (2^n - 1) E'y, C = 2^(n-1) + (2^n - 1) E'c. E' here is on the 0..255 scale.
  const double k = format == CUFRAMES_FORMAT_P010 ? 4.0 : 1.0;  // 2^(n - 8)
  const double max = 255.0 * k + (k - 1.0);                     // 2^n - 1
  double y_gain, y_off, c_gain;
  if (color.range == CUFRAMES_COLOR_RANGE_FULL) {
    y_gain = 255.0 / max;
    c_gain = 255.0 / max;
    y_off = 0.0;
  } else {
    y_gain = 255.0 / (219.0 * k);
    c_gain = 255.0 / (224.0 * k);
    y_off = 16.0 * k;
  }
  const double c_off = 128.0 * k;
  const Weights w = weights(color.matrix);
  const double kg = 1.0 - w.kr - w.kb;
  // R = Y' + 2(1 - Kr) Pr;  G = Y' - 2 Kb (1 - Kb) / Kg Pb - 2 Kr (1 - Kr) / Kg Pr;
  // B = Y' + 2(1 - Kb) Pb.  (Y', Pb, Pr on the 0..255 scale.)
  double cu[3] = {0.0, -2.0 * w.kb * (1.0 - w.kb) / kg, 2.0 * (1.0 - w.kb)};
  double cv[3] = {2.0 * (1.0 - w.kr), -2.0 * w.kr * (1.0 - w.kr) / kg, 0.0};
  const bool gray = format == CUFRAMES_FORMAT_GRAY8;
  for (int c = 0; c < 3; ++c) {
    const double u = gray ? 0.0 : cu[c] * c_gain;
    const double v = gray ? 0.0 : cv[c] * c_gain;
    m[c][0] = static_cast<float>(y_gain);
    m[c][1] = static_cast<float>(u);
    m[c][2] = static_cast<float>(v);
    m[c][3] = static_cast<float>(-y_off * y_gain - (u + v) * c_off);
  }
}

}  // namespace cuframes::detail

// The names switch on the caller's bits (enums.h): an out-of-range value is never loaded as the
// enum.
extern "C" const char* cuframes_color_matrix_name(cuframes_color_matrix_t matrix) {
  switch (cuframes::detail::raw_enum(matrix)) {
    case CUFRAMES_COLOR_MATRIX_UNKNOWN:
      return "unknown";
    case CUFRAMES_COLOR_MATRIX_BT601:
      return "bt601";
    case CUFRAMES_COLOR_MATRIX_BT709:
      return "bt709";
    case CUFRAMES_COLOR_MATRIX_BT2020:
      return "bt2020";
  }
  return "invalid";
}

extern "C" const char* cuframes_color_range_name(cuframes_color_range_t range) {
  switch (cuframes::detail::raw_enum(range)) {
    case CUFRAMES_COLOR_RANGE_UNKNOWN:
      return "unknown";
    case CUFRAMES_COLOR_RANGE_LIMITED:
      return "limited";
    case CUFRAMES_COLOR_RANGE_FULL:
      return "full";
  }
  return "invalid";
}
