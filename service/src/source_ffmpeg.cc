// FFmpeg source: demux (rtsp/rtsps over TCP or UDP, http, files) and decode, with NVDEC through
// FFmpeg's CUDA hwaccel where it can (frames stay in device memory, in the CUDA primary context
// the rings use, on a stream of the camera's own) and software decode otherwise. Software frames
// are converted to NV12 (8-bit) or P010 (deeper) with swscale when they are not already.
// `decoder: cuvid` decodes with FFmpeg's *_cuvid decoders instead (h264_cuvid, hevc_cuvid...):
// NVIDIA's own parser, which queues pictures on NVDEC ahead of their display (several decode
// surfaces in flight) instead of the hwaccel's decode-then-wait per picture; same context,
// same stream, same device frames.
//
// Time limits: every blocking FFmpeg call is bounded by an interrupt callback: open_timeout while
// opening, stall_timeout between packets once streaming, and the camera's stop flag always.
//
// A looping file starts over in place: a seek to its start and a decoder flush, keeping the
// demuxer and the decoder (NVDEC's set-up costs tens of milliseconds, a large share of a short
// clip decoded flat out). Only when the file at the path changed or went away, or the seek
// fails, does run() end with kEnd and the camera reopen it.
//
// Files are paced in real time by their timestamps (realtime: true). A jump in them (forward by
// more than max(1 s, 10 frame intervals), or any step back) re-anchors the pacing one frame
// interval after the frame before; one of more than that either way is reported to the camera
// (which logs it), unless it is a loop starting over. A stream without
// timestamps (raw Annex B: .h264, .hevc) is paced at its frame rate: the stream's own (its
// SPS), else the camera's `fps`, given to FFmpeg's raw demuxers as their `framerate`.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/hwcontext.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
extern "C" {
#include <libavutil/hwcontext_cuda.h>
}
#endif

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <thread>
#include <vector>

#include "av_ptr.h"
#include "source.h"

namespace cfsvc {

int64_t mono_ns() { return cuframes_now_ns(); }

bool sleep_until(int64_t deadline_ns, const std::atomic<bool>* stop) {
  for (;;) {
    if (stop->load()) return false;
    const int64_t left = deadline_ns - mono_ns();
    if (left <= 0) return true;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(left, 10000000)));
  }
}

