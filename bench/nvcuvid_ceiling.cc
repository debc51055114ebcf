// nvcuvid_ceiling: the decode-only ceiling of NVIDIA's Video Codec API called directly, the
// measurement behind docs/architecture.md's "one thread per NVDEC engine" (issue 16).
//
// Each stream demuxes its file with libavformat (looping), converts it to Annex B
// (h264_mp4toannexb / hevc_mp4toannexb) and feeds it one access unit at a time to a CUvideoparser
// of its own; the parser's callbacks create the stream's CUvideodecoder on the first sequence,
// decode each picture, and for each picture ready for display map it on the worker's CUDA stream,
// copy Y and UV into a device buffer of the stream's own (the service's publish into a ring
// slot), wait for that copy and only then unmap. Frames are counted after that wait.
//
// The point is the threading: --threads T worker threads, the N streams distributed round-robin
// over them; each worker feeds each of its streams one packet per turn. T = N is one thread per
// camera (cuframes-service's design today, and bench/nvdec_ceiling's); T = 7 on an H200 is one
// thread per NVDEC engine. --paced FPS feeds each stream at FPS packets per second in real time,
// like a live camera (a stream that falls behind is fed again at once until it has caught up,
// and its lag is reported), so that the per-stream rate and the CPU per frame of real-time
// cameras can be read at 128 streams.
//
//   nvcuvid_ceiling [--seconds S] [--streams N] [--threads T] [--paced FPS] [--display-delay D]
//                   [--surfaces K] [--output-surfaces M] [--sched blocking|spin|yield|auto]
//                   [--lock stream|shared|none]
//                   [--preload] [--sweep NxT,...,ffN,...] [--repeat R] [--ffmpeg PATH]
//                   [--demux-only] [--packets P] FILE...
//
// Each run prints one line in bench/nvdec_ceiling's format (fps= and cpu_us_per_frame= as
// bench/service_bench.py parses them), plus threads, the slowest and the median stream's fps,
// and the CPU per stream in % of a core. The window starts once every stream has shown its first
// frame (decoders created, pipelines full) and lasts --seconds; CPU is the process's (getrusage,
// user + system, all threads) over that window. --sweep runs several (streams x threads) rows in
// one process, each repeated --repeat times, interleaved (A,B,C,A,B,C,...), then prints each
// row's medians and its ratios to a reference row; a row ffN runs FFmpeg's `*_cuvid` decoder
// through bench/nvdec_ceiling (--ffmpeg PATH, --decoder cuvid, N streams, always flat out) in a
// child process, in the same interleaving.
//
// Defaults: --sched blocking (the primary context's flag, as FFmpeg sets it), --display-delay 4
// (FFmpeg's cuvid), --surfaces 4 (beyond the sequence's min_num_decode_surfaces),
// --output-surfaces 2, --lock stream (a cuvidCtxLock per decoder, as NVIDIA's samples; shared: one
// for all; none), --seconds 10, --threads = --streams. --preload reads each file once and replays
// its packets from memory, to take the demux out of the CPU per frame.
//
// --demux-only skips the GPU entirely (demux + bitstream filter + loop, each packet checked to be
// Annex B and each loop to start with a keyframe carrying its parameter sets); with --packets P
// each stream stops after P packets instead of after --seconds. No GPU, or no libnvcuvid: one
// line naming what is missing, exit status 2. Bad arguments: one line naming the argument, 2.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
}
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {
char g_loader_msg[256];  // the loader's complaint (which library or symbol), for our one line
void loader_log(void*, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(g_loader_msg, sizeof g_loader_msg, fmt, ap);
  va_end(ap);
  const size_t n = std::strlen(g_loader_msg);
  if (n > 0 && g_loader_msg[n - 1] == '\n') g_loader_msg[n - 1] = '\0';
}
}  // namespace

// FFmpeg's loader (Debian's libffmpeg-nvenc-dev): libcuda and libnvcuvid are opened at run time,
// so this builds without a GPU or the CUDA toolkit. No CUDA toolkit header may come before it.
#define FFNV_LOG_FUNC(logctx, msg, ...) loader_log((logctx), (msg), __VA_ARGS__)
#define FFNV_DEBUG_LOG_FUNC(logctx, msg, ...)
#include <ffnvcodec/dynlink_loader.h>

