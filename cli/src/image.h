// A frame to an image file's bytes: libswscale to RGB, then FFmpeg's png or mjpeg encoder.
#ifndef CUFRAMES_CLI_IMAGE_H_
#define CUFRAMES_CLI_IMAGE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuframes/cuframes.h"

namespace cli {

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

enum class ImageKind { kJpeg, kPng };

// From the file name's extension (.jpg, .jpeg, .png, any case); nullopt for anything else.
std::optional<ImageKind> image_kind_for(const std::string& path);

// The encoded image. Colour: NV12 and P010 as the frame's colour description says; where it
// says nothing, limited range, and BT.709 when the frame is HD (width >= 1280 or height > 576,
// as video players guess), BT.601 otherwise. GRAY8 is full-range luma. Throws
// std::runtime_error with FFmpeg's message on failure.
std::vector<uint8_t> encode_image(const HostImage& frame, ImageKind kind);

}  // namespace cli

#endif  // CUFRAMES_CLI_IMAGE_H_
