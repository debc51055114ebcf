// An FFmpeg decoder on a CUDA device: FFmpeg's CUDA hwaccel (decoder: nvdec) or a *_cuvid
// decoder (decoder: cuvid) set up on the device's primary context, the one cudart and so the
// rings use (device pointers are valid in both), with its output on a CUDA stream of the
// camera's own (NVDEC's output copies and the copy into the ring both run on it) and
// AV_PIX_FMT_CUDA frames (extra_hw_frames 2).
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

}  // namespace cfsvc
