#include "image.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <stdexcept>
#include <string>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
}

#include "av_ptr.h"

namespace cfimage {
namespace {

using cfcommon::CodecPtr;
using cfcommon::FramePtr;
using cfcommon::PacketPtr;
using cfcommon::SwsPtr;

[[noreturn]] void fail(const std::string& what, int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  throw std::runtime_error(what + ": " + buf);
}

FramePtr alloc_frame(int width, int height, AVPixelFormat format) {
  FramePtr f(av_frame_alloc());
  if (!f) throw std::runtime_error("out of memory for an image");
  f->width = width;
  f->height = height;
  f->format = format;
  if (int err = av_frame_get_buffer(f.get(), 0); err < 0) fail("allocating an image", err);
  return f;
}

// Converts `src` (planes, strides, src_width x src_height) into `dst` (scaled to its size) with
// the given colour handling.
void convert(const uint8_t* const src[], const int src_stride[], int src_width, int src_height,
             AVPixelFormat src_format, bool src_full_range, int src_colorspace, AVFrame* dst,
             bool dst_full_range, int dst_colorspace) {
  SwsPtr sws(
      sws_getContext(src_width, src_height, src_format, dst->width, dst->height,
                     static_cast<AVPixelFormat>(dst->format),
                     SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP,
                     nullptr, nullptr, nullptr));
  if (!sws) throw std::runtime_error("libswscale cannot convert this frame");
  const int* src_coef = sws_getCoefficients(src_colorspace);
  const int* dst_coef = sws_getCoefficients(dst_colorspace);
  sws_setColorspaceDetails(sws.get(), src_coef, src_full_range, dst_coef, dst_full_range, 0,
                           1 << 16, 1 << 16);
  if (sws_scale(sws.get(), src, src_stride, 0, src_height, dst->data, dst->linesize) <= 0) {
    throw std::runtime_error("libswscale failed to convert the frame");
  }
}

// The frame as full-range RGB24, scaled to out_w x out_h.
FramePtr to_rgb(const HostImage& in, uint32_t out_w, uint32_t out_h) {
  const cuframes_geometry_t& g = in.geometry;
  AVPixelFormat format;
  bool full_range = false;
  switch (g.format) {
    case CUFRAMES_FORMAT_NV12:
      format = AV_PIX_FMT_NV12;
      full_range = in.color_range == CUFRAMES_COLOR_RANGE_FULL;
      break;
    case CUFRAMES_FORMAT_P010:
      format = AV_PIX_FMT_P010LE;
      full_range = in.color_range == CUFRAMES_COLOR_RANGE_FULL;
      break;
    case CUFRAMES_FORMAT_GRAY8:
      format = AV_PIX_FMT_GRAY8;
      full_range = true;
      break;
    default:
      throw std::runtime_error(std::string("cannot convert frames of format ") +
                               cuframes_format_name(g.format));
  }
  int colorspace = g.width >= 1280 || g.height > 576 ? SWS_CS_ITU709 : SWS_CS_ITU601;
  switch (in.color_matrix) {
    case CUFRAMES_COLOR_MATRIX_BT601:
      colorspace = SWS_CS_ITU601;
      break;
    case CUFRAMES_COLOR_MATRIX_BT709:
      colorspace = SWS_CS_ITU709;
      break;
    case CUFRAMES_COLOR_MATRIX_BT2020:
      colorspace = SWS_CS_BT2020;
      break;
    default:
      break;  // unknown: the guess above
  }
  FramePtr rgb = alloc_frame(static_cast<int>(out_w), static_cast<int>(out_h), AV_PIX_FMT_RGB24);
  const uint8_t* planes[4] = {in.y, in.uv, nullptr, nullptr};
  const int strides[4] = {static_cast<int>(in.pitch_y), static_cast<int>(in.pitch_uv), 0, 0};
  convert(planes, strides, static_cast<int>(g.width), static_cast<int>(g.height), format,
          full_range, colorspace, rgb.get(), true, SWS_CS_ITU601);
  return rgb;
}

std::vector<uint8_t> encode(AVCodecID id, AVFrame* frame, bool jpeg, int quality) {
  const AVCodec* codec = avcodec_find_encoder(id);
  if (codec == nullptr) {
    throw std::runtime_error(std::string("this FFmpeg has no ") + avcodec_get_name(id) +
                             " encoder");
  }
  CodecPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) throw std::runtime_error("out of memory for an encoder");
  ctx->width = frame->width;
  ctx->height = frame->height;
  ctx->pix_fmt = static_cast<AVPixelFormat>(frame->format);
  ctx->time_base = AVRational{1, 25};
  if (jpeg) {
    // Full-range (JFIF) at the given quality of 2..31, as `ffmpeg -q:v N`.
    ctx->color_range = AVCOL_RANGE_JPEG;
    ctx->colorspace = AVCOL_SPC_BT470BG;
    ctx->flags |= AV_CODEC_FLAG_QSCALE;
    ctx->global_quality = FF_QP2LAMBDA * quality;
    frame->quality = ctx->global_quality;
    frame->color_range = AVCOL_RANGE_JPEG;
  }
  if (int err = avcodec_open2(ctx.get(), codec, nullptr); err < 0) {
    fail(std::string("opening the ") + codec->name + " encoder", err);
  }
  frame->pts = 0;
  if (int err = avcodec_send_frame(ctx.get(), frame); err < 0) fail("encoding the image", err);
  if (int err = avcodec_send_frame(ctx.get(), nullptr); err < 0) fail("encoding the image", err);
  PacketPtr pkt(av_packet_alloc());
  if (!pkt) throw std::runtime_error("out of memory for a packet");
  std::vector<uint8_t> out;
  for (;;) {
    int err = avcodec_receive_packet(ctx.get(), pkt.get());
    if (err == AVERROR_EOF) break;
    if (err < 0) fail("encoding the image", err);
    out.insert(out.end(), pkt->data, pkt->data + pkt->size);
    av_packet_unref(pkt.get());
  }
  if (out.empty()) throw std::runtime_error("the encoder produced no image");
  return out;
}

// JPEG wants YUV: full-range BT.601 (4:4:4, or 4:2:0) from the RGB image; PNG takes RGB.
std::vector<uint8_t> encode_rgb_frame(AVFrame* rgb, ImageKind kind, const EncodeOptions& o) {
  if (kind == ImageKind::kPng) return encode(AV_CODEC_ID_PNG, rgb, false, 0);
  if (o.jpeg_quality < 2 || o.jpeg_quality > 31) {
    throw std::runtime_error("JPEG quality " + std::to_string(o.jpeg_quality) +
                             " is outside 2..31");
  }
  FramePtr yuv =
      alloc_frame(rgb->width, rgb->height, o.jpeg_420 ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV444P);
  convert(rgb->data, rgb->linesize, rgb->width, rgb->height, AV_PIX_FMT_RGB24, true, SWS_CS_ITU601,
          yuv.get(), true, SWS_CS_ITU601);
  return encode(AV_CODEC_ID_MJPEG, yuv.get(), true, o.jpeg_quality);
}

}  // namespace

