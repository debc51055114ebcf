// FFmpeg source: demux (rtsp/rtsps over TCP or UDP, http, files) and decode, with NVDEC through
// FFmpeg's CUDA hwaccel where it can (frames stay in device memory, in the CUDA primary context
// the rings use, on a stream of the camera's own: ffmpeg_cuda.h) and software decode otherwise.
// Software frames are converted to NV12 (8-bit) or P010 (deeper) with swscale when they are not
// already (frame_convert.h).
// `decoder: cuvid` decodes with FFmpeg's *_cuvid decoders instead (h264_cuvid, hevc_cuvid...):
// NVIDIA's own parser, which queues pictures on NVDEC ahead of their display (several decode
// surfaces in flight) instead of the hwaccel's decode-then-wait per picture; same context,
// same stream, same device frames. `decoder: nvcuvid` calls NVIDIA's parser and decoder directly
// (source_nvcuvid.h), without FFmpeg's decoder: demuxed here, decoded and paced there.
//
// Time limits: every blocking FFmpeg call is bounded by an interrupt callback: open_timeout while
// opening, stall_timeout between packets once streaming, and the camera's stop flag always.
//
// A looping file starts over in place: a seek to its start and a decoder flush, keeping the
// demuxer and the decoder (NVDEC's set-up costs tens of milliseconds, a large share of a short
// clip decoded flat out). Only when the file at the path changed or went away, or the seek
// fails, does run() end with kEnd and the camera reopen it.
//
// Files are paced in real time by their timestamps (realtime: true; pacer.h). A jump in them
// (forward by more than max(1 s, 10 frame intervals), or any step back) re-anchors the pacing one
// frame interval after the frame before; one of more than that either way is reported to the camera
// (which logs it), unless it is a loop starting over. A stream without
// timestamps (raw Annex B: .h264, .hevc) is paced at its frame rate: the stream's own (its
// SPS), else the camera's `fps`, given to FFmpeg's raw demuxers as their `framerate`.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/hwcontext.h>
#include <libavutil/pixdesc.h>
}

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <vector>

#include "av_ptr.h"
#include "ffmpeg_cuda.h"
#include "frame_convert.h"
#include "pacer.h"
#include "source.h"
#include "source_nvcuvid.h"

