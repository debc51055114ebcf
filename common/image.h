// Pictures to image file bytes, shared by the `cuframes` CLI (snapshot) and cuframes-service
// (snapshots over MQTT and HTTP): libswscale converts and scales, FFmpeg's png or mjpeg encoder
// encodes. Not installed: an internal static library (cuframes_common).
#ifndef CUFRAMES_COMMON_IMAGE_H_
#define CUFRAMES_COMMON_IMAGE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuframes/cuframes.h"

namespace cfimage {

// A frame in host memory: planes with their pitches (bytes between rows).
struct HostImage {
  cuframes_geometry_t geometry{};
  const uint8_t* y = nullptr;
  const uint8_t* uv = nullptr;  // NULL for GRAY8
  size_t pitch_y = 0;
  size_t pitch_uv = 0;
  // The frame's colour description, as its publisher set it.
  cuframes_color_matrix_t color_matrix = CUFRAMES_COLOR_MATRIX_UNKNOWN;
  cuframes_color_range_t color_range = CUFRAMES_COLOR_RANGE_UNKNOWN;
};

// Full-range RGB24 in host memory (3 bytes per pixel, R first).
struct RgbImage {
  const uint8_t* data = nullptr;
  uint32_t width = 0, height = 0;
  size_t pitch = 0;  // bytes between rows, >= 3 * width
};

enum class ImageKind { kJpeg, kPng };

struct EncodeOptions {
  // Scale down to at most this many pixels per row, keeping the aspect; 0: the frame's size.
  uint32_t max_width = 0;
  // JPEG: quality as FFmpeg's -q:v (2 best .. 31 worst), and 4:2:0 chroma (smaller files)
  // instead of 4:4:4.
  int jpeg_quality = 2;
  bool jpeg_420 = false;
};

// The size a width x height picture takes with at most max_width pixels per row (0: no limit):
// the aspect is kept, the height rounded to the nearest row, both at least 1.
void scaled_size(uint32_t width, uint32_t height, uint32_t max_width, uint32_t* out_width,
                 uint32_t* out_height);

// From the file name's extension (.jpg, .jpeg, .png, any case); nullopt for anything else.
std::optional<ImageKind> image_kind_for(const std::string& path);

// The encoded image. Colour: NV12 and P010 as the frame's colour description says; where it
// says nothing, limited range, and BT.709 when the frame is HD (width >= 1280 or height > 576,
// as video players guess), BT.601 otherwise. GRAY8 is full-range luma. Throws
// std::runtime_error with FFmpeg's message on failure.
std::vector<uint8_t> encode_image(const HostImage& frame, ImageKind kind,
                                  const EncodeOptions& options = {});
// The same from an RGB picture (scaled to options.max_width first where it is wider).
std::vector<uint8_t> encode_rgb(const RgbImage& rgb, ImageKind kind,
                                const EncodeOptions& options = {});

}  // namespace cfimage

#endif  // CUFRAMES_COMMON_IMAGE_H_