std::optional<ImageKind> image_kind_for(const std::string& path) {
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return std::nullopt;
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == "jpg" || ext == "jpeg") return ImageKind::kJpeg;
  if (ext == "png") return ImageKind::kPng;
  return std::nullopt;
}

void scaled_size(uint32_t width, uint32_t height, uint32_t max_width, uint32_t* out_width,
                 uint32_t* out_height) {
  if (max_width == 0 || width <= max_width) {
    *out_width = width;
    *out_height = height;
    return;
  }
  *out_width = max_width;
  const uint64_t h = (uint64_t{height} * max_width + width / 2) / width;
  *out_height = h == 0 ? 1 : static_cast<uint32_t>(h);
}

std::vector<uint8_t> encode_image(const HostImage& frame, ImageKind kind,
                                  const EncodeOptions& options) {
  av_log_set_level(AV_LOG_ERROR);
  uint32_t w = 0, h = 0;
  scaled_size(frame.geometry.width, frame.geometry.height, options.max_width, &w, &h);
  FramePtr rgb = to_rgb(frame, w, h);
  return encode_rgb_frame(rgb.get(), kind, options);
}

std::vector<uint8_t> encode_rgb(const RgbImage& in, ImageKind kind, const EncodeOptions& options) {
  av_log_set_level(AV_LOG_ERROR);
  if (in.data == nullptr || in.width == 0 || in.height == 0 || in.pitch < size_t{in.width} * 3) {
    throw std::runtime_error("encode_rgb: an empty picture or a pitch below 3 x width");
  }
  uint32_t w = 0, h = 0;
  scaled_size(in.width, in.height, options.max_width, &w, &h);
  FramePtr rgb = alloc_frame(static_cast<int>(w), static_cast<int>(h), AV_PIX_FMT_RGB24);
  const uint8_t* planes[4] = {in.data, nullptr, nullptr, nullptr};
  const int strides[4] = {static_cast<int>(in.pitch), 0, 0, 0};
  convert(planes, strides, static_cast<int>(in.width), static_cast<int>(in.height),
          AV_PIX_FMT_RGB24, true, SWS_CS_ITU601, rgb.get(), true, SWS_CS_ITU601);
  return encode_rgb_frame(rgb.get(), kind, options);
}

}  // namespace cfimage