namespace {

using Clock = std::chrono::steady_clock;

// The scheduling flags of cuCtxCreate / cuDevicePrimaryCtxSetFlags (dynlink_cuda.h has only
// CU_CTX_SCHED_BLOCKING_SYNC).
constexpr unsigned kSchedAuto = 0, kSchedSpin = 1, kSchedYield = 2, kSchedBlocking = 4;

[[noreturn]] void die(int code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("nvcuvid_ceiling: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::fflush(stdout);
  std::_Exit(code);  // also from a worker thread: no destructors racing the others
}

struct Options {
  double seconds = 10;
  int streams = 1;
  int threads = 0;  // 0: one per stream
  double paced = 0;
  int display_delay = 4;  // FFmpeg's cuviddec: CUVID_MAX_DISPLAY_DELAY
  int surfaces = 4;       // decode surfaces beyond the sequence's min_num_decode_surfaces
  int output_surfaces = 2;
  std::string sched = "blocking";  // FFmpeg's (primary_ctx) and the service's default
  std::string lock = "stream";
  bool preload = false, demux_only = false;
  long packets = 0;  // per stream; 0: run --seconds
  int repeat = 1;
  std::string sweep, ffmpeg;
  std::vector<std::string> files;
};
Options g_opt;

// ---------------------------------------------------------------- CUDA and NVDEC, loaded at run
// time
CudaFunctions* cu = nullptr;
CuvidFunctions* cv = nullptr;
CUcontext g_ctx = nullptr;
CUvideoctxlock g_shared_lock = nullptr;

void ck(CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return;
  const char* name = nullptr;
  const char* text = nullptr;
  if (cu != nullptr) {
    cu->cuGetErrorName(r, &name);
    cu->cuGetErrorString(r, &text);
  }
  die(1, "%s failed: %s (%d): %s", what, name ? name : "?", static_cast<int>(r), text ? text : "?");
}

std::string gpu_setup(cudaVideoCodec codec, const char* codec_name) {
  // The loader says "Cannot load <library>" or "Cannot load <symbol>".
  const auto lib_missing = [] { return std::strstr(g_loader_msg, ".so") != nullptr; };
  if (cuda_load_functions(&cu, nullptr) != 0) {
    if (lib_missing())
      die(2,
          "no NVIDIA driver: %s (libcuda.so.1 comes with the NVIDIA driver; this bench needs an "
          "NVIDIA GPU)",
          g_loader_msg);
    die(2,
        "this libcuda.so.1 lacks a function FFmpeg's loader needs: %s (an old driver, or a stub)",
        g_loader_msg);
  }
  if (cuvid_load_functions(&cv, nullptr) != 0) {
    if (lib_missing())
      die(2,
          "no NVDEC: %s (libnvcuvid.so.1 is the driver's video library; in a container, the "
          "NVIDIA toolkit mounts it only with the 'video' capability)",
          g_loader_msg);
    die(2, "this libnvcuvid.so.1 lacks a function FFmpeg's loader needs: %s (an old driver?)",
        g_loader_msg);
  }
  CUresult r = cu->cuInit(0);
  if (r != CUDA_SUCCESS) {
    const char* name = "?";
    cu->cuGetErrorName(r, &name);
    die(2, "no usable CUDA device: cuInit failed: %s (%d)", name, static_cast<int>(r));
  }
  int count = 0;
  if (cu->cuDeviceGetCount(&count) != CUDA_SUCCESS || count < 1)
    die(2, "no CUDA device: the driver loaded but reports none");
  CUdevice dev = 0;
  ck(cu->cuDeviceGet(&dev, 0), "cuDeviceGet(0)");
  const unsigned flags = g_opt.sched == "spin"       ? kSchedSpin
                         : g_opt.sched == "yield"    ? kSchedYield
                         : g_opt.sched == "blocking" ? kSchedBlocking
                                                     : kSchedAuto;
  ck(cu->cuDevicePrimaryCtxSetFlags(dev, flags), "cuDevicePrimaryCtxSetFlags");  // before first use
  ck(cu->cuDevicePrimaryCtxRetain(&g_ctx, dev), "cuDevicePrimaryCtxRetain");
  ck(cu->cuCtxPushCurrent(g_ctx), "cuCtxPushCurrent");
  char name[128] = "?";
  cu->cuDeviceGetName(name, sizeof name, dev);
  std::string engines = "?";
  if (cv->cuvidGetDecoderCaps != nullptr) {
    CUVIDDECODECAPS caps{};
    caps.eCodecType = codec;
    caps.eChromaFormat = cudaVideoChromaFormat_420;
    caps.nBitDepthMinus8 = 0;
    if (cv->cuvidGetDecoderCaps(&caps) == CUDA_SUCCESS) {
      if (!caps.bIsSupported) die(2, "this GPU's NVDEC cannot decode %s 4:2:0 8-bit", codec_name);
      engines = std::to_string(caps.nNumNVDECs);
    }
  }
  if (g_opt.lock == "shared")
    ck(cv->cuvidCtxLockCreate(&g_shared_lock, g_ctx), "cuvidCtxLockCreate");
  return std::string(name) + ", " + engines + " NVDEC engines for " + codec_name;
}

// ---------------------------------------------------------------- packets: demux + Annex B,
// looping
struct Clip {  // what a file is, probed once
  std::string path;
  AVCodecID codec_id = AV_CODEC_ID_NONE;
  cudaVideoCodec codec = cudaVideoCodec_H264;
  const char* bsf = nullptr;
  std::vector<std::vector<uint8_t>> packets;  // --preload: the file's access units, Annex B
};
std::vector<Clip> g_clips;

bool codec_of(AVCodecID id, cudaVideoCodec* c, const char** bsf) {
  switch (id) {
    case AV_CODEC_ID_H264:
      *c = cudaVideoCodec_H264;
      *bsf = "h264_mp4toannexb";
      return true;
    case AV_CODEC_ID_HEVC:
      *c = cudaVideoCodec_HEVC;
      *bsf = "hevc_mp4toannexb";
      return true;
    default:
      return false;
  }
}

// Whether an Annex B access unit holds a sequence parameter set (the parser needs one after
// every loop) and a keyframe (IDR / IRAP); false when it is not Annex B at all.
bool scan_annexb(const uint8_t* p, size_t n, bool hevc, bool* sps, bool* key) {
  *sps = *key = false;
  if (n < 4 || !(p[0] == 0 && p[1] == 0 && (p[2] == 1 || (p[2] == 0 && p[3] == 1)))) return false;
  for (size_t i = 0; i + 3 < n; ++i) {
    if (p[i] != 0 || p[i + 1] != 0 || p[i + 2] != 1) continue;
    const uint8_t h = p[i + 3];
    if (hevc) {
      const int t = (h >> 1) & 0x3f;
      if (t == 33) *sps = true;
      if (t >= 16 && t <= 21) *key = true;
    } else {
      const int t = h & 0x1f;
      if (t == 7) *sps = true;
      if (t == 5) *key = true;
    }
    i += 3;
  }
  return true;
}

class Source {  // one stream's packets: its own demuxer (or the preloaded file), looping
 public:
  explicit Source(const Clip& clip) : clip_(clip) {
    if (!g_opt.preload) open();
  }
  ~Source() {
    av_packet_free(&in_);
    av_packet_free(&out_);
    av_bsf_free(&bsf_);
    if (fmt_ != nullptr) avformat_close_input(&fmt_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // The next access unit; false at the end of the file (then rewind()).
  bool next(const uint8_t** data, size_t* size) {
    if (g_opt.preload) {
      if (index_ >= clip_.packets.size()) return false;
      const auto& p = clip_.packets[index_++];
      *data = p.data();
      *size = p.size();
      return true;
    }
    av_packet_unref(out_);
    for (;;) {
      const int rc = av_bsf_receive_packet(bsf_, out_);
      if (rc == 0) {
        *data = out_->data;
        *size = static_cast<size_t>(out_->size);
        return true;
      }
      if (rc != AVERROR(EAGAIN)) die(1, "%s: the %s filter failed", clip_.path.c_str(), clip_.bsf);
      const int rd = av_read_frame(fmt_, in_);
      if (rd == AVERROR_EOF) return false;
      if (rd < 0) die(1, "%s: cannot read a packet", clip_.path.c_str());
      if (in_->stream_index != si_) {
        av_packet_unref(in_);
        continue;
      }
      if (av_bsf_send_packet(bsf_, in_) < 0)
        die(1, "%s: the %s filter refused a packet", clip_.path.c_str(), clip_.bsf);
    }
  }
  void rewind() {
    ++loops_;
    if (g_opt.preload) {
      index_ = 0;
      return;
    }
    if (av_seek_frame(fmt_, si_, 0, AVSEEK_FLAG_BACKWARD) < 0)
      die(1, "%s: cannot seek back to the start", clip_.path.c_str());
    av_bsf_flush(bsf_);  // parameter sets go in again before the first keyframe
  }
  uint64_t loops() const { return loops_; }

 private:
  void open() {
    if (avformat_open_input(&fmt_, clip_.path.c_str(), nullptr, nullptr) < 0 ||
        avformat_find_stream_info(fmt_, nullptr) < 0)
      die(2, "cannot open %s", clip_.path.c_str());
    si_ = av_find_best_stream(fmt_, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (si_ < 0) die(2, "no video stream in %s", clip_.path.c_str());
    const AVBitStreamFilter* f = av_bsf_get_by_name(clip_.bsf);
    if (f == nullptr) die(1, "this FFmpeg has no %s bitstream filter", clip_.bsf);
    if (av_bsf_alloc(f, &bsf_) < 0 ||
        avcodec_parameters_copy(bsf_->par_in, fmt_->streams[si_]->codecpar) < 0)
      die(1, "cannot allocate the %s filter", clip_.bsf);
    bsf_->time_base_in = fmt_->streams[si_]->time_base;
    if (av_bsf_init(bsf_) < 0)
      die(1, "%s: cannot start the %s filter", clip_.path.c_str(), clip_.bsf);
    in_ = av_packet_alloc();
    out_ = av_packet_alloc();
  }

  const Clip& clip_;
  AVFormatContext* fmt_ = nullptr;
  AVBSFContext* bsf_ = nullptr;
  AVPacket* in_ = nullptr;
  AVPacket* out_ = nullptr;
  int si_ = -1;
  size_t index_ = 0;
  uint64_t loops_ = 0;
};

void probe(Clip& clip) {
  AVFormatContext* fmt = nullptr;
  if (avformat_open_input(&fmt, clip.path.c_str(), nullptr, nullptr) < 0 ||
      avformat_find_stream_info(fmt, nullptr) < 0)
    die(2, "cannot open %s", clip.path.c_str());
  const int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (si < 0) die(2, "no video stream in %s", clip.path.c_str());
  clip.codec_id = fmt->streams[si]->codecpar->codec_id;
  avformat_close_input(&fmt);
  if (!codec_of(clip.codec_id, &clip.codec, &clip.bsf))
    die(2, "%s: codec %s is not one this bench feeds to NVIDIA's parser (h264, hevc)",
        clip.path.c_str(), avcodec_get_name(clip.codec_id));
  if (g_opt.preload) {
    const bool saved = g_opt.preload;
    g_opt.preload = false;
    {
      Source s(clip);
      const uint8_t* d = nullptr;
      size_t n = 0;
      while (s.next(&d, &n)) clip.packets.emplace_back(d, d + n);
    }
    g_opt.preload = saved;
    if (clip.packets.empty()) die(2, "%s: no video packets", clip.path.c_str());
  }
}

// ---------------------------------------------------------------- one stream: parser + decoder
struct Stream {
  int index = 0;
  const Clip* clip = nullptr;
  std::unique_ptr<Source> src;
  CUstream cs = nullptr;  // the worker's
  CUvideoctxlock lock = nullptr;
  CUvideoparser parser = nullptr;
  CUvideodecoder dec = nullptr;
  CUdeviceptr buf = 0;  // the stream's own frame: the service's ring slot
  unsigned coded_w = 0, coded_h = 0, width = 0, height = 0, row_bytes = 0;
  unsigned surface_h = 0;  // the mapped surface's luma rows: UV starts there
  int surfaces = 0;
  std::atomic<uint64_t> frames{0};  // displayed, copied, and the copy waited for
  uint64_t fed = 0;                 // packets given to the parser
  bool at_loop_start = true;        // the next packet is the first of a loop (checked)
  double due = 0;                   // --paced: when its next packet is due (s since go)
  double max_lag = 0;               // --paced: the most it was behind (s), in the window
  bool done = false;                // --packets: fed them all
  uint64_t loops = 0;               // times the file was looped (kept when the source closes)
};

int CUDAAPI on_sequence(void* user, CUVIDEOFORMAT* f) {
  auto* s = static_cast<Stream*>(user);
  if (s->dec != nullptr) {  // a repeated sequence header (every loop): same format, same decoder
    if (f->coded_width == s->coded_w && f->coded_height == s->coded_h) return s->surfaces;
    std::fprintf(stderr, "nvcuvid_ceiling: stream %d: the format changed mid-stream (%ux%u)\n",
                 s->index, f->coded_width, f->coded_height);
    return 0;
  }
  if (f->chroma_format != cudaVideoChromaFormat_420) {
    std::fprintf(stderr, "nvcuvid_ceiling: %s: only 4:2:0 is supported here\n",
                 s->clip->path.c_str());
    return 0;
  }
  const bool deep = f->bit_depth_luma_minus8 > 0;
  s->surfaces = f->min_num_decode_surfaces + g_opt.surfaces;
  s->coded_w = f->coded_width;
  s->coded_h = f->coded_height;
  s->width = static_cast<unsigned>(f->display_area.right - f->display_area.left);
  s->height = static_cast<unsigned>(f->display_area.bottom - f->display_area.top);
  s->row_bytes = s->width * (deep ? 2 : 1);
  CUVIDDECODECREATEINFO ci{};
  ci.ulWidth = f->coded_width;
  ci.ulHeight = f->coded_height;
  ci.ulNumDecodeSurfaces = static_cast<tcu_ulong>(s->surfaces);
  ci.CodecType = f->codec;
  ci.ChromaFormat = f->chroma_format;
  ci.ulCreationFlags = cudaVideoCreate_PreferCUVID;
  ci.bitDepthMinus8 = f->bit_depth_luma_minus8;
  ci.ulMaxWidth = f->coded_width;
  ci.ulMaxHeight = f->coded_height;
  ci.display_area.left = static_cast<short>(f->display_area.left);
  ci.display_area.top = static_cast<short>(f->display_area.top);
  ci.display_area.right = static_cast<short>(f->display_area.right);
  ci.display_area.bottom = static_cast<short>(f->display_area.bottom);
  ci.OutputFormat = deep ? cudaVideoSurfaceFormat_P016 : cudaVideoSurfaceFormat_NV12;
  ci.DeinterlaceMode = cudaVideoDeinterlaceMode_Weave;
  s->surface_h = (s->height + 1) & ~1u;     // the target size "should be aligned to 2"
  ci.ulTargetWidth = (s->width + 1) & ~1u;  // the display area, cropped (as FFmpeg's cuviddec)
  ci.ulTargetHeight = s->surface_h;
  ci.ulNumOutputSurfaces = static_cast<tcu_ulong>(g_opt.output_surfaces);
  ci.vidLock = s->lock;
  ck(cv->cuvidCreateDecoder(&s->dec, &ci), "cuvidCreateDecoder");
  ck(cu->cuMemAlloc(&s->buf, static_cast<size_t>(s->row_bytes) * (s->height + s->height / 2 + 1)),
     "cuMemAlloc");
  return s->surfaces;  // > 1: the parser's DPB size (its ulMaxNumDecodeSurfaces was 1)
}

int CUDAAPI on_decode(void* user, CUVIDPICPARAMS* p) {
  auto* s = static_cast<Stream*>(user);
  if (s->dec == nullptr) return 0;
  ck(cv->cuvidDecodePicture(s->dec, p), "cuvidDecodePicture");
  return 1;
}

int CUDAAPI on_display(void* user, CUVIDPARSERDISPINFO* d) {
  auto* s = static_cast<Stream*>(user);
  if (d == nullptr) return 1;  // CUVID_PKT_NOTIFY_EOS's empty picture (not asked for)
  CUVIDPROCPARAMS vp{};
  vp.progressive_frame = d->progressive_frame;
  vp.top_field_first = d->top_field_first;
  vp.unpaired_field = d->repeat_first_field < 0;
  vp.output_stream = s->cs;  // the post-processing, then our copy, in order on this stream
  unsigned long long src = 0;
  unsigned int pitch = 0;
  ck(cv->cuvidMapVideoFrame(s->dec, d->picture_index, &src, &pitch, &vp), "cuvidMapVideoFrame");
  CUDA_MEMCPY2D c{};
  c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  c.srcDevice = src;
  c.srcPitch = pitch;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = s->buf;
  c.dstPitch = s->row_bytes;
  c.WidthInBytes = s->row_bytes;
  c.Height = s->height;
  ck(cu->cuMemcpy2DAsync(&c, s->cs), "cuMemcpy2DAsync (Y)");
  c.srcY = s->surface_h;  // UV follows the target height's rows of Y in the mapped surface
  c.dstDevice = s->buf + static_cast<CUdeviceptr>(s->row_bytes) * s->height;
  c.Height = (s->height + 1) / 2;
  ck(cu->cuMemcpy2DAsync(&c, s->cs), "cuMemcpy2DAsync (UV)");
  ck(cu->cuStreamSynchronize(s->cs), "cuStreamSynchronize");  // before the unmap: no race
  ck(cv->cuvidUnmapVideoFrame(s->dec, src), "cuvidUnmapVideoFrame");
  s->frames.fetch_add(1, std::memory_order_relaxed);
  return 1;
}

void stream_open(Stream& s) {
  s.src = std::make_unique<Source>(*s.clip);
  if (g_opt.demux_only) return;
  if (g_opt.lock == "stream") ck(cv->cuvidCtxLockCreate(&s.lock, g_ctx), "cuvidCtxLockCreate");
  if (g_opt.lock == "shared") s.lock = g_shared_lock;
  CUVIDPARSERPARAMS pp{};
  pp.CodecType = s.clip->codec;
  pp.ulMaxNumDecodeSurfaces = 1;  // the sequence callback returns the real number
  pp.ulErrorThreshold = 0;
  pp.ulMaxDisplayDelay = static_cast<unsigned>(g_opt.display_delay);
  pp.pUserData = &s;
  pp.pfnSequenceCallback = &on_sequence;
  pp.pfnDecodePicture = &on_decode;
  pp.pfnDisplayPicture = &on_display;
  ck(cv->cuvidCreateVideoParser(&s.parser, &pp), "cuvidCreateVideoParser");
}

void stream_close(Stream& s) {
  if (s.parser != nullptr) cv->cuvidDestroyVideoParser(s.parser);
  if (s.dec != nullptr) cv->cuvidDestroyDecoder(s.dec);
  if (s.buf != 0) cu->cuMemFree(s.buf);
  if (s.lock != nullptr && s.lock != g_shared_lock) cv->cuvidCtxLockDestroy(s.lock);
  s.loops = s.src->loops();
  s.src.reset();
}

// One packet into the stream's parser; at the end of the file, CUVID_PKT_ENDOFSTREAM (the parser
// hands out every picture still queued for display, and takes the next loop as a new stream, as
// NVIDIA's AppDecMultiFiles sample does with one parser over several files), then back to the
// start.
void feed(Stream& s) {
  const uint8_t* data = nullptr;
  size_t size = 0;
  while (!s.src->next(&data, &size)) {
    if (s.at_loop_start) die(1, "%s: no video packets", s.clip->path.c_str());
    if (!g_opt.demux_only) {
      CUVIDSOURCEDATAPACKET eos{};
      eos.flags = CUVID_PKT_ENDOFSTREAM;
      ck(cv->cuvidParseVideoData(s.parser, &eos), "cuvidParseVideoData (end of stream)");
    }
    s.src->rewind();
    s.at_loop_start = true;
  }
  bool sps = false, key = false;
  const bool hevc = s.clip->codec == cudaVideoCodec_HEVC;
  if (g_opt.demux_only || s.at_loop_start) {
    if (!scan_annexb(data, size, hevc, &sps, &key))
      die(1, "%s: a packet after the %s filter is not Annex B", s.clip->path.c_str(), s.clip->bsf);
    if (s.at_loop_start && !(sps && key))
      die(1, "%s: loop %llu does not start with a keyframe carrying its parameter sets",
          s.clip->path.c_str(), static_cast<unsigned long long>(s.src->loops()));
  }
  s.at_loop_start = false;
  ++s.fed;
  if (g_opt.demux_only) {
    s.frames.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  CUVIDSOURCEDATAPACKET p{};
  p.flags = CUVID_PKT_ENDOFPICTURE;  // a demuxed packet is one whole access unit
  p.payload = data;
  p.payload_size = static_cast<tcu_ulong>(size);
  ck(cv->cuvidParseVideoData(s.parser, &p), "cuvidParseVideoData");
}

// ---------------------------------------------------------------- one run: N streams on T threads
struct Result {
  std::string row;
  int streams = 0, threads = 0;
  bool ffmpeg = false, ok = true;
  uint64_t frames = 0;
  double seconds = 0, cpu_s = 0, fps = 0, min_fps = 0, median_fps = 0, max_lag_ms = 0;
  uint64_t loops = 0;
  double cpu_us_per_frame() const { return frames ? cpu_s * 1e6 / frames : 0.0; }
  double core_pct_per_stream() const {
    return seconds > 0 && streams > 0 ? 100.0 * cpu_s / seconds / streams : 0.0;
  }
};

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Gate {  // workers say ready (pipelines full); main says go, then stop
  std::mutex m;
  std::condition_variable c;
  int streams = 0;  // in this run (a --sweep row's)
  int ready = 0;
  bool go = false;
  Clock::time_point t0;
  std::atomic<bool> stop{false};
};

void worker(std::vector<Stream*> mine, Gate& gate) {
  CUstream cs = nullptr;
  if (!g_opt.demux_only) {
    ck(cu->cuCtxPushCurrent(g_ctx), "cuCtxPushCurrent");
    ck(cu->cuStreamCreate(&cs, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  }
  for (Stream* s : mine) {
    s->cs = cs;
    stream_open(*s);
  }
  // Warm up: every stream fed until its first frame (its decoder created, its pipeline full).
  if (!g_opt.demux_only) {
    for (bool all = false; !all && !gate.stop.load();) {
      all = true;
      for (Stream* s : mine) {
        if (s->frames.load(std::memory_order_relaxed) > 0) continue;
        all = false;
        if (s->fed > 1000)
          die(1, "stream %d (%s): no frame after %llu packets", s->index, s->clip->path.c_str(),
              static_cast<unsigned long long>(s->fed));
        feed(*s);
      }
    }
  }
  Clock::time_point t0;
  {
    std::unique_lock<std::mutex> l(gate.m);
    ++gate.ready;
    gate.c.notify_all();
    gate.c.wait(l, [&] { return gate.go; });
    t0 = gate.t0;
  }
  const double period = g_opt.paced > 0 ? 1.0 / g_opt.paced : 0;
  const int n = gate.streams;
  for (Stream* s : mine) {
    s->fed = 0;
    s->due = period * s->index / n;  // cameras are not in phase: spread over one period
  }
  const auto since = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  size_t live = mine.size();
  while (!gate.stop.load(std::memory_order_relaxed) && live > 0) {
    if (period == 0) {
      for (Stream* s : mine) {
        if (s->done) continue;
        feed(*s);
        if (g_opt.packets > 0 && static_cast<long>(s->fed) >= g_opt.packets) {
          s->done = true;
          --live;
        }
      }
      continue;
    }
    // Paced: each stream due now gets one packet this turn (a late one is fed again next turn
    // until it has caught up: late frames are caught up, not lost); none due: sleep until the
    // first one is.
    double now = since(), first = 1e300;
    bool any = false;
    for (Stream* s : mine) {
      if (s->done) continue;
      if (s->due <= now) {
        s->max_lag = std::max(s->max_lag, now - s->due);
        feed(*s);
        s->due += period;
        any = true;
        if (g_opt.packets > 0 && static_cast<long>(s->fed) >= g_opt.packets) {
          s->done = true;
          --live;
        }
      }
      first = std::min(first, s->due);
    }
    if (!any && first < 1e300)
      std::this_thread::sleep_until(
          t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(first)));
  }
  for (Stream* s : mine) stream_close(*s);
  if (cs != nullptr) {
    cu->cuStreamDestroy(cs);
    CUcontext popped = nullptr;
    cu->cuCtxPopCurrent(&popped);
  }
}

Result run_direct(int streams, int threads) {
  Result r;
  r.streams = streams;
  r.threads = threads;
  r.row = std::to_string(streams) + "x" + std::to_string(threads);
  std::vector<std::unique_ptr<Stream>> all;
  for (int i = 0; i < streams; ++i) {
    all.push_back(std::make_unique<Stream>());
    all.back()->index = i;
    all.back()->clip = &g_clips[static_cast<size_t>(i) % g_clips.size()];
  }
  Gate gate;
  gate.streams = streams;
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w) {
    std::vector<Stream*> mine;
    for (int i = w; i < streams; i += threads) mine.push_back(all[static_cast<size_t>(i)].get());
    pool.emplace_back(worker, std::move(mine), std::ref(gate));
  }
  std::vector<uint64_t> c0(static_cast<size_t>(streams)), c1(c0.size());
  double cpu0 = 0;
  Clock::time_point t0;
  {
    std::unique_lock<std::mutex> l(gate.m);
    gate.c.wait(l, [&] { return gate.ready == threads; });
    for (size_t i = 0; i < c0.size(); ++i) c0[i] = all[i]->frames.load();
    cpu0 = cpu_seconds();
    t0 = gate.t0 = Clock::now();
    gate.go = true;
  }
  gate.c.notify_all();
  if (g_opt.packets > 0) {
    for (auto& t : pool) t.join();
  } else {
    std::this_thread::sleep_for(std::chrono::duration<double>(g_opt.seconds));  // the window
  }
  const double cpu1 = cpu_seconds();
  const auto t1 = Clock::now();
  for (size_t i = 0; i < c1.size(); ++i) c1[i] = all[i]->frames.load();
  gate.stop = true;
  for (auto& t : pool)
    if (t.joinable()) t.join();
  r.seconds = std::chrono::duration<double>(t1 - t0).count();
  r.cpu_s = cpu1 - cpu0;
  std::vector<double> per(c0.size());
  for (size_t i = 0; i < c0.size(); ++i) {
    r.frames += c1[i] - c0[i];
    per[i] = (c1[i] - c0[i]) / r.seconds;
    r.max_lag_ms = std::max(r.max_lag_ms, all[i]->max_lag * 1e3);
  }
  std::sort(per.begin(), per.end());
  r.min_fps = per.front();
  r.median_fps = per[per.size() / 2];
  r.fps = r.frames / r.seconds;
  for (auto& s : all) r.loops += s->loops;
  return r;
}

// FFmpeg's *_cuvid decoder, through bench/nvdec_ceiling, as a child process.
Result run_ffmpeg(int streams) {
  Result r;
  r.streams = r.threads = streams;
  r.ffmpeg = true;
  r.row = "ff" + std::to_string(streams);
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", g_opt.seconds);
  std::vector<std::string> args = {
      g_opt.ffmpeg, "--decoder", "cuvid", "--seconds", secs, "--streams", std::to_string(streams)};
  for (const Clip& c : g_clips) args.push_back(c.path);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) die(1, "pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);  // its complaints, to quote if it fails
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid = 0;
  std::fflush(stdout);
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  std::string out;
  if (rc == 0) {
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
      out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  if (rc == 0) waitpid(pid, &status, 0);
  const size_t at = out.find("nvdec_ceiling ");
  unsigned long long frames = 0;
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || at == std::string::npos ||
      std::sscanf(out.c_str() + at,
                  "nvdec_ceiling decoder=%*s streams=%*d frames=%llu seconds=%lf "
                  "cpu_us_per_frame=%*f fps=%lf",
                  &frames, &r.seconds, &r.fps) != 3) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    const char* why = rc != 0                                          ? std::strerror(rc)
                      : !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? "its exit status is not 0"
                                                                       : "no result line";
    std::fprintf(stderr, "nvcuvid_ceiling: row %s: %s failed (%s); its output:\n%s\n",
                 r.row.c_str(), g_opt.ffmpeg.c_str(), why, out.c_str());
    r.ok = false;
    return r;
  }
  const size_t eol = out.find('\n', at);
  std::printf("%s\n", out.substr(at, eol == std::string::npos ? eol : eol - at).c_str());
  std::fflush(stdout);
  const char* cpu = std::strstr(out.c_str() + at, "cpu_us_per_frame=");
  r.frames = frames;
  r.cpu_s = cpu ? std::atof(cpu + 17) * frames / 1e6 : 0;
  r.min_fps = r.median_fps = -1;  // nvdec_ceiling does not say
  return r;
}

void print_direct(const Result& r) {
  std::printf(
      "nvcuvid_ceiling decoder=%s streams=%d threads=%d frames=%llu seconds=%.2f "
      "cpu_us_per_frame=%.1f fps=%.1f per_stream_min=%.2f per_stream_median=%.2f "
      "core_pct_per_stream=%.3f paced=%g max_lag_ms=%.1f loops=%llu\n",
      g_opt.demux_only ? "demux-only" : "direct", r.streams, r.threads,
      static_cast<unsigned long long>(r.frames), r.seconds, r.cpu_us_per_frame(), r.fps, r.min_fps,
      r.median_fps, r.core_pct_per_stream(), g_opt.paced, r.max_lag_ms,
      static_cast<unsigned long long>(r.loops));
  std::fflush(stdout);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ---------------------------------------------------------------- arguments
struct Row {
  int streams, threads;
  bool ffmpeg;
};

long parse_int(const std::string& arg, const char* v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi)
    die(2, "%s: '%s' is not a whole number from %ld to %ld", arg.c_str(), v, lo, hi);
  return x;
}

double parse_num(const std::string& arg, const char* v, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(v, &end);
  if (errno != 0 || end == v || *end != '\0' || !(x >= lo && x <= hi))
    die(2, "%s: '%s' is not a number from %g to %g", arg.c_str(), v, lo, hi);
  return x;
}

std::vector<Row> parse_sweep(const std::string& spec) {
  std::vector<Row> rows;
  size_t at = 0;
  while (at <= spec.size()) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string item = spec.substr(at, comma - at);
    at = comma + 1;
    Row row{0, 0, false};
    char tail = 0;
    if (item.rfind("ff", 0) == 0 && std::sscanf(item.c_str() + 2, "%d%c", &row.streams, &tail) == 1)
      row.ffmpeg = true;
    else if (std::sscanf(item.c_str(), "%dx%d%c", &row.streams, &row.threads, &tail) != 2)
      die(2, "--sweep: '%s' is not STREAMSxTHREADS (e.g. 128x7) or ffSTREAMS (e.g. ff64)",
          item.c_str());
    if (row.streams < 1 || row.streams > 4096 ||
        (!row.ffmpeg && (row.threads < 1 || row.threads > row.streams)))
      die(2, "--sweep: '%s': streams 1..4096, threads 1..streams", item.c_str());
    if (row.ffmpeg && g_opt.ffmpeg.empty())
      die(2, "--sweep: row '%s' needs --ffmpeg PATH (bench/nvdec_ceiling)", item.c_str());
    rows.push_back(row);
  }
  return rows;
}

void usage_exit(const char* why) {
  std::fprintf(stderr,
               "nvcuvid_ceiling: %s\n"
               "usage: nvcuvid_ceiling [--seconds S] [--streams N] [--threads T] [--paced FPS]\n"
               "         [--display-delay D] [--surfaces K] [--output-surfaces M]\n"
               "         [--sched blocking|spin|yield|auto]\n"
               "         [--lock stream|shared|none] [--preload] [--sweep NxT,...,ffN,...]\n"
               "         [--repeat R] [--ffmpeg PATH] [--demux-only] [--packets P] FILE...\n",
               why);
  std::exit(2);
}

void parse_args(int argc, char** argv) {
  Options& o = g_opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) die(2, "%s needs a value", a.c_str());
      return argv[++i];
    };
    if (a == "--seconds")
      o.seconds = parse_num(a, value(), 0.1, 3600);
    else if (a == "--streams")
      o.streams = static_cast<int>(parse_int(a, value(), 1, 4096));
    else if (a == "--threads")
      o.threads = static_cast<int>(parse_int(a, value(), 1, 4096));
    else if (a == "--paced")
      o.paced = parse_num(a, value(), 0, 1000);
    else if (a == "--display-delay")
      o.display_delay = static_cast<int>(parse_int(a, value(), 0, 16));
    else if (a == "--surfaces")
      o.surfaces = static_cast<int>(parse_int(a, value(), 0, 32));
    else if (a == "--output-surfaces")
      o.output_surfaces = static_cast<int>(parse_int(a, value(), 1, 8));
    else if (a == "--sched") {
      o.sched = value();
      if (o.sched != "auto" && o.sched != "spin" && o.sched != "yield" && o.sched != "blocking")
        die(2, "--sched: '%s' is not auto, spin, yield or blocking", o.sched.c_str());
    } else if (a == "--lock") {
      o.lock = value();
      if (o.lock != "stream" && o.lock != "shared" && o.lock != "none")
        die(2, "--lock: '%s' is not stream, shared or none", o.lock.c_str());
    } else if (a == "--preload")
      o.preload = true;
    else if (a == "--demux-only")
      o.demux_only = true;
    else if (a == "--packets")
      o.packets = parse_int(a, value(), 1, 1L << 40);
    else if (a == "--repeat")
      o.repeat = static_cast<int>(parse_int(a, value(), 1, 100));
    else if (a == "--sweep")
      o.sweep = value();
    else if (a == "--ffmpeg")
      o.ffmpeg = value();
    else if (a == "-h" || a == "--help")
      usage_exit("the decode-only ceiling of NVIDIA's parser and decoder, called directly");
    else if (a.rfind("-", 0) == 0 && a.size() > 1)
      die(2, "unknown option %s", a.c_str());
    else
      o.files.push_back(a);
  }
  if (o.files.empty()) usage_exit("no FILE given");
  if (o.threads == 0) o.threads = o.streams;
  if (o.threads > o.streams)
    die(2, "--threads %d is more than --streams %d (a thread has at least one stream)", o.threads,
        o.streams);
  if (!o.ffmpeg.empty() && access(o.ffmpeg.c_str(), X_OK) != 0)
    die(2, "--ffmpeg: %s is not an executable (bench/nvdec_ceiling)", o.ffmpeg.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  parse_args(argc, argv);
  std::vector<Row> rows = g_opt.sweep.empty()
                              ? std::vector<Row>{{g_opt.streams, g_opt.threads, false}}
                              : parse_sweep(g_opt.sweep);
  av_log_set_level(AV_LOG_ERROR);
  g_clips.resize(g_opt.files.size());
  for (size_t i = 0; i < g_clips.size(); ++i) g_clips[i].path = g_opt.files[i];
  for (Clip& c : g_clips) probe(c);
  for (const Clip& c : g_clips)
    if (c.codec != g_clips[0].codec)
      die(2, "all files must have one codec (%s is %s, %s is %s)", g_clips[0].path.c_str(),
          avcodec_get_name(g_clips[0].codec_id), c.path.c_str(), avcodec_get_name(c.codec_id));
  const bool any_direct =
      std::any_of(rows.begin(), rows.end(), [](const Row& r) { return !r.ffmpeg; });
  std::string gpu = "no GPU used";
  if (!g_opt.demux_only && any_direct)
    gpu = gpu_setup(g_clips[0].codec, avcodec_get_name(g_clips[0].codec_id));
  std::printf(
      "# nvcuvid_ceiling: %s; sched=%s lock=%s display_delay=%d surfaces=+%d paced=%g "
      "preload=%d seconds=%g repeat=%d\n",
      gpu.c_str(), g_opt.sched.c_str(), g_opt.lock.c_str(), g_opt.display_delay, g_opt.surfaces,
      g_opt.paced, g_opt.preload ? 1 : 0, g_opt.seconds, g_opt.repeat);
  std::fflush(stdout);
  std::vector<std::vector<Result>> results(rows.size());
  for (int rep = 0; rep < g_opt.repeat; ++rep) {
    for (size_t k = 0; k < rows.size(); ++k) {  // interleaved: A,B,C,A,B,C,...
      const Row& row = rows[k];
      Result r = row.ffmpeg ? run_ffmpeg(row.streams) : run_direct(row.streams, row.threads);
      if (!row.ffmpeg) print_direct(r);
      results[k].push_back(r);
    }
  }
  int failed = 0;
  for (const auto& rs : results)
    for (const Result& r : rs) failed += r.ok ? 0 : 1;
  if (rows.size() == 1 && g_opt.repeat == 1) return failed ? 1 : 0;
  // Medians per row, and ratios to the row's reference: FFmpeg's row with the same streams
  // (ffN) where there is one, else the one-thread-per-stream row (NxN).
  struct Median {
    double fps = 0, min_fps = -1, cpu_us = 0, core_pct = 0, lag_ms = 0;
    int ok = 0;
  };
  std::vector<Median> med(rows.size());
  for (size_t k = 0; k < rows.size(); ++k) {
    std::vector<double> fps, mn, cpu, core, lag;
    for (const Result& r : results[k]) {
      if (!r.ok) continue;
      ++med[k].ok;
      fps.push_back(r.fps);
      mn.push_back(r.min_fps);
      cpu.push_back(r.cpu_us_per_frame());
      core.push_back(r.core_pct_per_stream());
      lag.push_back(r.max_lag_ms);
    }
    if (med[k].ok == 0) continue;
    med[k] = {median(fps), median(mn), median(cpu), median(core), median(lag), med[k].ok};
  }
  std::printf("# medians of %d interleaved run(s) per row; ratios to ffN, else NxN, same N\n",
              g_opt.repeat);
  std::printf("# %-8s %7s %7s %9s %9s %9s %10s %9s %9s %9s %7s\n", "row", "streams", "threads",
              "fps", "min/strm", "cpu_us/f", "core%/strm", "lag_ms", "fps_ratio", "cpu_ratio",
              "ok_runs");
  for (size_t k = 0; k < rows.size(); ++k) {
    const Row& row = rows[k];
    const Median& m = med[k];
    const Median* ref = nullptr;
    for (size_t j = 0; j < rows.size() && ref == nullptr; ++j)
      if (j != k && med[j].ok && rows[j].streams == row.streams && rows[j].ffmpeg) ref = &med[j];
    for (size_t j = 0; j < rows.size() && ref == nullptr && !row.ffmpeg; ++j)
      if (j != k && med[j].ok && rows[j].streams == row.streams && !rows[j].ffmpeg &&
          rows[j].threads == rows[j].streams)
        ref = &med[j];
    char fr[16] = "-", cr[16] = "-", mn[16] = "-";
    if (ref != nullptr && m.ok && ref->fps > 0 && ref->cpu_us > 0) {
      std::snprintf(fr, sizeof fr, "%.2f", m.fps / ref->fps);
      std::snprintf(cr, sizeof cr, "%.2f", m.cpu_us / ref->cpu_us);
    }
    if (m.min_fps >= 0) std::snprintf(mn, sizeof mn, "%.2f", m.min_fps);
    const std::string label = row.ffmpeg
                                  ? "ff" + std::to_string(row.streams)
                                  : std::to_string(row.streams) + "x" + std::to_string(row.threads);
    const std::string threads = row.ffmpeg ? "1/strm" : std::to_string(row.threads);
    std::printf("# %-8s %7d %7s %9.1f %9s %9.1f %10.3f %9.1f %9s %9s %7d\n", label.c_str(),
                row.streams, threads.c_str(), m.fps, mn, m.cpu_us, m.core_pct, m.lag_ms, fr, cr,
                m.ok);
  }
  if (failed) std::printf("# %d run(s) failed: see their errors above\n", failed);
  return failed ? 1 : 0;
}