namespace {

std::string av_err(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

cuframes_codec_t codec_of(AVCodecID id) {
  switch (id) {
    case AV_CODEC_ID_H264: return CUFRAMES_CODEC_H264;
    case AV_CODEC_ID_HEVC: return CUFRAMES_CODEC_HEVC;
    case AV_CODEC_ID_AV1: return CUFRAMES_CODEC_AV1;
    case AV_CODEC_ID_VP9: return CUFRAMES_CODEC_VP9;
    case AV_CODEC_ID_MJPEG: return CUFRAMES_CODEC_MJPEG;
    default: return CUFRAMES_CODEC_UNKNOWN;
  }
}

// The frame's colour description as the stream gave it (H.264/HEVC VUI: matrix_coefficients,
// video_full_range_flag), published with it for preprocessing; unknown where it says nothing or
// names a matrix cuframes does not convert.
void describe_color(const AVFrame* f, cuframes_source_t* s) {
  switch (f->colorspace) {
    case AVCOL_SPC_BT709: s->color_matrix = CUFRAMES_COLOR_MATRIX_BT709; break;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M: s->color_matrix = CUFRAMES_COLOR_MATRIX_BT601; break;
    case AVCOL_SPC_BT2020_NCL: s->color_matrix = CUFRAMES_COLOR_MATRIX_BT2020; break;
    default: s->color_matrix = CUFRAMES_COLOR_MATRIX_UNKNOWN; break;
  }
  s->color_range = f->color_range == AVCOL_RANGE_JPEG   ? CUFRAMES_COLOR_RANGE_FULL
                   : f->color_range == AVCOL_RANGE_MPEG ? CUFRAMES_COLOR_RANGE_LIMITED
                                                        : CUFRAMES_COLOR_RANGE_UNKNOWN;
}

// The deprecated "J" formats (yuvj420p and kin: full-range YUV, what MJPEG decoders and
// full-range H.264 give) as their plain twins, *full set. swscale warns "deprecated pixel format
// used, make sure you did set range correctly" each time it sets up a context for a J format,
// and takes it to limited range; given the twin and the range, it does neither.
AVPixelFormat plain_twin(AVPixelFormat f, bool* full) {
  *full = true;
  switch (f) {
    case AV_PIX_FMT_YUVJ420P: return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: return AV_PIX_FMT_YUV411P;
    default: *full = false; return f;
  }
}

class FfmpegSource final : public Source {
 public:
  FfmpegSource(const CameraConfig& config, const SourceOptions& opt,
               const std::atomic<bool>* stop, std::shared_ptr<spdlog::logger> log)
      : cfg_(config), opt_(opt), stop_(stop), log_(std::move(log)) {}

  ~FfmpegSource() override {
    codec_ctx_.reset();
    fmt_.reset();
#ifdef CUFRAMES_WITH_CUDA
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
#endif
    if (sws_ != nullptr) sws_freeContext(sws_);
  }

  std::string codec() const override { return codec_name_; }
  std::string decoder() const override { return hw_ ? hw_name() : "software"; }

  bool open(std::string* error) override {
    deadline_ns_ = mono_ns() + cfg_.open_timeout.count() * 1000000;
    AVFormatContext* raw = avformat_alloc_context();
    if (raw == nullptr) return fail(error, "out of memory");
    raw->interrupt_callback.callback = &FfmpegSource::interrupt;
    raw->interrupt_callback.opaque = this;
    AVDictionary* opts = nullptr;
    const std::string timeout_us = std::to_string(cfg_.open_timeout.count() * 1000);
    const bool rtsp = cfg_.url.rfind("rtsp://", 0) == 0 || cfg_.url.rfind("rtsps://", 0) == 0;
    const bool http = cfg_.url.rfind("http://", 0) == 0 || cfg_.url.rfind("https://", 0) == 0;
    if (rtsp) {
      av_dict_set(&opts, "rtsp_transport", cfg_.rtsp_transport == RtspTransport::kTcp ? "tcp" : "udp", 0);
      av_dict_set(&opts, "timeout", timeout_us.c_str(), 0);  // socket I/O, microseconds
    } else if (http) {
      av_dict_set(&opts, "rw_timeout", timeout_us.c_str(), 0);
      av_dict_set(&opts, "reconnect", "0", 0);  // we reconnect ourselves, with backoff
    }
    live_ = rtsp || http;
    if (live_) {
      // A live camera: probe briefly (what is probed is published in a burst once streaming
      // starts) and do not buffer in the demuxer.
      raw->max_analyze_duration = 500000;  // microseconds
      raw->flags |= AVFMT_FLAG_NOBUFFER;
    }
    std::string url = cfg_.url.rfind("file://", 0) == 0 ? cfg_.url.substr(7) : cfg_.url;
    if (!live_) {
      // The frame rate of a raw stream whose own does not say (a raw demuxer's option; other
      // demuxers leave it unused).
      const AVRational fps = av_d2q(cfg_.fps, 1001000);
      const std::string rate = std::to_string(fps.num) + "/" + std::to_string(fps.den);
      av_dict_set(&opts, "framerate", rate.c_str(), 0);
    }
    path_ = url;
    file_id_ = live_ ? FileId{} : file_id(path_);
    int rc = avformat_open_input(&raw, url.c_str(), nullptr, &opts);
    av_dict_free(&opts);
    if (rc < 0) return fail(error, "cannot open: " + describe(rc));  // raw is freed on failure
    fmt_.reset(raw);
    rc = avformat_find_stream_info(fmt_.get(), nullptr);
    if (rc < 0) return fail(error, "cannot read stream info: " + describe(rc));
    const AVCodec* dec = nullptr;
    stream_index_ = av_find_best_stream(fmt_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &dec, 0);
    if (stream_index_ < 0) return fail(error, "no video stream");
    AVStream* st = fmt_->streams[stream_index_];
    codec_name_ = avcodec_get_name(st->codecpar->codec_id);
    if (dec == nullptr) return fail(error, "no decoder for " + codec_name_);
    if (cfg_.decoder == DecoderChoice::kCuvid) {
      // FFmpeg's decoder built on NVIDIA's parser: <codec>_cuvid (h264_cuvid, hevc_cuvid, ...).
      const std::string name = std::string(avcodec_get_name(st->codecpar->codec_id)) + "_cuvid";
      if (!opt_.cuda_usable) return fail(error, "decoder: cuvid, but no usable CUDA device");
      dec = avcodec_find_decoder_by_name(name.c_str());
      if (dec == nullptr) return fail(error, "decoder: cuvid, but this FFmpeg has no " + name);
    }
    if (!open_decoder(dec, st, error)) return false;
    realtime_ = !live_ && cfg_.realtime;
    anchor_pts_ = AV_NOPTS_VALUE;
    last_pts_ns_ = AV_NOPTS_VALUE;
    // The stream's frame interval: its average rate, else its base rate, else `fps`.
    AVRational rate = st->avg_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) rate = st->r_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) rate = av_d2q(cfg_.fps, 1001000);
    nominal_ns_ = av_rescale(1000000000, rate.den, rate.num);
    if (nominal_ns_ <= 0) nominal_ns_ = static_cast<int64_t>(1e9 / cfg_.fps);
    frame_ns_ = nominal_ns_;
    untimed_ = (fmt_->iformat->flags & AVFMT_NOTIMESTAMPS) != 0;
    seen_key_ = false;
    return true;
  }

