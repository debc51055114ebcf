#include "ffmpeg_cuda.h"

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
extern "C" {
#include <libavutil/hwcontext.h>
#include <libavutil/hwcontext_cuda.h>
}
#endif

#include <string_view>
#include <utility>

#include "cuda_device.h"

namespace cfsvc {
namespace {

#ifdef CUFRAMES_WITH_CUDA
std::string av_err(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

enum AVPixelFormat pick_cuda(AVCodecContext*, const enum AVPixelFormat* fmts) {
  for (const enum AVPixelFormat* f = fmts; *f != AV_PIX_FMT_NONE; ++f) {
    if (*f == AV_PIX_FMT_CUDA) return *f;
  }
  return fmts[0];  // NVDEC cannot take this stream: the decoder's software format
}

// A CUDA device context on the device's primary context; null with *error if none.
AVBufferRef* primary_device_context(int device, std::string* error) {
  AVBufferRef* hw = nullptr;
  int rc = 0;
  if (cuda_sched_is_ffmpegs()) {  // FFmpeg retains it (and checks its flags)
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "primary_ctx", "1", 0);
    const std::string dev = std::to_string(device);
    rc = av_hwdevice_ctx_create(&hw, AV_HWDEVICE_TYPE_CUDA, dev.c_str(), opts, 0);
    av_dict_free(&opts);
  } else {  // CUFRAMES_CUDA_SCHED (cuda_device.h): handed over, with the flags it has
    void* primary = cuda_primary_context(device);
    hw = primary != nullptr ? av_hwdevice_ctx_alloc(AV_HWDEVICE_TYPE_CUDA) : nullptr;
    if (hw == nullptr) {
      *error = "cannot retain the CUDA primary context";
      return nullptr;
    }
    auto* d = reinterpret_cast<AVHWDeviceContext*>(hw->data);
    static_cast<AVCUDADeviceContext*>(d->hwctx)->cuda_ctx = static_cast<CUcontext>(primary);
    rc = av_hwdevice_ctx_init(hw);
    if (rc < 0) av_buffer_unref(&hw);
  }
  if (rc < 0) {
    *error = "cannot create a CUDA device context: " + av_err(rc);
    return nullptr;
  }
  return hw;
}
#endif

}  // namespace

bool setup_cuda_decoder(const AVCodec* dec, AVCodecContext* ctx, int device, void** stream,
                        std::string* error) {
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
    *error = std::string("this FFmpeg has no CUDA hwaccel for ") + avcodec_get_name(dec->id);
    return false;
  }
  AVBufferRef* hw = primary_device_context(device, error);
  if (hw == nullptr) return false;
  if (*stream == nullptr) {
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(device);
    cudaStream_t s = nullptr;
    const cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaSetDevice(prev);
    if (e != cudaSuccess) {
      *error = std::string("cudaStreamCreate: ") + cudaGetErrorString(e);
      av_buffer_unref(&hw);
      return false;
    }
    *stream = s;
  }
  auto* dctx = reinterpret_cast<AVHWDeviceContext*>(hw->data);
  // cuvid: the legacy stream, where cuviddec.c maps (ffmpeg_cuda.h); nvdec maps on this one.
  static_cast<AVCUDADeviceContext*>(dctx->hwctx)->stream =
      is_cuvid(dec) ? nullptr : static_cast<cudaStream_t>(*stream);
  ctx->hw_device_ctx = hw;  // ours goes to the codec context
  ctx->get_format = &pick_cuda;
  ctx->extra_hw_frames = 2;
  return true;
#else
  (void)dec;
  (void)ctx;
  (void)device;
  (void)stream;
  *error = "built without CUDA";
  return false;
#endif
}

bool is_cuvid(const AVCodec* dec) {
  return dec != nullptr && dec->wrapper_name != nullptr &&
         std::string_view(dec->wrapper_name) == "cuvid";
}

LegacyStreamFence::~LegacyStreamFence() {
#ifdef CUFRAMES_WITH_CUDA
  if (event_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
#endif
}

LegacyStreamFence::LegacyStreamFence(LegacyStreamFence&& other) noexcept
    : event_(std::exchange(other.event_, nullptr)) {}

LegacyStreamFence& LegacyStreamFence::operator=(LegacyStreamFence&& other) noexcept {
  if (this != &other) {
    LegacyStreamFence gone(std::move(*this));
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

bool LegacyStreamFence::wait(int device, void* stream, std::string* error) {
#ifdef CUFRAMES_WITH_CUDA
  int prev = device;
  cudaGetDevice(&prev);
  cudaError_t e = prev == device ? cudaSuccess : cudaSetDevice(device);
  struct Restore {
    int prev, device;
    ~Restore() {
      if (prev != device) cudaSetDevice(prev);
    }
  } restore{prev, device};
  if (e == cudaSuccess && event_ == nullptr) {
    cudaEvent_t ev = nullptr;
    e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (e == cudaSuccess) event_ = ev;
  }
  auto* ev = static_cast<cudaEvent_t>(event_);
  if (e == cudaSuccess) e = cudaEventRecord(ev, cudaStreamLegacy);
  if (e == cudaSuccess) e = cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), ev, 0);
  if (e != cudaSuccess) {
    *error = std::string("ordering after the decoder's stream: ") + cudaGetErrorString(e);
    return false;
  }
  return true;
#else
  (void)device;
  (void)stream;
  *error = "built without CUDA";
  return false;
#endif
}

}  // namespace cfsvc
