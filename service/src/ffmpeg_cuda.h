// An FFmpeg decoder on a CUDA device: FFmpeg's CUDA hwaccel (decoder: nvdec) or a *_cuvid
// decoder (decoder: cuvid) set up on the device's primary context, the one cudart and so the
// rings use (device pointers are valid in both), with its output on a CUDA stream of the
// camera's own (NVDEC's output copies and the copy into the ring both run on it) and
// AV_PIX_FMT_CUDA frames (extra_hw_frames 2).
//
// The *_cuvid decoders are the exception. FFmpeg's cuviddec.c (5.1) maps each picture
// (cuvidMapVideoFrame, NVDEC's post-processing into its output surface) with no output_stream,
// so on the context's legacy default stream, then copies it out on the device context's stream
// and unmaps at once. On the camera's non-blocking stream that copy raced the post-processing
// and read the output surface's previous picture (the H200: "index 8 after 8" in
// tests/gpu/test_service_nvdec.py). So a cuvid decoder's device context keeps the legacy stream
// (map and copy in order there), and the camera's stream waits for it (LegacyStreamFence)
// before the copy into the ring.
//
// FFmpeg retains the primary context itself (primary_ctx=1) under its own flags (blocking
// sync); with CUFRAMES_CUDA_SCHED set to other flags (cuda_device.h) it is handed the context,
// retained by the service, through av_hwdevice_ctx_init instead, since primary_ctx=1 refuses a
// context with other flags.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
}

#include <string>

namespace cfsvc {

// Sets ctx (not yet opened) up to decode with `dec` on CUDA device `device`. *stream: the
// camera's stream (a cudaStream_t), created here, non-blocking, when null; the caller destroys
// it. false with *error when this FFmpeg, this build or the device cannot.
bool setup_cuda_decoder(const AVCodec* dec, AVCodecContext* ctx, int device, void** stream,
                        std::string* error);

// True for FFmpeg's *_cuvid decoders (wrapper "cuvid").
bool is_cuvid(const AVCodec* dec);

// Orders a stream after the work queued so far on the legacy default stream of a device's
// primary context, without the host waiting: an event recorded there, waited for on
// the stream. Move-only; the event is made at the first wait() and destroyed with this.
class LegacyStreamFence {
 public:
  LegacyStreamFence() = default;
  ~LegacyStreamFence();
  LegacyStreamFence(LegacyStreamFence&& other) noexcept;
  LegacyStreamFence& operator=(LegacyStreamFence&& other) noexcept;
  LegacyStreamFence(const LegacyStreamFence&) = delete;
  LegacyStreamFence& operator=(const LegacyStreamFence&) = delete;

  // `stream` (a cudaStream_t on `device`) waits for the device's legacy stream; false with
  // *error on a CUDA error. The calling thread's current device is left as it was.
  bool wait(int device, void* stream, std::string* error);

 private:
  void* event_ = nullptr;  // cudaEvent_t
};

}  // namespace cfsvc
