// Owning pointers to FFmpeg's objects: std::unique_ptr with the matching free function, so an
// object is released on every path. Shared by common/image.cc and the service's FFmpeg source.
// Not installed: part of the internal static library cuframes_common.
#ifndef CUFRAMES_COMMON_AV_PTR_H_
#define CUFRAMES_COMMON_AV_PTR_H_

#include <memory>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/buffer.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
}

namespace cfcommon {

struct AvFree {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
  void operator()(AVFrame* f) const { av_frame_free(&f); }
  void operator()(AVPacket* p) const { av_packet_free(&p); }
  void operator()(AVBufferRef* b) const { av_buffer_unref(&b); }
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

// An input opened with avformat_open_input (closed with avformat_close_input).
using FormatPtr = std::unique_ptr<AVFormatContext, AvFree>;
using CodecPtr = std::unique_ptr<AVCodecContext, AvFree>;
using FramePtr = std::unique_ptr<AVFrame, AvFree>;
using PacketPtr = std::unique_ptr<AVPacket, AvFree>;
using BufferPtr = std::unique_ptr<AVBufferRef, AvFree>;
using SwsPtr = std::unique_ptr<SwsContext, AvFree>;

}  // namespace cfcommon

#endif  // CUFRAMES_COMMON_AV_PTR_H_