namespace cfsvc {

namespace {

std::string av_err(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

cuframes_codec_t codec_of(AVCodecID id) {
  switch (id) {
    case AV_CODEC_ID_H264:
      return CUFRAMES_CODEC_H264;
    case AV_CODEC_ID_HEVC:
      return CUFRAMES_CODEC_HEVC;
    case AV_CODEC_ID_AV1:
      return CUFRAMES_CODEC_AV1;
    case AV_CODEC_ID_VP9:
      return CUFRAMES_CODEC_VP9;
    case AV_CODEC_ID_MJPEG:
      return CUFRAMES_CODEC_MJPEG;
    default:
      return CUFRAMES_CODEC_UNKNOWN;
  }
}

class FfmpegSource final : public Source {
 public:
  FfmpegSource(const CameraConfig& config, const SourceOptions& opt, const std::atomic<bool>* stop,
               std::shared_ptr<spdlog::logger> log)
      : cfg_(config), opt_(opt), stop_(stop), log_(std::move(log)) {}

  ~FfmpegSource() override {
    codec_ctx_.reset();
    fmt_.reset();
#ifdef CUFRAMES_WITH_CUDA
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
#endif
  }

  std::string codec() const override {
    return codec_name_;
  }
  std::string decoder() const override {
    return hw_ ? hw_name() : "software";
  }

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
      av_dict_set(&opts, "rtsp_transport",
                  cfg_.rtsp_transport == RtspTransport::kTcp ? "tcp" : "udp", 0);
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
    dec_ = dec;
    // nvcuvid: asked for, or auto's choice for H.264 and HEVC into a cuda ring (the least CPU
    // per frame at scale: docs/architecture.md); auto falls back to FFmpeg's NVDEC below when
    // nvcuvid cannot start, and in run() when it refuses the stream's sequence.
    const bool auto_nv = cfg_.decoder == DecoderChoice::kAuto && !opt_.host_ring &&
                         opt_.cuda_usable && nvcuvid_codec(st->codecpar->codec_id);
    if (cfg_.decoder == DecoderChoice::kNvcuvid || auto_nv) {
      auto deliver = [this](SourceSink* s, VideoFrame& f, int64_t pts, std::string* e) {
        return deliver_device(s, f, pts, e);
      };
      std::string why;
      nv_ = open_nvcuvid(st, opt_, deliver, &why);
      if (nv_) {
        hw_ = true;
      } else if (!auto_nv) {
        return fail(error, why);
      } else {
        log_->info("nvcuvid unavailable for {} ({}): FFmpeg's NVDEC decodes it", codec_name_, why);
      }
    }
    if (cfg_.decoder == DecoderChoice::kCuvid) {
      // FFmpeg's decoder built on NVIDIA's parser: <codec>_cuvid (h264_cuvid, hevc_cuvid, ...).
      const std::string name = std::string(avcodec_get_name(st->codecpar->codec_id)) + "_cuvid";
      if (!opt_.cuda_usable) return fail(error, "decoder: cuvid, but no usable CUDA device");
      dec = avcodec_find_decoder_by_name(name.c_str());
      if (dec == nullptr) return fail(error, "decoder: cuvid, but this FFmpeg has no " + name);
    }
    if (!nv_ && !open_decoder(dec, st, error)) return false;
    realtime_ = !live_ && cfg_.realtime;
    // The stream's frame interval: its average rate, else its base rate, else `fps`.
    AVRational rate = st->avg_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) rate = st->r_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) rate = av_d2q(cfg_.fps, 1001000);
    int64_t nominal_ns = av_rescale(1000000000, rate.den, rate.num);
    if (nominal_ns <= 0) nominal_ns = static_cast<int64_t>(1e9 / cfg_.fps);
    pacer_.start(nominal_ns);
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
      lap(opt_.cpu, CpuStage::kRead);
      if (!stop_->load() && mono_ns() > deadline_ns_.load()) {
        av_packet_unref(pkt.get());
        return stalled(error);
      }
      if (rc == AVERROR_EOF || (rc == AVERROR(EIO) && !live_)) {
        drain(sink, nullptr);
        if (stop_->load()) return Outcome::kStopped;
        lap(opt_.cpu, CpuStage::kOther);
        const uint64_t frames = delivered_;  // this pass's, the drained ones included
        std::string why_not;
        const bool rewound = !live_ && cfg_.loop && frames > 0 && rewind(&why_not);
        lap(opt_.cpu, CpuStage::kRead);  // the seek
        if (rewound) {
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
      lap(opt_.cpu, CpuStage::kRead);
      // Decoding starts at a keyframe: joining mid-GOP only yields broken pictures.
      if (!seen_key_ && !(pkt->flags & AV_PKT_FLAG_KEY)) {
        av_packet_unref(pkt.get());
        continue;
      }
      seen_key_ = true;
      if (nv_) {  // nvcuvid: decoded, paced and published in there
        std::string why;
        const bool ok = nv_->send(pkt.get(), sink, &why);
        av_packet_unref(pkt.get());
        if (ok) continue;
        if (!stop_->load() && cfg_.decoder == DecoderChoice::kAuto && nv_->refused()) {
          // auto: a stream nvcuvid refuses (4:2:2, a size or depth this NVDEC lacks) goes to
          // FFmpeg's decoder, NVDEC or software, from the next keyframe.
          log_->warn("nvcuvid cannot decode this {} stream ({}): FFmpeg decodes it", codec_name_,
                     why);
          nv_.reset();
          hw_ = false;
          seen_key_ = false;
          if (!open_decoder(dec_, st, error)) return Outcome::kError;
          continue;
        }
        if (error != nullptr && !why.empty()) *error = why;
        return stop_->load() ? Outcome::kStopped : Outcome::kError;
      }
      rc = avcodec_send_packet(codec_ctx_.get(), pkt.get());
      lap(opt_.cpu, CpuStage::kDecode);
      if (rc == AVERROR(EAGAIN)) {  // the decoder wants its output taken first (cuvid may)
        if (!receive_frames(sink, error)) {
          av_packet_unref(pkt.get());
          return stop_->load() ? Outcome::kStopped : Outcome::kError;
        }
        rc = avcodec_send_packet(codec_ctx_.get(), pkt.get());
      }
      av_packet_unref(pkt.get());
      lap(opt_.cpu, CpuStage::kDecode);
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
    // An experiment (issue 16): CUFRAMES_DECODER_OPTS="key=value,key=value" passes options to
    // the decoder (cuvid's "surfaces", "extra_hw_frames", ...); those it does not know are logged.
    AVDictionary* dopts = nullptr;
    if (const char* v = std::getenv("CUFRAMES_DECODER_OPTS"); v != nullptr && *v != '\0') {
      if (av_dict_parse_string(&dopts, v, "=", ",", 0) < 0) {
        log_->warn("CUFRAMES_DECODER_OPTS={}: not key=value,key=value; ignored", v);
        av_dict_free(&dopts);
      }
    }
    rc = avcodec_open2(ctx, dec, &dopts);
    for (const AVDictionaryEntry* e = nullptr;
         (e = av_dict_get(dopts, "", e, AV_DICT_IGNORE_SUFFIX));) {
      log_->warn("CUFRAMES_DECODER_OPTS: the {} decoder has no option {}", dec->name, e->key);
    }
    av_dict_free(&dopts);
    if (rc < 0) return fail(error, "cannot open the " + codec_name_ + " decoder: " + av_err(rc));
    return true;
  }

  bool cuvid() const {
    return cfg_.decoder == DecoderChoice::kCuvid;
  }
  const char* hw_name() const {  // the GPU decoder's name: nvdec, cuvid or nvcuvid
    if (nv_) return "nvcuvid";
    return cfg_.decoder == DecoderChoice::kAuto ? "nvdec" : to_string(cfg_.decoder);
  }

  bool setup_nvdec(const AVCodec* dec, AVCodecContext* ctx) {
    void* stream = stream_;
    const bool ok = setup_cuda_decoder(dec, ctx, opt_.cuda_device, &stream, &hw_error_);
#ifdef CUFRAMES_WITH_CUDA
    stream_ = static_cast<cudaStream_t>(stream);
#else
    stream_ = stream;
#endif
    if (ok) hw_ = true;
    return ok;
  }

  bool receive_frames(SourceSink* sink, std::string* error) {
    if (!frame_) frame_.reset(av_frame_alloc());
    for (;;) {
      int rc = avcodec_receive_frame(codec_ctx_.get(), frame_.get());
      lap(opt_.cpu, CpuStage::kDecode);
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return true;
      if (rc < 0) {
        sink->on_decode_error("decoding failed: " + av_err(rc));
        return true;
      }
      if (frame_->decode_error_flags != 0 || (frame_->flags & AV_FRAME_FLAG_CORRUPT)) {
        sink->on_decode_error("corrupt frame");
      }
      bool ok = deliver(sink, frame_.get(), error);
      av_frame_unref(frame_.get());  // the decoder's surface back to its pool
      lap(opt_.cpu, CpuStage::kDecode);
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
    pacer_.rewound();  // the timestamps go back now: no jump
    return true;
  }

  void drain(SourceSink* sink, std::string* error) {
    if (nv_) {
      nv_->flush(sink, error);
      return;
    }
    avcodec_send_packet(codec_ctx_.get(), nullptr);
    receive_frames(sink, error);
    avcodec_flush_buffers(codec_ctx_.get());
    lap(opt_.cpu, CpuStage::kDecode);
  }

  // realtime: true files wait for each frame's time (pacer.h); a stream without timestamps is
  // paced at its nominal rate.
  bool pace(SourceSink* sink, int64_t pts) {
    if (!realtime_) return true;
    const int64_t pts_ns =
        pts != AV_NOPTS_VALUE && !untimed_
            ? av_rescale_q(pts, fmt_->streams[stream_index_]->time_base, AVRational{1, 1000000000})
            : Pacer::kNoTimestamp;
    return pacer_.wait(pts_ns, sink, stop_);
  }

  bool deliver(SourceSink* sink, AVFrame* f, std::string* error) {
    const bool paced =
        pace(sink, f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts);
    lap(opt_.cpu, CpuStage::kPace);
    if (!paced) return false;
    VideoFrame out;
    out.width = static_cast<uint32_t>(f->width);
    out.height = static_cast<uint32_t>(f->height);
    if ((out.width | out.height) & 1) {
      if (error)
        *error = "odd frame size " + std::to_string(f->width) + "x" + std::to_string(f->height);
      return false;
    }
#ifdef CUFRAMES_WITH_CUDA
    if (f->format == AV_PIX_FMT_CUDA && opt_.host_ring) {  // NVDEC into a host ring: download
      if (!sw_frame_) sw_frame_.reset(av_frame_alloc());
      int rc = av_hwframe_transfer_data(sw_frame_.get(), f, 0);
      lap(opt_.cpu, CpuStage::kConvert);
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
      if (!format_allowed(out.format, error)) return false;
      cuframes_source_init(&out.planes);
      out.planes.planes[0] = f->data[0];
      out.planes.planes[1] = f->data[1];
      out.planes.pitches[0] = static_cast<uint64_t>(f->linesize[0]);
      out.planes.pitches[1] = static_cast<uint64_t>(f->linesize[1]);
      out.planes.memory = CUFRAMES_MEMORY_CUDA;
      // cuvid maps and copies on the legacy stream (ffmpeg_cuda.h): the ring's copy after it
      if (cuvid() && !cuvid_fence_.wait(opt_.cuda_device, stream_, error)) return false;
      out.planes.cuda_stream = stream_;
      describe_color(f, &out.planes);
      out.device = opt_.cuda_device;
      return publish(sink, out);
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
      log_->warn(
          "NVDEC could not decode {}: FFmpeg decodes it in software, on one thread (set "
          "decoder: software for a multi-threaded software decoder)",
          codec_name_);
    }
    return deliver_software(sink, f, out, error);
  }

  // A GPU decoder's format against output_format: it cannot convert.
  bool format_allowed(cuframes_format_t format, std::string* error) const {
    const bool deep = format != CUFRAMES_FORMAT_NV12;
    if (cfg_.output_format != (deep ? OutputFormat::kNv12 : OutputFormat::kP010)) return true;
    if (error) {
      *error = deep ? "output_format nv12 with a >8-bit stream needs decoder: software"
                    : "output_format p010 with an 8-bit stream needs decoder: software";
    }
    return false;
  }

  // decoder: nvcuvid's pictures (source_nvcuvid.h), still mapped: paced, then published.
  bool deliver_device(SourceSink* sink, VideoFrame& out, int64_t pts, std::string* error) {
    const bool paced = pace(sink, pts);
    lap(opt_.cpu, CpuStage::kPace);
    if (!paced || !format_allowed(out.format, error)) return false;
    out.decoder = hw_name();
    if (!publish(sink, out)) return false;
    ++delivered_;
    return true;
  }

  bool deliver_software(SourceSink* sink, AVFrame* f, VideoFrame out, std::string* error) {
    if (*out.decoder == '\0') out.decoder = "software";
    const bool ok = converter_.to_ring_format(f, cfg_.output_format, &out, error);
    lap(opt_.cpu, CpuStage::kConvert);
    return ok && publish(sink, out);
  }

  // The frame into the ring (Camera::on_frame), its CPU charged to the publish stage.
  bool publish(SourceSink* sink, const VideoFrame& out) {
    const bool ok = sink->on_frame(out);
    lap(opt_.cpu, CpuStage::kPublish);
    return ok;
  }

  CameraConfig cfg_;
  SourceOptions opt_;
  const std::atomic<bool>* stop_;
  std::shared_ptr<spdlog::logger> log_;
  cfcommon::FormatPtr fmt_;
  cfcommon::CodecPtr codec_ctx_;
  cfcommon::FramePtr frame_;
  cfcommon::FramePtr sw_frame_;      // NVDEC frames downloaded for a host ring
  std::unique_ptr<NvcuvidPath> nv_;  // nvcuvid (asked for, or auto's choice)
  const AVCodec* dec_ = nullptr;     // FFmpeg's decoder for the stream (auto's fallback)
  int stream_index_ = -1;
  std::string codec_name_;
  bool hw_ = false;
  bool warned_fallback_ = false;  // the software-fallback warning, once per source
  std::string hw_error_;
  bool live_ = false;
  bool realtime_ = false;
  bool seen_key_ = false;  // a keyframe went to the decoder since open
  // A stream without timestamps (a raw one: the demuxer says AVFMT_NOTIMESTAMPS, or its packets
  // have none): paced at its nominal rate, rewound to its first byte.
  bool untimed_ = false;
  Pacer pacer_;             // realtime: true
  std::string path_;        // a file's path, and
  FileId file_id_;          // what it was when opened (size -1: unknown, never rewound)
  uint64_t delivered_ = 0;  // frames of this pass over the file
  uint64_t passes_ = 0;     // passes started over in place
  std::atomic<int64_t> deadline_ns_{0};
  FrameConverter converter_;  // software frames to NV12 / P010
#ifdef CUFRAMES_WITH_CUDA
  cudaStream_t stream_ = nullptr;
  LegacyStreamFence cuvid_fence_;  // the ring's copy waits for cuvid's (ffmpeg_cuda.h)
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
