// The preprocessing kernel: one launch per batch (up to kFramesPerLaunch frames; larger batches
// take one launch per that many), one thread per output pixel, every frame of the batch in the
// grid's z dimension. The per-pixel code is preprocess_pixel.h, shared with the CPU twin;
// compiled with --fmad=false (core/CMakeLists.txt) so that both compute the same values.
#include <cuda_runtime_api.h>

#include <algorithm>

#include "preprocess.h"

namespace cuframes::detail {
namespace {

constexpr size_t kFramesPerLaunch = 64;
constexpr unsigned kBlockX = 32, kBlockY = 8, kBlockThreads = kBlockX * kBlockY;

struct Params {
  pp::Job job;
  uint32_t first;  // index of frames[0] in the batch
  pp::FrameDesc frames[kFramesPerLaunch];
};
// Kernel parameters above 4 KiB need CUDA 12.1 (driver and toolkit) and sm_70 or later.
static_assert(sizeof(Params) <= 32764, "kernel parameters are limited to 32764 bytes");

// __grid_constant__: the frames are indexed by blockIdx.z and read in place from the parameter
// space, not copied to each thread's stack.
__global__ void __launch_bounds__(kBlockThreads)
    preprocess_kernel(const __grid_constant__ Params p) {
  const auto x = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  const auto y = static_cast<int32_t>(blockIdx.y * blockDim.y + threadIdx.y);
  if (x >= static_cast<int32_t>(p.job.width) || y >= static_cast<int32_t>(p.job.height)) return;
  const pp::FrameDesc& f = p.frames[blockIdx.z];
  pp::pixel(p.job, f, p.first + blockIdx.z, x, y);
}

Status cuda_error(cudaError_t e, const char* what) {
  (void)cudaGetLastError();  // clear the runtime's last error unless it is sticky
  return Err(e == cudaErrorMemoryAllocation ? CUFRAMES_ERR_OUT_OF_MEMORY : CUFRAMES_ERR_DEVICE_LOST,
             "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

// Makes the frames' device current for the scope; the caller's current device is restored after.
class DeviceScope {
 public:
  ~DeviceScope() {
    if (prev_ >= 0 && prev_ != device_) (void)cudaSetDevice(prev_);
  }
  cudaError_t enter(int device) {
    device_ = device;
    cudaError_t e = cudaGetDevice(&prev_);
    if (e == cudaSuccess && prev_ != device) e = cudaSetDevice(device);
    return e;
  }

 private:
  int prev_ = -1;
  int device_ = -1;
};

}  // namespace

Status preprocess_cuda(const pp::Job& job, const pp::FrameDesc* frames, size_t count, int device,
                       void* stream) {
  DeviceScope scope;
  cudaError_t e = scope.enter(device);
  if (e != cudaSuccess) return cuda_error(e, "preprocess: making the frames' device current");
  const dim3 block(kBlockX, kBlockY, 1);
  for (size_t first = 0; first < count; first += kFramesPerLaunch) {
    const size_t n = std::min(kFramesPerLaunch, count - first);
    Params p{};
    p.job = job;
    p.first = static_cast<uint32_t>(first);
    std::copy(frames + first, frames + first + n, p.frames);
    const dim3 grid((job.width + kBlockX - 1) / kBlockX, (job.height + kBlockY - 1) / kBlockY,
                    static_cast<unsigned>(n));
    preprocess_kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(p);
    e = cudaGetLastError();
    if (e != cudaSuccess) return cuda_error(e, "preprocess: launching the kernel");
  }
  return Ok();
}

}  // namespace cuframes::detail
