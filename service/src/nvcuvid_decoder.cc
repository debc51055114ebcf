// One camera's NVIDIA parser + decoder (nvcuvid_decoder.h), as bench/nvcuvid_decoder.cc proved
// them on the GPU, with the service's picture hand-over instead of the bench's copy.
#include "nvcuvid_decoder.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace cfsvc {
namespace {
// The loader's complaint ("Cannot load libcuda.so.1"), kept for available()'s reason. Written only
// while the tables load, once, under the function-local static's initialisation.
char g_loader_msg[256];
void loader_log(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(g_loader_msg, sizeof g_loader_msg, fmt, ap);
  va_end(ap);
  const size_t n = std::strlen(g_loader_msg);
  if (n > 0 && g_loader_msg[n - 1] == '\n') g_loader_msg[n - 1] = '\0';
}
}  // namespace
}  // namespace cfsvc

#define FFNV_LOG_FUNC(logctx, msg, ...) cfsvc::loader_log((msg), __VA_ARGS__)
#define FFNV_DEBUG_LOG_FUNC(logctx, msg, ...)
#include <ffnvcodec/dynlink_loader.h>

#include "nvcuvid_create_info.h"

namespace cfsvc {
namespace {

constexpr unsigned kDisplayDelay = 4;    // FFmpeg's cuviddec and the bench's default
constexpr int kExtraSurfaces = 4;        // decode surfaces beyond the sequence's minimum
constexpr unsigned kOutputSurfaces = 2;  // mapped pictures at once

struct Api {
  CudaFunctions* cu = nullptr;
  CuvidFunctions* cv = nullptr;
  std::string why;  // empty: loaded and initialised
};

const Api& api() {
  static const Api a = [] {
    Api r;
    const auto lib_missing = [] { return std::strstr(g_loader_msg, ".so") != nullptr; };
    if (cuda_load_functions(&r.cu, nullptr) != 0) {
      r.why = lib_missing() ? std::string("no NVIDIA driver: ") + g_loader_msg +
                                  " (libcuda.so.1 comes with the NVIDIA driver)"
                            : std::string("this libcuda.so.1 lacks a function: ") + g_loader_msg;
      return r;
    }
    if (cuvid_load_functions(&r.cv, nullptr) != 0) {
      r.why = lib_missing() ? std::string("no NVDEC: ") + g_loader_msg +
                                  " (libnvcuvid.so.1 is the driver's video library; in a "
                                  "container, the NVIDIA toolkit mounts it only with the 'video' "
                                  "capability)"
                            : std::string("this libnvcuvid.so.1 lacks a function: ") + g_loader_msg;
      return r;
    }
    const CUresult rc = r.cu->cuInit(0);
    if (rc != CUDA_SUCCESS) {
      const char* name = "?";
      r.cu->cuGetErrorName(rc, &name);
      r.why = std::string("no usable CUDA device: cuInit failed: ") + name;
    }
    return r;
  }();
  return a;
}

std::string cu_error(CUresult rc, const char* what) {
  const char* name = "?";
  api().cu->cuGetErrorName(rc, &name);
  return std::string(what) + " failed: " + name + " (" + std::to_string(static_cast<int>(rc)) + ")";
}

}  // namespace

struct NvcuvidDecoder::Impl {
  CudaFunctions* cu = nullptr;
  CuvidFunctions* cv = nullptr;
  CUdevice dev = 0;
  CUcontext ctx = nullptr;  // the primary context, retained by this decoder
  CUstream stream = nullptr;
  CUvideoctxlock lock = nullptr;
  CUvideoparser parser = nullptr;
  CUvideodecoder dec = nullptr;
  cudaVideoCodec codec = cudaVideoCodec_H264;
  CUVIDEOFORMAT format{};  // the decoder's sequence
  int surfaces = 0;
  unsigned surface_h = 0;  // rows of luma in a mapped picture: its chroma starts there
  NvcuvidPicture shape;    // size, depth and colour of every picture of the sequence
  // While a call runs: where pictures go, and how it ended.
  NvcuvidSink* sink = nullptr;
  bool halted = false;   // the sink said stop: no more pictures for this call
  std::string fatal;     // a failure in a callback
  bool refused = false;  // fatal: the sequence refused (NvcuvidDecoder::refused)

  ~Impl() {
    if (ctx == nullptr) return;
    cu->cuCtxPushCurrent(ctx);
    if (parser != nullptr) cv->cuvidDestroyVideoParser(parser);
    if (dec != nullptr) cv->cuvidDestroyDecoder(dec);
    if (lock != nullptr) cv->cuvidCtxLockDestroy(lock);
    CUcontext popped = nullptr;
    cu->cuCtxPopCurrent(&popped);
    cu->cuDevicePrimaryCtxRelease(dev);
  }

