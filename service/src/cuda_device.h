// The service's use of a CUDA device: whether it is usable, and the primary context's flags.
//
// Decoded frames (FFmpeg's CUDA hwaccel) and the rings share one context, the device's primary
// context. FFmpeg takes it only with CU_CTX_SCHED_BLOCKING_SYNC and refuses it when it is already
// active with other flags, which is what cudart's default flags would do to a decoder starting
// after a ring (a testsrc camera on CUDA). So before anything activates the context the service
// sets those flags itself; it also lets camera threads sleep, not spin, while a copy completes.
#pragma once

namespace cfsvc {

// True when CUDA device `device` exists and its driver answers; the first call for a device sets
// its primary context flags (above). Thread-safe. Always false in a build without CUDA.
bool cuda_device_usable(int device);

}  // namespace cfsvc
