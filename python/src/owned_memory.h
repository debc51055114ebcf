// Memory the Python module allocates and exports through DLPack itself (preprocessed batches,
// compact copies of frame planes): host or device, freed when the last owner goes, in stream
// order on the GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common.h"
#include "dlpack.h"

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cfpy {

// DLPack's "legacy default stream" (cudaStreamLegacy): what stream 0 means to us.
constexpr uintptr_t kLegacyStream = 1;

// A CUDA stream as __dlpack__(stream=) and the CUDA calls take it: 0 (the legacy default stream,
// torch's default) is passed as kLegacyStream, as torch.from_dlpack passes it.
inline uintptr_t dlpack_stream_value(uintptr_t s) {
  return s == 0 ? kLegacyStream : s;
}

#ifdef CUFRAMES_WITH_CUDA
// "what: <CUDA's error string> (<its name>)"; clears CUDA's last error.
std::string cuda_message(cudaError_t e, const char* what);

// Makes device current for the scope (restores the caller's).
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    if (cudaGetDevice(&prev_) == cudaSuccess && prev_ != device) {
      ok_ = cudaSetDevice(device) == cudaSuccess;
      switched_ = ok_;
    }
  }
  ~DeviceScope() {
    if (switched_) (void)cudaSetDevice(prev_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  bool ok() const { return ok_; }

 private:
  int prev_ = -1;
  bool ok_ = true;
  bool switched_ = false;
};
#endif

// Owned by the object that made it and by every DLPack tensor exported from it; freed when the
// last of them goes (possibly on a consumer's thread, without the GIL: no Python here). Device
// memory comes from a CUDA memory pool of cuframes' own per device and is freed in stream order
// on the stream it was written on, after the work queued so far on every stream it was
// exported to (streams()).
class OwnedMemory {
 public:
  // Raise CuframesOutOfMemory (what: who allocates, for the message) or CuframesDeviceLost.
  static std::shared_ptr<OwnedMemory> host(size_t bytes, const char* what);
#ifdef CUFRAMES_WITH_CUDA
  static std::shared_ptr<OwnedMemory> device(size_t bytes, int device, uintptr_t stream,
                                             const char* what);
#endif
  ~OwnedMemory();
  OwnedMemory(const OwnedMemory&) = delete;
  OwnedMemory& operator=(const OwnedMemory&) = delete;

  void* data() const {
    return ptr_;
  }
  int device() const {
    return device_;
  }
  StreamSet& streams() {
    return streams_;
  }

 private:
  OwnedMemory() = default;
  void* ptr_ = nullptr;
  int device_ = -1;  // -1: host memory
  StreamSet streams_;
};

#ifdef CUFRAMES_WITH_CUDA
// Makes stream `consumer` wait for the work queued so far on `producer` on device, through one
// cached CUDA event per device (no event made per call). Any thread, no GIL needed.
cudaError_t stream_wait(uintptr_t consumer, uintptr_t producer, int device);
#endif

// Makes stream `consumer` wait for the work queued so far on `producer` (a CUDA event) on
// device; raises CuframesDeviceLost (what: for the message). A no-op without CUDA.
void order_after(uintptr_t consumer, uintptr_t producer, int device, const char* what);

}  // namespace cfpy