  // A new sequence: a decoder for it (the same one again when nothing changed, as at each loop).
  int sequence(CUVIDEOFORMAT* f) {
    if (dec != nullptr) {
      if (f->codec == format.codec && f->coded_width == format.coded_width &&
          f->coded_height == format.coded_height && f->chroma_format == format.chroma_format &&
          f->bit_depth_luma_minus8 == format.bit_depth_luma_minus8 &&
          f->min_num_decode_surfaces == format.min_num_decode_surfaces &&
          std::memcmp(&f->display_area, &format.display_area, sizeof f->display_area) == 0) {
        return surfaces;
      }
      cv->cuvidDestroyDecoder(dec);  // another size or depth: a decoder for it
      dec = nullptr;
    }
    if (f->chroma_format != cudaVideoChromaFormat_420) {
      refused = true;
      fatal = "nvcuvid: only 4:2:0 streams are supported (this one is " +
              std::string(f->chroma_format == cudaVideoChromaFormat_422   ? "4:2:2"
                          : f->chroma_format == cudaVideoChromaFormat_444 ? "4:4:4"
                                                                          : "monochrome") +
              ")";
      return 0;
    }
    if (cv->cuvidGetDecoderCaps != nullptr) {
      CUVIDDECODECAPS caps{};
      caps.eCodecType = f->codec;
      caps.eChromaFormat = f->chroma_format;
      caps.nBitDepthMinus8 = f->bit_depth_luma_minus8;
      if (cv->cuvidGetDecoderCaps(&caps) == CUDA_SUCCESS &&
          (!caps.bIsSupported || f->coded_width > caps.nMaxWidth ||
           f->coded_height > caps.nMaxHeight)) {
        refused = true;
        fatal = "nvcuvid: this GPU's NVDEC cannot decode " + std::to_string(f->coded_width) + "x" +
                std::to_string(f->coded_height) + " " +
                std::to_string(8 + f->bit_depth_luma_minus8) + "-bit 4:2:0 of this codec";
        return 0;
      }
    }
    const bool deep = f->bit_depth_luma_minus8 > 0;
    surfaces = f->min_num_decode_surfaces + kExtraSurfaces;
    CUVIDDECODECREATEINFO ci =  // not const: cuvidCreateDecoder takes a pointer
        cfcommon::nvcuvid_create_info(*f, surfaces, kOutputSurfaces, lock);
    surface_h = static_cast<unsigned>(ci.ulTargetHeight);  // luma rows: chroma starts there
    const CUresult rc = cv->cuvidCreateDecoder(&dec, &ci);
    if (rc != CUDA_SUCCESS) {
      dec = nullptr;
      refused = true;
      fatal = cu_error(rc, "cuvidCreateDecoder");
      return 0;
    }
    format = *f;
    shape.width = static_cast<uint32_t>(ci.ulTargetWidth);
    shape.height = surface_h;
    shape.deep = deep;
    shape.matrix_coefficients = f->video_signal_description.matrix_coefficients;
    shape.full_range = f->video_signal_description.video_full_range_flag != 0;
    return surfaces;  // > 1: the parser's DPB size (its ulMaxNumDecodeSurfaces was 1)
  }

  int decode(CUVIDPICPARAMS* p) {
    if (dec == nullptr) return 0;
    const CUresult rc = cv->cuvidDecodePicture(dec, p);
    if (rc != CUDA_SUCCESS && sink != nullptr) {
      sink->on_decode_error(cu_error(rc, "cuvidDecodePicture"));
    }
    return 1;
  }

  int display(CUVIDPARSERDISPINFO* d) {
    if (d == nullptr || halted || !fatal.empty() || dec == nullptr || sink == nullptr) return 1;
    CUVIDGETDECODESTATUS st{};
    if (cv->cuvidGetDecodeStatus(dec, d->picture_index, &st) == CUDA_SUCCESS &&
        (st.decodeStatus == cuvidDecodeStatus_Error ||
         st.decodeStatus == cuvidDecodeStatus_Error_Concealed)) {
      sink->on_decode_error(st.decodeStatus == cuvidDecodeStatus_Error
                                ? "NVDEC reported a decode error"
                                : "NVDEC concealed a decode error");
    }
    CUVIDPROCPARAMS vp{};
    vp.progressive_frame = d->progressive_frame;
    vp.top_field_first = d->top_field_first;
    vp.unpaired_field = d->repeat_first_field < 0;
    vp.output_stream = stream;  // the post-processing, then the sink's copy, in order
    unsigned long long src = 0;
    unsigned int pitch = 0;
    const CUresult rc = cv->cuvidMapVideoFrame(dec, d->picture_index, &src, &pitch, &vp);
    if (rc != CUDA_SUCCESS) {
      fatal = cu_error(rc, "cuvidMapVideoFrame");
      return 0;
    }
    NvcuvidPicture pic = shape;
    pic.y = src;
    pic.uv = src + static_cast<uint64_t>(pitch) * surface_h;
    pic.pitch = pitch;
    pic.pts = d->timestamp;
    if (!sink->on_picture(pic)) halted = true;  // copied and waited for, or given up
    const CUresult urc = cv->cuvidUnmapVideoFrame(dec, src);
    if (urc != CUDA_SUCCESS && fatal.empty()) fatal = cu_error(urc, "cuvidUnmapVideoFrame");
    return halted || !fatal.empty() ? 0 : 1;
  }

