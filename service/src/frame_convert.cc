#include "frame_convert.h"

extern "C" {
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace cfsvc {
namespace {

// The deprecated "J" formats (yuvj420p and kin: full-range YUV, what MJPEG decoders and
// full-range H.264 give) as their plain twins, *full set. swscale warns "deprecated pixel format
// used, make sure you did set range correctly" each time it sets up a context for a J format,
// and takes it to limited range; given the twin and the range, it does neither.
AVPixelFormat plain_twin(AVPixelFormat f, bool* full) {
  *full = true;
  switch (f) {
    case AV_PIX_FMT_YUVJ420P:
      return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
      return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
      return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
      return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P:
      return AV_PIX_FMT_YUV411P;
    default:
      *full = false;
      return f;
  }
}

}  // namespace

void describe_color(const AVFrame* f, cuframes_source_t* s) {
  describe_color(f->colorspace, f->color_range, s);
}

void describe_color(AVColorSpace matrix, AVColorRange range, cuframes_source_t* s) {
  switch (matrix) {
    case AVCOL_SPC_BT709:
      s->color_matrix = CUFRAMES_COLOR_MATRIX_BT709;
      break;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
      s->color_matrix = CUFRAMES_COLOR_MATRIX_BT601;
      break;
    case AVCOL_SPC_BT2020_NCL:
      s->color_matrix = CUFRAMES_COLOR_MATRIX_BT2020;
      break;
    default:
      s->color_matrix = CUFRAMES_COLOR_MATRIX_UNKNOWN;
      break;
  }
  s->color_range = range == AVCOL_RANGE_JPEG   ? CUFRAMES_COLOR_RANGE_FULL
                   : range == AVCOL_RANGE_MPEG ? CUFRAMES_COLOR_RANGE_LIMITED
                                               : CUFRAMES_COLOR_RANGE_UNKNOWN;
}

FrameConverter::~FrameConverter() {
  if (sws_ != nullptr) sws_freeContext(sws_);
}

bool FrameConverter::to_ring_format(const AVFrame* f, OutputFormat want_format, VideoFrame* out,
                                    std::string* error) {
  const auto fmt = static_cast<AVPixelFormat>(f->format);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(fmt);
  if (desc == nullptr || (desc->flags & AV_PIX_FMT_FLAG_HWACCEL)) {
    if (error) *error = "unexpected frame format";
    return false;
  }
  bool deep = desc->comp[0].depth > 8;
  if (want_format == OutputFormat::kNv12) deep = false;
  if (want_format == OutputFormat::kP010) deep = true;
  out->format = deep ? CUFRAMES_FORMAT_P010 : CUFRAMES_FORMAT_NV12;
  const AVPixelFormat want = deep ? AV_PIX_FMT_P010LE : AV_PIX_FMT_NV12;
  cuframes_source_init(&out->planes);
  out->planes.memory = CUFRAMES_MEMORY_HOST;
  describe_color(f, &out->planes);
  if (fmt == want) {  // already what rings hold: publish straight from the decoder's buffers
    out->planes.planes[0] = f->data[0];
    out->planes.planes[1] = f->data[1];
    out->planes.pitches[0] = static_cast<uint64_t>(f->linesize[0]);
    out->planes.pitches[1] = static_cast<uint64_t>(f->linesize[1]);
    return true;
  }
  // The samples keep their range (and the frame's colour description says which): a
  // full-range source, MJPEG above all, stays full range, as NVDEC delivers the same stream.
  bool jpeg = false;
  const AVPixelFormat src = plain_twin(fmt, &jpeg);
  const bool full = jpeg || f->color_range == AVCOL_RANGE_JPEG;
  if (jpeg) out->planes.color_range = CUFRAMES_COLOR_RANGE_FULL;
  const SwsKey key{f->width, f->height, src, want, full};
  if (sws_ == nullptr || !(key == sws_key_)) {
    sws_freeContext(sws_);
    sws_ = make_sws(key);
    if (sws_ == nullptr) {
      if (error) *error = std::string("cannot convert ") + desc->name + " frames";
      return false;
    }
    sws_key_ = key;
  }
  const int bps = deep ? 2 : 1;
  const int pitch = (f->width * bps + 63) / 64 * 64;
  const size_t need = static_cast<size_t>(pitch) * f->height * 3 / 2;
  if (conv_.size() < need) conv_.resize(need);
  uint8_t* dst[4] = {conv_.data(), conv_.data() + static_cast<size_t>(pitch) * f->height, nullptr,
                     nullptr};
  int dst_stride[4] = {pitch, pitch, 0, 0};
  sws_scale(sws_, f->data, f->linesize, 0, f->height, dst, dst_stride);
  out->planes.planes[0] = dst[0];
  out->planes.planes[1] = dst[1];
  out->planes.pitches[0] = out->planes.pitches[1] = static_cast<uint64_t>(pitch);
  return true;
}

SwsContext* FrameConverter::make_sws(const SwsKey& k) {
  SwsContext* c = sws_alloc_context();
  if (c == nullptr) return nullptr;
  av_opt_set_int(c, "srcw", k.width, 0);
  av_opt_set_int(c, "srch", k.height, 0);
  av_opt_set_int(c, "src_format", k.src, 0);
  av_opt_set_int(c, "dstw", k.width, 0);
  av_opt_set_int(c, "dsth", k.height, 0);
  av_opt_set_int(c, "dst_format", k.dst, 0);
  av_opt_set_int(c, "sws_flags", SWS_POINT, 0);
  av_opt_set_int(c, "src_range", k.full ? 1 : 0, 0);
  av_opt_set_int(c, "dst_range", k.full ? 1 : 0, 0);
  if (sws_init_context(c, nullptr, nullptr) < 0) {
    sws_freeContext(c);
    return nullptr;
  }
  return c;
}

}  // namespace cfsvc