  Outcome run(SourceSink* sink, std::string* error) override {
    AVStream* st = fmt_->streams[stream_index_];
    cuframes_codec_params_t cp{};
    cp.codec = codec_of(st->codecpar->codec_id);
    cp.width = static_cast<uint32_t>(st->codecpar->width);
    cp.height = static_cast<uint32_t>(st->codecpar->height);
    cp.time_base_num = st->time_base.num;
    cp.time_base_den = st->time_base.den;
    if (st->codecpar->extradata_size > 0 &&
        st->codecpar->extradata_size <= CUFRAMES_EXTRADATA_MAX) {
      cp.extradata = st->codecpar->extradata;
      cp.extradata_size = static_cast<uint32_t>(st->codecpar->extradata_size);
    }
    sink->on_codec(cp);

    cfcommon::PacketPtr pkt(av_packet_alloc());
    // The watchdog: video must keep coming. Only video packets move the deadline (audio does
    // not keep a frozen picture alive), and once it has passed the stream is stalled, even if
    // the interrupted read hands back one last packet.
    const int64_t stall_ns = cfg_.stall_timeout.count() * 1000000;
    deadline_ns_ = mono_ns() + stall_ns;
    auto stalled = [&](std::string* why) {
      drain(sink, nullptr);  // the frames the decoder still holds go out
      if (why) *why = "no video for " + std::to_string(cfg_.stall_timeout.count()) + " ms";
      return Outcome::kStalled;
    };
    for (;;) {
      if (stop_->load()) return Outcome::kStopped;
      int rc = av_read_frame(fmt_.get(), pkt.get());
      if (!stop_->load() && mono_ns() > deadline_ns_.load()) {
        av_packet_unref(pkt.get());
        return stalled(error);
      }
      if (rc == AVERROR_EOF || (rc == AVERROR(EIO) && !live_)) {
        drain(sink, nullptr);
        if (stop_->load()) return Outcome::kStopped;
        const uint64_t frames = delivered_;  // this pass's, the drained ones included
        std::string why_not;
        if (!live_ && cfg_.loop && frames > 0 && rewind(&why_not)) {
          // Once at info: a looping clip would otherwise log a line per pass.
          log_->log(passes_++ == 0 ? spdlog::level::info : spdlog::level::debug,
                    "end of file after {} frame{}: starting over in place", frames,
                    frames == 1 ? "" : "s");
          delivered_ = 0;
          deadline_ns_ = mono_ns() + stall_ns;
          continue;
        }
        if (error) {
          *error = live_ ? "the server ended the stream" : "end of file";
          if (!why_not.empty()) *error += " (" + why_not + ")";
        }
        return Outcome::kEnd;
      }
      if (rc < 0) {
        if (stop_->load()) return Outcome::kStopped;
        if (rc == AVERROR_EXIT) return stalled(error);
        if (error) *error = "read failed: " + av_err(rc);
        if (live_) drain(sink, nullptr);
        return live_ ? Outcome::kStalled : Outcome::kError;
      }
      if (pkt->stream_index != stream_index_) {
        av_packet_unref(pkt.get());
        continue;
      }
      deadline_ns_ = mono_ns() + stall_ns;
      if (pkt->pts == AV_NOPTS_VALUE && pkt->dts == AV_NOPTS_VALUE) untimed_ = true;
      cuframes_packet_t p{};
      p.data = pkt->data;
      p.size = static_cast<uint32_t>(pkt->size);
      p.pts = pkt->pts;
      p.dts = pkt->dts;
      p.flags = (pkt->flags & AV_PKT_FLAG_KEY) ? CUFRAMES_PACKET_KEY : 0;
      if (pkt->size > 0) sink->on_packet(p);
      // Decoding starts at a keyframe: joining mid-GOP only yields broken pictures.
      if (!seen_key_ && !(pkt->flags & AV_PKT_FLAG_KEY)) {
        av_packet_unref(pkt.get());
        continue;
      }
      seen_key_ = true;
      rc = avcodec_send_packet(codec_ctx_.get(), pkt.get());
      if (rc == AVERROR(EAGAIN)) {  // the decoder wants its output taken first (cuvid may)
        if (!receive_frames(sink, error)) {
          av_packet_unref(pkt.get());
          return stop_->load() ? Outcome::kStopped : Outcome::kError;
        }
        rc = avcodec_send_packet(codec_ctx_.get(), pkt.get());
      }
      av_packet_unref(pkt.get());
      if (rc < 0) {
        sink->on_decode_error("decoder rejected a packet: " + av_err(rc));
        continue;
      }
      if (!receive_frames(sink, error)) return stop_->load() ? Outcome::kStopped : Outcome::kError;
    }
  }

