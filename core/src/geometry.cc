#include "geometry.h"

#include "enums.h"

namespace cuframes::detail {
namespace {

struct FormatTraits {
  uint32_t bytes_per_sample;
  uint32_t num_planes;
  bool subsampled_420;
};

// The one list of the formats (their names: format_name below). Switched on as the caller's
// bits (raw_enum): an out-of-range value is never loaded as the enum.
bool traits_of(uint32_t format, FormatTraits* t) {
  switch (format) {
    case CUFRAMES_FORMAT_NV12:
      *t = {1, 2, true};
      return true;
    case CUFRAMES_FORMAT_P010:
      *t = {2, 2, true};
      return true;
    case CUFRAMES_FORMAT_GRAY8:
      *t = {1, 1, false};
      return true;
  }
  return false;
}

const char* format_name(uint32_t format) {
  switch (format) {
    case CUFRAMES_FORMAT_NV12:
      return "NV12";
    case CUFRAMES_FORMAT_P010:
      return "P010";
    case CUFRAMES_FORMAT_GRAY8:
      return "GRAY8";
  }
  return "INVALID";
}

}  // namespace

Status unknown_format(uint32_t raw) {
  return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown pixel format %d", static_cast<int>(raw));
}

bool known_format(uint32_t raw) {
  FormatTraits t;
  return traits_of(raw, &t);
}

Status compute_geometry(cuframes_format_t format, uint32_t width, uint32_t height, uint32_t pitch,
                        uint32_t pitch_alignment, cuframes_geometry_t* out) {
  FormatTraits t;
  const uint32_t raw = raw_enum(format);
  if (!traits_of(raw, &t)) return unknown_format(raw);
  const char* name = format_name(raw);
  if (width == 0 || height == 0 || width > kMaxDimension || height > kMaxDimension) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "frame size %ux%u is outside 1..%u", width, height,
               kMaxDimension);
  }
  if (t.subsampled_420 && (width % 2 != 0 || height % 2 != 0)) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s needs an even width and height, got %ux%u", name,
               width, height);
  }
  if (!is_pow2(pitch_alignment)) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "pitch alignment %u is not a power of two",
               pitch_alignment);
  }
  const uint64_t row = uint64_t{width} * t.bytes_per_sample;
  uint64_t p = pitch;
  if (p == 0) {
    p = align_up(row, pitch_alignment);
  } else if (p < row) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "pitch %u is smaller than a %s row of %llu bytes",
               pitch, name, static_cast<unsigned long long>(row));
  } else if (p % t.bytes_per_sample != 0) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "pitch %u is not a multiple of the %u-byte sample",
               pitch, t.bytes_per_sample);
  }
  if (p > UINT32_MAX / 2) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "pitch %llu is too large",
               static_cast<unsigned long long>(p));
  }
  cuframes_geometry_t g{};
  g.format = format;
  g.width = width;
  g.height = height;
  g.bytes_per_sample = t.bytes_per_sample;
  g.num_planes = t.num_planes;
  g.pitch_y = static_cast<uint32_t>(p);
  g.offset_y = 0;
  const uint64_t y_bytes = p * height;
  if (t.num_planes == 2) {
    g.pitch_uv = static_cast<uint32_t>(p);
    g.height_uv = height / 2;
    g.offset_uv = y_bytes;  // UV rows follow the Y rows: the layout NVDEC and FFmpeg use
    g.frame_bytes = g.offset_uv + uint64_t{g.pitch_uv} * g.height_uv;
  } else {
    g.frame_bytes = y_bytes;
  }
  *out = g;
  return Ok();
}

bool geometry_consistent(const cuframes_geometry_t& g) {
  cuframes_geometry_t want;
  if (!compute_geometry(g.format, g.width, g.height, g.pitch_y, 1, &want).ok()) return false;
  return want.bytes_per_sample == g.bytes_per_sample && want.num_planes == g.num_planes &&
         want.pitch_y == g.pitch_y && want.pitch_uv == g.pitch_uv &&
         want.height_uv == g.height_uv && want.offset_y == g.offset_y &&
         want.offset_uv == g.offset_uv && want.frame_bytes == g.frame_bytes;
}

}  // namespace cuframes::detail

extern "C" const char* cuframes_format_name(cuframes_format_t format) {
  return cuframes::detail::format_name(cuframes::detail::raw_enum(format));
}

extern "C" cuframes_status_t cuframes_geometry_compute(cuframes_format_t format, uint32_t width,
                                                       uint32_t height, uint32_t pitch,
                                                       uint32_t pitch_alignment,
                                                       cuframes_geometry_t* out) {
  using namespace cuframes::detail;
  if (out == nullptr) return set_last_error(Err(CUFRAMES_ERR_INVALID_ARGUMENT, "out is NULL"));
  const uint32_t raw = raw_enum(format);  // checked before it is passed on as the enum
  if (!known_format(raw)) return set_last_error(unknown_format(raw));
  return set_last_error(compute_geometry(format, width, height, pitch, pitch_alignment, out));
}
