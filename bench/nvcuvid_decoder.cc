// nvcuvid_ceiling's GPU side (nvcuvid_decoder.h): NVIDIA's API loaded through FFmpeg's loader, and
// one stream's parser + decoder.
#include "nvcuvid_decoder.h"

#include "nvcuvid_create_info.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace nvcuvid {

// nvcuvid_shared.h's tables, filled by gpu_setup.
CudaFunctions* cu = nullptr;
CuvidFunctions* cv = nullptr;
CUcontext g_ctx = nullptr;
CUvideoctxlock g_shared_lock = nullptr;

namespace {
char g_loader_msg[256];  // the loader's complaint (which library or symbol), for our one line
}  // namespace

void loader_log(void*, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(g_loader_msg, sizeof g_loader_msg, fmt, ap);
  va_end(ap);
  const size_t n = std::strlen(g_loader_msg);
  if (n > 0 && g_loader_msg[n - 1] == '\n') g_loader_msg[n - 1] = '\0';
}

namespace {

// The scheduling flags of cuCtxCreate / cuDevicePrimaryCtxSetFlags (dynlink_cuda.h has only
// CU_CTX_SCHED_BLOCKING_SYNC).
constexpr unsigned kSchedAuto = 0, kSchedSpin = 1, kSchedYield = 2, kSchedBlocking = 4;

}  // namespace

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

namespace {

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
  CUVIDDECODECREATEINFO ci = cfcommon::nvcuvid_create_info(
      *f, s->surfaces, static_cast<unsigned>(g_opt.output_surfaces), s->lock);
  s->surface_h = static_cast<unsigned>(ci.ulTargetHeight);  // luma rows: chroma starts there
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

}  // namespace

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

}  // namespace nvcuvid