 private:
  static int interrupt(void* opaque) {
    auto* self = static_cast<FfmpegSource*>(opaque);
    return self->stop_->load() || mono_ns() > self->deadline_ns_;
  }

  std::string describe(int rc) const {
    if (rc == AVERROR_EXIT && !stop_->load()) {
      return "no answer within " + std::to_string(cfg_.open_timeout.count()) + " ms";
    }
    return av_err(rc);
  }

  bool fail(std::string* error, const std::string& what) {
    if (error) *error = what;
    return false;
  }

  static enum AVPixelFormat pick_cuda(AVCodecContext*, const enum AVPixelFormat* fmts) {
    for (const enum AVPixelFormat* f = fmts; *f != AV_PIX_FMT_NONE; ++f) {
      if (*f == AV_PIX_FMT_CUDA) return *f;
    }
    return fmts[0];  // NVDEC cannot take this stream: the decoder's software format
  }

  bool open_decoder(const AVCodec* dec, AVStream* st, std::string* error) {
    AVCodecContext* ctx = avcodec_alloc_context3(dec);
    if (ctx == nullptr) return fail(error, "out of memory");
    codec_ctx_.reset(ctx);
    int rc = avcodec_parameters_to_context(ctx, st->codecpar);
    if (rc < 0) return fail(error, "decoder parameters: " + av_err(rc));
    ctx->pkt_timebase = st->time_base;
    // auto: NVDEC when the frames stay on the GPU (a cuda ring); a host ring decodes in
    // software unless NVDEC is asked for (its frames are then downloaded).
    const bool forced = cfg_.decoder == DecoderChoice::kNvdec || cuvid();
    bool want_hw =
        opt_.cuda_usable && (forced || (cfg_.decoder == DecoderChoice::kAuto && !opt_.host_ring));
    if (forced && !opt_.cuda_usable) {
      return fail(error, std::string("decoder: ") + hw_name() + ", but no usable CUDA device");
    }
    if (want_hw && !setup_nvdec(dec, ctx)) {
      if (forced) {
        return fail(error, std::string("decoder: ") + hw_name() + ", but NVDEC cannot decode " +
                               codec_name_ + ": " + hw_error_);
      }
      log_->info("NVDEC unavailable for {} ({}): decoding in software", codec_name_, hw_error_);
    }
    if (hw_) {
      // NVDEC decodes; CPU threads would only parse, and frame threads cost throughput once
      // several cameras share the CPU (nvdec_ceiling, 8 streams: --threads 0 is 7-13% below
      // --threads 1). A stream NVDEC then refuses is decoded in software on this one thread.
      ctx->thread_count = 1;
    } else {
      ctx->thread_count = 0;  // software: as many as useful
      // Frame threads hold back a frame per thread: fine for files, latency for live cameras.
      if (live_) ctx->thread_type = FF_THREAD_SLICE;
    }
    rc = avcodec_open2(ctx, dec, nullptr);
    if (rc < 0) return fail(error, "cannot open the " + codec_name_ + " decoder: " + av_err(rc));
    return true;
  }

