// `decoder: nvcuvid` inside FfmpegSource (source_ffmpeg.cc): FFmpeg demuxes as for the other
// decoders; each video packet goes through FFmpeg's h264_mp4toannexb / hevc_mp4toannexb (Annex B
// passes through) into one NvcuvidDecoder (nvcuvid_decoder.h: NVIDIA's parser and decoder called
// directly, on the camera's own CUDA stream), and each picture it displays goes back to
// FfmpegSource's deliver (pacing, publish) while it is still mapped. Built only with CUDA and
// FFmpeg's ffnvcodec headers; elsewhere open_nvcuvid says that the build lacks it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "source.h"

struct AVPacket;
struct AVStream;

namespace cfsvc {

class NvcuvidPath {
 public:
  // FfmpegSource's part for each picture (pts in the stream's time base): pace it, then publish
  // it. false: stop (stopped, or a failure, with *error where the sink does not hold it).
  using Deliver =
      std::function<bool(SourceSink* sink, VideoFrame& frame, int64_t pts, std::string* error)>;

  virtual ~NvcuvidPath() = default;
  // One demuxed packet of the video stream (pkt is not consumed). Broken pictures are reported
  // to sink->on_decode_error. false: stop (*error set for a failure).
  virtual bool send(const AVPacket* pkt, SourceSink* sink, std::string* error) = 0;
  // End of stream: the pictures still queued go out; what follows is a new stream (a loop).
  virtual bool flush(SourceSink* sink, std::string* error) = 0;
  // After a failed send: the stream was refused at its sequence header (a chroma format, size
  // or depth this NVDEC cannot decode, or no decoder for it), not a failure of the GPU.
  virtual bool refused() const = 0;
};

// Whether nvcuvid decodes this codec (H.264 and HEVC).
bool nvcuvid_codec(int codec_id);

// The camera's nvcuvid decoder for stream `st` (H.264 or HEVC), on a CUDA stream of its own on
// opt.cuda_device. Null with *error naming what is missing: the codec, the GPU, the driver's
// libraries, or this build's support.
std::unique_ptr<NvcuvidPath> open_nvcuvid(const AVStream* st, const SourceOptions& opt,
                                          NvcuvidPath::Deliver deliver, std::string* error);

}  // namespace cfsvc