  static int CUDAAPI on_sequence(void* user, CUVIDEOFORMAT* f) {
    return static_cast<Impl*>(user)->sequence(f);
  }
  static int CUDAAPI on_decode(void* user, CUVIDPICPARAMS* p) {
    return static_cast<Impl*>(user)->decode(p);
  }
  static int CUDAAPI on_display(void* user, CUVIDPARSERDISPINFO* d) {
    return static_cast<Impl*>(user)->display(d);
  }

  // One packet to the parser, with the context current and the sink set for its callbacks.
  bool parse(CUVIDSOURCEDATAPACKET* p, NvcuvidSink& s, std::string* error) {
    sink = &s;
    halted = false;
    fatal.clear();
    refused = false;
    CUresult rc = cu->cuCtxPushCurrent(ctx);
    if (rc == CUDA_SUCCESS) {
      rc = cv->cuvidParseVideoData(parser, p);
      CUcontext popped = nullptr;
      cu->cuCtxPopCurrent(&popped);
      if (rc != CUDA_SUCCESS && fatal.empty() && !halted) {
        fatal = cu_error(rc, "cuvidParseVideoData");
      }
    } else {
      fatal = cu_error(rc, "cuCtxPushCurrent");
    }
    sink = nullptr;
    if (!fatal.empty()) {
      if (error) *error = fatal;
      return false;
    }
    return !halted;
  }
};

bool NvcuvidDecoder::available(std::string* why) {
  const Api& a = api();
  if (a.why.empty()) return true;
  if (why) *why = a.why;
  return false;
}

NvcuvidDecoder::NvcuvidDecoder() = default;
NvcuvidDecoder::~NvcuvidDecoder() = default;
NvcuvidDecoder::NvcuvidDecoder(NvcuvidDecoder&& other) noexcept = default;
NvcuvidDecoder& NvcuvidDecoder::operator=(NvcuvidDecoder&& other) noexcept = default;

bool NvcuvidDecoder::open(Codec codec, int device, void* stream, std::string* error) {
  impl_.reset();
  if (!available(error)) return false;
  auto d = std::make_unique<Impl>();
  d->cu = api().cu;
  d->cv = api().cv;
  d->codec = codec == Codec::kHevc ? cudaVideoCodec_HEVC : cudaVideoCodec_H264;
  d->stream = static_cast<CUstream>(stream);
  CUresult rc = d->cu->cuDeviceGet(&d->dev, device);
  if (rc != CUDA_SUCCESS) {
    if (error) *error = cu_error(rc, ("cuDeviceGet(" + std::to_string(device) + ")").c_str());
    return false;
  }
  CUcontext ctx = nullptr;
  rc = d->cu->cuDevicePrimaryCtxRetain(&ctx, d->dev);
  if (rc != CUDA_SUCCESS) {
    if (error) *error = cu_error(rc, "cuDevicePrimaryCtxRetain");
    return false;
  }
  d->ctx = ctx;  // from here ~Impl releases it
  rc = d->cv->cuvidCtxLockCreate(&d->lock, d->ctx);
  if (rc != CUDA_SUCCESS) {
    d->lock = nullptr;
    if (error) *error = cu_error(rc, "cuvidCtxLockCreate");
    return false;
  }
  CUVIDPARSERPARAMS pp{};
  pp.CodecType = d->codec;
  pp.ulMaxNumDecodeSurfaces = 1;  // the sequence callback returns the real number
  pp.ulErrorThreshold = 0;
  pp.ulMaxDisplayDelay = kDisplayDelay;
  pp.pUserData = d.get();
  pp.pfnSequenceCallback = &Impl::on_sequence;
  pp.pfnDecodePicture = &Impl::on_decode;
  pp.pfnDisplayPicture = &Impl::on_display;
  rc = d->cv->cuvidCreateVideoParser(&d->parser, &pp);
  if (rc != CUDA_SUCCESS) {
    d->parser = nullptr;
    if (error) *error = cu_error(rc, "cuvidCreateVideoParser");
    return false;
  }
  impl_ = std::move(d);
  return true;
}

bool NvcuvidDecoder::decode(const uint8_t* annexb, size_t size, int64_t pts, NvcuvidSink& sink,
                            std::string* error) {
  CUVIDSOURCEDATAPACKET p{};
  p.flags = CUVID_PKT_ENDOFPICTURE | CUVID_PKT_TIMESTAMP;  // a demuxed packet: one access unit
  p.payload = annexb;
  p.payload_size = static_cast<tcu_ulong>(size);
  p.timestamp = pts;
  return impl_->parse(&p, sink, error);
}

bool NvcuvidDecoder::flush(NvcuvidSink& sink, std::string* error) {
  CUVIDSOURCEDATAPACKET eos{};
  eos.flags = CUVID_PKT_ENDOFSTREAM;
  return impl_->parse(&eos, sink, error);
}

bool NvcuvidDecoder::refused() const {
  return impl_ != nullptr && impl_->refused;
}

}  // namespace cfsvc