  bool cuvid() const { return cfg_.decoder == DecoderChoice::kCuvid; }
  const char* hw_name() const { return cuvid() ? "cuvid" : "nvdec"; }

  bool setup_nvdec(const AVCodec* dec, AVCodecContext* ctx) {
#ifdef CUFRAMES_WITH_CUDA
    bool supported = false;
    for (int i = 0;; ++i) {
      const AVCodecHWConfig* hc = avcodec_get_hw_config(dec, i);
      if (hc == nullptr) break;
      if ((hc->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) &&
          hc->device_type == AV_HWDEVICE_TYPE_CUDA) {
        supported = true;
      }
    }
    if (!supported) {
      hw_error_ = "this FFmpeg has no CUDA hwaccel for " + codec_name_;
      return false;
    }
    // The primary context: the one cudart (and so the rings) uses, so device pointers are shared.
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "primary_ctx", "1", 0);
    AVBufferRef* hw = nullptr;
    const std::string dev = std::to_string(opt_.cuda_device);
    int rc = av_hwdevice_ctx_create(&hw, AV_HWDEVICE_TYPE_CUDA, dev.c_str(), opts, 0);
    av_dict_free(&opts);
    if (rc < 0) {
      hw_error_ = "cannot create a CUDA device context: " + av_err(rc);
      return false;
    }
    cfcommon::BufferPtr owned(hw);
    // A stream of this camera's own: NVDEC's output copies and ours into the ring run on it.
    if (stream_ == nullptr) {
      int prev = 0;
      cudaGetDevice(&prev);
      cudaSetDevice(opt_.cuda_device);
      cudaError_t e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
      cudaSetDevice(prev);
      if (e != cudaSuccess) {
        hw_error_ = std::string("cudaStreamCreate: ") + cudaGetErrorString(e);
        stream_ = nullptr;
        return false;
      }
    }
    auto* dctx = reinterpret_cast<AVHWDeviceContext*>(hw->data);
    static_cast<AVCUDADeviceContext*>(dctx->hwctx)->stream = stream_;
    ctx->hw_device_ctx = av_buffer_ref(hw);
    ctx->get_format = &FfmpegSource::pick_cuda;
    ctx->extra_hw_frames = 2;
    hw_ = true;
    return true;
#else
    (void)dec;
    (void)ctx;
    hw_error_ = "built without CUDA";
    return false;
#endif
  }

  bool receive_frames(SourceSink* sink, std::string* error) {
    if (!frame_) frame_.reset(av_frame_alloc());
    for (;;) {
      int rc = avcodec_receive_frame(codec_ctx_.get(), frame_.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return true;
      if (rc < 0) {
        sink->on_decode_error("decoding failed: " + av_err(rc));
        return true;
      }
      if (frame_->decode_error_flags != 0 || (frame_->flags & AV_FRAME_FLAG_CORRUPT)) {
        sink->on_decode_error("corrupt frame");
      }
      bool ok = deliver(sink, frame_.get(), error);
      av_frame_unref(frame_.get());
      if (!ok) return false;
      ++delivered_;
    }
  }

  // Identifies the file at a path: a loop reopens it when this changes (replaced, rewritten,
  // removed) instead of going on with the open one.
  struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    bool operator==(const FileId&) const = default;
  };
  static FileId file_id(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return FileId{};
    return FileId{st.st_dev, st.st_ino, st.st_size,
                  int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
  }

  // A looping file, at its end (the decoder drained and flushed): back to its first frame.
  // false, with the reason, when it must be opened again instead.
  bool rewind(std::string* why_not) {
    if (file_id_.size < 0 || !(file_id(path_) == file_id_)) {
      *why_not = "the file at the path changed or is gone";
      return false;
    }
    AVStream* st = fmt_->streams[stream_index_];
    const int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    // A raw stream has no timestamps to seek by: back to its first byte.
    const int rc = untimed_ ? av_seek_frame(fmt_.get(), -1, 0, AVSEEK_FLAG_BYTE)
                            : av_seek_frame(fmt_.get(), stream_index_, start, AVSEEK_FLAG_BACKWARD);
    if (rc < 0) {
      *why_not = "cannot seek back to the start: " + av_err(rc);
      return false;
    }
    seen_key_ = false;
    rewound_ = true;  // the timestamps go back now: no jump
    return true;
  }

  void drain(SourceSink* sink, std::string* error) {
    avcodec_send_packet(codec_ctx_.get(), nullptr);
    receive_frames(sink, error);
    avcodec_flush_buffers(codec_ctx_.get());
  }

  // Files in real time: each frame waits for its presentation time, counted from an anchor (a
  // timestamp and the moment it was due). A jump in the timestamps, or a loop starting over,
  // re-anchors: the frame comes one frame interval after the one before. Frames without a
  // timestamp are one frame interval apart.
  bool pace(SourceSink* sink, const AVFrame* f) {
    if (!realtime_) return true;
    int64_t pts = f->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) pts = f->pts;
    const int64_t prev_pts = last_pts_ns_;
    int64_t pts_ns;
    if (pts != AV_NOPTS_VALUE && !untimed_) {
      pts_ns =
          av_rescale_q(pts, fmt_->streams[stream_index_]->time_base, AVRational{1, 1000000000});
    } else {
      pts_ns = prev_pts == AV_NOPTS_VALUE ? 0 : prev_pts + nominal_ns_;
    }
    last_pts_ns_ = pts_ns;
    if (anchor_pts_ == AV_NOPTS_VALUE || prev_pts == AV_NOPTS_VALUE) {
      anchor_pts_ = pts_ns;
      anchor_wall_ = last_wall_ = mono_ns();
      return true;
    }
    const int64_t step = pts_ns - prev_pts;
    const int64_t jump_after = std::max<int64_t>(kJumpMinNs, kJumpFrames * nominal_ns_);
    if (step < 0 || step > jump_after) {
      // A loop's start-over is no jump, nor is a small step back (timestamps out of order).
      if (!rewound_ && (step > jump_after || step < -jump_after)) sink->on_timestamp_jump(step);
      // The clock goes on from when the last frame was due, not from now: a source running
      // late (a loop's seek, a decoder re-created, a busy GPU) catches up instead of losing the
      // lateness from its rate. Only a stall longer than kCatchUpNs starts afresh from now.
      anchor_pts_ = pts_ns;
      const int64_t next = last_wall_ + frame_ns_;
      const int64_t now = mono_ns();
      anchor_wall_ = now - next > kCatchUpNs ? now : next;
    } else if (step > 0) {
      frame_ns_ = step;
    }
    rewound_ = false;
    const int64_t due = anchor_wall_ + (pts_ns - anchor_pts_);
    last_wall_ = due;
    return sleep_until(due, stop_);
  }

  bool deliver(SourceSink* sink, AVFrame* f, std::string* error) {
    if (!pace(sink, f)) return false;
    VideoFrame out;
    out.width = static_cast<uint32_t>(f->width);
    out.height = static_cast<uint32_t>(f->height);
    if ((out.width | out.height) & 1) {
      if (error) *error = "odd frame size " + std::to_string(f->width) + "x" + std::to_string(f->height);
      return false;
    }
#ifdef CUFRAMES_WITH_CUDA
    if (f->format == AV_PIX_FMT_CUDA && opt_.host_ring) {  // NVDEC into a host ring: download
      if (!sw_frame_) sw_frame_.reset(av_frame_alloc());
      int rc = av_hwframe_transfer_data(sw_frame_.get(), f, 0);
      if (rc < 0) {
        if (error) *error = "downloading an NVDEC frame: " + av_err(rc);
        return false;
      }
      sw_frame_->width = f->width;
      sw_frame_->height = f->height;
      (void)av_frame_copy_props(sw_frame_.get(), f);  // the colour description with it
      out.decoder = hw_name();
      bool ok = deliver_software(sink, sw_frame_.get(), out, error);
      av_frame_unref(sw_frame_.get());
      return ok;
    }
    if (f->format == AV_PIX_FMT_CUDA) {
      out.decoder = hw_name();
      auto* frames = reinterpret_cast<AVHWFramesContext*>(f->hw_frames_ctx->data);
      if (frames->sw_format == AV_PIX_FMT_NV12) {
        out.format = CUFRAMES_FORMAT_NV12;
      } else if (frames->sw_format == AV_PIX_FMT_P010 || frames->sw_format == AV_PIX_FMT_P016) {
        out.format = CUFRAMES_FORMAT_P010;
      } else {
        if (error) *error = std::string("NVDEC output ") + av_get_pix_fmt_name(frames->sw_format);
        return false;
      }
      if (cfg_.output_format == OutputFormat::kNv12 && out.format != CUFRAMES_FORMAT_NV12) {
        if (error) *error = "output_format nv12 with a >8-bit stream needs decoder: software";
        return false;
      }
      if (cfg_.output_format == OutputFormat::kP010 && out.format != CUFRAMES_FORMAT_P010) {
        if (error) *error = "output_format p010 with an 8-bit stream needs decoder: software";
        return false;
      }
      cuframes_source_init(&out.planes);
      out.planes.planes[0] = f->data[0];
      out.planes.planes[1] = f->data[1];
      out.planes.pitches[0] = static_cast<uint64_t>(f->linesize[0]);
      out.planes.pitches[1] = static_cast<uint64_t>(f->linesize[1]);
      out.planes.memory = CUFRAMES_MEMORY_CUDA;
      out.planes.cuda_stream = stream_;
      describe_color(f, &out.planes);
      out.device = opt_.cuda_device;
      return sink->on_frame(out);
    }
#endif
    if (cfg_.decoder == DecoderChoice::kNvdec || cuvid()) {
      // FFmpeg falls back to software by itself when its NVDEC hwaccel cannot start (no
      // libnvcuvid: a container without the driver's `video` capability) or refuses the stream.
      if (error) {
        *error = std::string("decoder: ") + hw_name() + ", but FFmpeg decoded " + codec_name_ +
                 " in software: NVDEC could not start (libnvcuvid missing, e.g. a container "
                 "without the NVIDIA 'video' capability) or cannot take this stream";
      }
      return false;
    }
    if (hw_ && !warned_fallback_) {  // decoder: auto, and NVDEC refused what it was given
      warned_fallback_ = true;
      log_->warn("NVDEC could not decode {}: FFmpeg decodes it in software, on one thread (set "
                 "decoder: software for a multi-threaded software decoder)",
                 codec_name_);
    }
    return deliver_software(sink, f, out, error);
  }

  bool deliver_software(SourceSink* sink, AVFrame* f, VideoFrame out, std::string* error) {
    if (*out.decoder == '\0') out.decoder = "software";
    const auto fmt = static_cast<AVPixelFormat>(f->format);
    const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(fmt);
    if (desc == nullptr || (desc->flags & AV_PIX_FMT_FLAG_HWACCEL)) {
      if (error) *error = "unexpected frame format";
      return false;
    }
    bool deep = desc->comp[0].depth > 8;
    if (cfg_.output_format == OutputFormat::kNv12) deep = false;
    if (cfg_.output_format == OutputFormat::kP010) deep = true;
    out.format = deep ? CUFRAMES_FORMAT_P010 : CUFRAMES_FORMAT_NV12;
    const AVPixelFormat want = deep ? AV_PIX_FMT_P010LE : AV_PIX_FMT_NV12;
    cuframes_source_init(&out.planes);
    out.planes.memory = CUFRAMES_MEMORY_HOST;
    describe_color(f, &out.planes);
    if (fmt == want) {  // already what rings hold: publish straight from the decoder's buffers
      out.planes.planes[0] = f->data[0];
      out.planes.planes[1] = f->data[1];
      out.planes.pitches[0] = static_cast<uint64_t>(f->linesize[0]);
      out.planes.pitches[1] = static_cast<uint64_t>(f->linesize[1]);
      return sink->on_frame(out);
    }
    // The samples keep their range (and the frame's colour description says which): a
    // full-range source, MJPEG above all, stays full range, as NVDEC delivers the same stream.
    bool jpeg = false;
    const AVPixelFormat src = plain_twin(fmt, &jpeg);
    const bool full = jpeg || f->color_range == AVCOL_RANGE_JPEG;
    if (jpeg) out.planes.color_range = CUFRAMES_COLOR_RANGE_FULL;
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
    uint8_t* dst[4] = {conv_.data(), conv_.data() + static_cast<size_t>(pitch) * f->height,
                       nullptr, nullptr};
    int dst_stride[4] = {pitch, pitch, 0, 0};
    sws_scale(sws_, f->data, f->linesize, 0, f->height, dst, dst_stride);
    out.planes.planes[0] = dst[0];
    out.planes.planes[1] = dst[1];
    out.planes.pitches[0] = out.planes.pitches[1] = static_cast<uint64_t>(pitch);
    return sink->on_frame(out);
  }

  CameraConfig cfg_;
  SourceOptions opt_;
  const std::atomic<bool>* stop_;
  std::shared_ptr<spdlog::logger> log_;
  cfcommon::FormatPtr fmt_;
  cfcommon::CodecPtr codec_ctx_;
  cfcommon::FramePtr frame_;
  cfcommon::FramePtr sw_frame_;  // NVDEC frames downloaded for a host ring
  int stream_index_ = -1;
  std::string codec_name_;
  bool hw_ = false;
  bool warned_fallback_ = false;  // the software-fallback warning, once per source
  std::string hw_error_;
  bool live_ = false;
  bool realtime_ = false;
  bool seen_key_ = false;  // a keyframe went to the decoder since open
  // A step in the timestamps larger than this many frame intervals (and than kJumpMinNs), or
  // one back, is a jump: the pacing re-anchors instead of waiting for it.
  static constexpr int64_t kJumpFrames = 10;
  static constexpr int64_t kJumpMinNs = 1000000000;
  // A paced source at most this late catches up (frames at once until on time again).
  static constexpr int64_t kCatchUpNs = 2000000000;
  // A stream without timestamps (a raw one: the demuxer says AVFMT_NOTIMESTAMPS, or its packets
  // have none): paced at nominal_ns_, rewound to its first byte.
  bool untimed_ = false;
  int64_t nominal_ns_ = 0;  // the stream's frame interval (its rate, else `fps`)
  int64_t anchor_pts_ = AV_NOPTS_VALUE;
  int64_t anchor_wall_ = 0;
  int64_t last_pts_ns_ = AV_NOPTS_VALUE;  // realtime: the last frame's pts,
  int64_t last_wall_ = 0;                 // when it was due,
  int64_t frame_ns_ = 0;                  // and the interval before it
  bool rewound_ = false;                  // a loop started over since the last frame
  std::string path_;                      // a file's path, and
  FileId file_id_;          // what it was when opened (size -1: unknown, never rewound)
  uint64_t delivered_ = 0;  // frames of this pass over the file
  uint64_t passes_ = 0;     // passes started over in place
  std::atomic<int64_t> deadline_ns_{0};
  // The conversion to the ring's format: sws_ converts frames of sws_key_.
  struct SwsKey {
    int width = 0, height = 0;
    AVPixelFormat src = AV_PIX_FMT_NONE, dst = AV_PIX_FMT_NONE;
    bool full = false;  // source and destination range: full (else limited), kept as it is
    bool operator==(const SwsKey& o) const {
      return width == o.width && height == o.height && src == o.src && dst == o.dst &&
             full == o.full;
    }
  };
  static SwsContext* make_sws(const SwsKey& k) {
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
  SwsContext* sws_ = nullptr;
  SwsKey sws_key_;
  std::vector<uint8_t> conv_;
#ifdef CUFRAMES_WITH_CUDA
  cudaStream_t stream_ = nullptr;
#else
  void* stream_ = nullptr;
#endif
};

}  // namespace

std::unique_ptr<Source> make_ffmpeg_source(const CameraConfig& config, const SourceOptions& opt,
                                           const std::atomic<bool>* stop,
                                           std::shared_ptr<spdlog::logger> log) {
  return std::make_unique<FfmpegSource>(config, opt, stop, std::move(log));
}

}  // namespace cfsvc
