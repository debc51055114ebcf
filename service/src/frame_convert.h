// Decoded software frames as the rings hold them: NV12 (8-bit) or P010 (deeper, or as
// `output_format` forces), published from the decoder's own buffers when they already are,
// else converted with swscale (SWS_POINT) into a buffer of this converter's with a 64-byte
// aligned pitch. The range is kept (full stays full); the deprecated "J" formats go to swscale
// as their plain twins with full range. Also each frame's colour description (describe_color),
// for NVDEC frames too.
#pragma once

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
}

#include <string>
#include <vector>

#include "config.h"
#include "source.h"

struct SwsContext;

namespace cfsvc {

// The frame's colour description as the stream gave it (H.264/HEVC VUI: matrix_coefficients,
// video_full_range_flag), published with it for preprocessing; unknown where it says nothing or
// names a matrix cuframes does not convert.
void describe_color(const AVFrame* f, cuframes_source_t* s);
// The same from a matrix (ISO/IEC 23091-4 matrix_coefficients, which AVColorSpace numbers) and a
// range.
void describe_color(AVColorSpace matrix, AVColorRange range, cuframes_source_t* s);

class FrameConverter {
 public:
  FrameConverter() = default;
  ~FrameConverter();
  FrameConverter(const FrameConverter&) = delete;
  FrameConverter& operator=(const FrameConverter&) = delete;

  // Fills out->format and out->planes (host memory) for software frame f, converting it when it
  // is not already NV12/P010 as `want` asks. The planes stay valid until the next call or
  // until f is unreferenced. false, with *error, for a format it cannot take.
  bool to_ring_format(const AVFrame* f, OutputFormat want, VideoFrame* out, std::string* error);

 private:
  // What sws_ converts: a new context only when this changes.
  struct SwsKey {
    int width = 0, height = 0;
    AVPixelFormat src = AV_PIX_FMT_NONE, dst = AV_PIX_FMT_NONE;
    bool full = false;  // source and destination range: full (else limited), kept as it is
    bool operator==(const SwsKey&) const = default;
  };
  static SwsContext* make_sws(const SwsKey& k);

  SwsContext* sws_ = nullptr;
  SwsKey sws_key_;
  std::vector<uint8_t> conv_;
};

}  // namespace cfsvc
