// `decoder: nvcuvid` inside FfmpegSource (source_nvcuvid.h).
#include "source_nvcuvid.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
}

#include "av_ptr.h"
#include "frame_convert.h"

#ifdef CUFRAMES_WITH_NVCUVID
#include <cuda_runtime_api.h>

#include "nvcuvid_decoder.h"
#endif

namespace cfsvc {

#ifdef CUFRAMES_WITH_NVCUVID
namespace {

struct BsfFree {
  void operator()(AVBSFContext* b) const { av_bsf_free(&b); }
};

class Path final : public NvcuvidPath, private NvcuvidSink {
 public:
  Path(const SourceOptions& opt, Deliver deliver) : opt_(opt), deliver_(std::move(deliver)) {}
  ~Path() override {
    dec_ = NvcuvidDecoder();  // its pictures map onto the stream: gone before it
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  bool open(const AVStream* st, std::string* error) {
    const bool hevc = st->codecpar->codec_id == AV_CODEC_ID_HEVC;
    const AVBitStreamFilter* f = av_bsf_get_by_name(hevc ? "hevc_mp4toannexb" : "h264_mp4toannexb");
    AVBSFContext* b = nullptr;
    if (f == nullptr || av_bsf_alloc(f, &b) < 0) {
      *error = std::string("decoder: nvcuvid, but this FFmpeg has no ") + (hevc ? "hevc" : "h264") +
               "_mp4toannexb bitstream filter";
      return false;
    }
    bsf_.reset(b);
    b->time_base_in = st->time_base;
    if (avcodec_parameters_copy(b->par_in, st->codecpar) < 0 || av_bsf_init(b) < 0) {
      *error = "decoder: nvcuvid: cannot start the Annex B bitstream filter for this stream";
      return false;
    }
    in_.reset(av_packet_alloc());
    out_.reset(av_packet_alloc());
    if (cudaSetDevice(opt_.cuda_device) != cudaSuccess ||
        cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) != cudaSuccess) {
      stream_ = nullptr;
      *error = std::string("decoder: nvcuvid: cannot create a CUDA stream: ") +
               cudaGetErrorString(cudaGetLastError());
      return false;
    }
    std::string why;
    if (!dec_.open(hevc ? NvcuvidDecoder::Codec::kHevc : NvcuvidDecoder::Codec::kH264,
                   opt_.cuda_device, stream_, &why)) {
      *error = "decoder: nvcuvid: " + why;
      return false;
    }
    return true;
  }

  bool send(const AVPacket* pkt, SourceSink* sink, std::string* error) override {
    if (av_packet_ref(in_.get(), pkt) < 0) {
      if (error) *error = "out of memory";
      return false;
    }
    int rc = av_bsf_send_packet(bsf_.get(), in_.get());  // takes in_'s reference
    av_packet_unref(in_.get());
    if (rc < 0) {
      sink->on_decode_error("the Annex B filter refused a packet");
      return true;
    }
    while ((rc = av_bsf_receive_packet(bsf_.get(), out_.get())) == 0) {
      const int64_t pts = out_->pts != AV_NOPTS_VALUE ? out_->pts : out_->dts;
      const bool ok = call(sink, error, [&](std::string* e) {
        return dec_.decode(out_->data, static_cast<size_t>(out_->size), pts, *this, e);
      });
      av_packet_unref(out_.get());
      if (!ok) return false;
    }
    return true;
  }

  bool flush(SourceSink* sink, std::string* error) override {
    av_bsf_flush(bsf_.get());  // parameter sets go in again before the next keyframe (a loop)
    return call(sink, error, [&](std::string* e) { return dec_.flush(*this, e); });
  }

  bool refused() const override { return dec_.refused(); }

 private:
  // A decoder call, with the sink and error its pictures use while it runs; the parser's and
  // decoder's CPU goes to the decode stage (deliver charges pacing and publishing to theirs).
  template <class F>
  bool call(SourceSink* sink, std::string* error, F&& f) {
    sink_ = sink;
    error_ = error;
    const bool ok = f(error);
    lap(opt_.cpu, CpuStage::kDecode);
    sink_ = nullptr;
    error_ = nullptr;
    return ok;
  }

  bool on_picture(const NvcuvidPicture& pic) override {
    lap(opt_.cpu, CpuStage::kDecode);
    VideoFrame out;
    out.width = pic.width;
    out.height = pic.height;
    out.format = pic.deep ? CUFRAMES_FORMAT_P010 : CUFRAMES_FORMAT_NV12;
    cuframes_source_init(&out.planes);
    out.planes.planes[0] = reinterpret_cast<const void*>(static_cast<uintptr_t>(pic.y));
    out.planes.planes[1] = reinterpret_cast<const void*>(static_cast<uintptr_t>(pic.uv));
    out.planes.pitches[0] = pic.pitch;
    out.planes.pitches[1] = pic.pitch;
    out.planes.memory = CUFRAMES_MEMORY_CUDA;
    out.planes.cuda_stream = stream_;  // the map's post-processing ran there: the copy after it
    // The stream's colour description where it names a matrix cuframes knows, else unknown.
    describe_color(static_cast<AVColorSpace>(pic.matrix_coefficients),
                   pic.full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG, &out.planes);
    if (out.planes.color_matrix == CUFRAMES_COLOR_MATRIX_UNKNOWN) {
      out.planes.color_range = CUFRAMES_COLOR_RANGE_UNKNOWN;
    }
    out.device = opt_.cuda_device;
    return deliver_(sink_, out, pic.pts, error_);  // published: the decoder unmaps it after this
  }

  void on_decode_error(const std::string& what) override { sink_->on_decode_error(what); }

  SourceOptions opt_;
  Deliver deliver_;
  std::unique_ptr<AVBSFContext, BsfFree> bsf_;
  cfcommon::PacketPtr in_, out_;
  cudaStream_t stream_ = nullptr;
  NvcuvidDecoder dec_;
  SourceSink* sink_ = nullptr;  // while a call runs
  std::string* error_ = nullptr;
};

}  // namespace
#endif

bool nvcuvid_codec(int codec_id) {
  return codec_id == AV_CODEC_ID_H264 || codec_id == AV_CODEC_ID_HEVC;
}

std::unique_ptr<NvcuvidPath> open_nvcuvid(const AVStream* st, const SourceOptions& opt,
                                          NvcuvidPath::Deliver deliver, std::string* error) {
  const AVCodecID id = st->codecpar->codec_id;
  if (!nvcuvid_codec(id)) {
    *error = std::string("decoder: nvcuvid supports h264 and hevc, not ") + avcodec_get_name(id) +
             " (decoder: nvdec or cuvid decodes it on the GPU)";
    return nullptr;
  }
#ifdef CUFRAMES_WITH_NVCUVID
  std::string why;
  if (!NvcuvidDecoder::available(&why)) {
    *error = "decoder: nvcuvid, but " + why;
    return nullptr;
  }
  if (!opt.cuda_usable) {
    *error = "decoder: nvcuvid, but no usable CUDA device " + std::to_string(opt.cuda_device);
    return nullptr;
  }
  if (opt.host_ring) {
    *error = "decoder: nvcuvid needs memory: cuda";
    return nullptr;
  }
  auto p = std::make_unique<Path>(opt, std::move(deliver));
  if (!p->open(st, error)) return nullptr;
  return p;
#else
  (void)opt;
  (void)deliver;
  *error =
      "decoder: nvcuvid, but this build lacks it (built without CUDA or without FFmpeg's "
      "ffnvcodec headers: Debian's libffmpeg-nvenc-dev)";
  return nullptr;
#endif
}

}  // namespace cfsvc
