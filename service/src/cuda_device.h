// The service's use of a CUDA device: whether it is usable, and the primary context's flags.
//
// Decoded frames (FFmpeg's CUDA hwaccel) and the rings share one context, the device's primary
// context. FFmpeg takes it only with CU_CTX_SCHED_BLOCKING_SYNC and refuses it when it is already
// active with other flags, which is what cudart's default flags would do to a decoder starting
// after a ring (a testsrc camera on CUDA). So before anything activates the context the service
// sets those flags itself; it also lets camera threads sleep, not spin, while a copy completes.
//
// An experiment (issue 16): CUFRAMES_CUDA_SCHED=spin|yield|auto sets the primary context to that
// scheduling instead (blocking, the default, keeps FFmpeg's flags). FFmpeg's primary_ctx=1 would
// then refuse the context (or set it back), so the decoders get the primary context handed over
// (cuda_primary_context) instead of asking FFmpeg to retain it.
#pragma once

namespace cfsvc {

// The CU_CTX_SCHED_* flags the service gives each primary context (CUFRAMES_CUDA_SCHED), and
// whether they are FFmpeg's own (blocking sync), under which FFmpeg may retain it itself.
unsigned cuda_sched_flags();
bool cuda_sched_is_ffmpegs();
// The device's primary context (a CUcontext), retained once for the process; null if it cannot
// be. After cuda_device_usable(device).
void* cuda_primary_context(int device);

// True when CUDA device `device` exists and its driver answers; the first call for a device sets
// its primary context flags (above). Thread-safe. Always false in a build without CUDA.
bool cuda_device_usable(int device);

}  // namespace cfsvc
