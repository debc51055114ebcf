#include "cuda_device.h"

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#endif

#include <mutex>
#include <set>

#include "logging.h"

namespace cfsvc {

#ifdef CUFRAMES_WITH_CUDA
namespace {

constexpr unsigned kSchedBlockingSync = 0x04;  // CU_CTX_SCHED_BLOCKING_SYNC

// The driver API through dlopen, like libcuframes: the service never links libcuda, so it
// starts (and serves host rings) where there is no NVIDIA driver.
void set_primary_context_flags(int device) {
  void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return;
  using Init = int (*)(unsigned);
  using DeviceGet = int (*)(int*, int);
  using GetState = int (*)(int, unsigned*, int*);
  using SetFlags = int (*)(int, unsigned);
  auto init = reinterpret_cast<Init>(::dlsym(lib, "cuInit"));
  auto device_get = reinterpret_cast<DeviceGet>(::dlsym(lib, "cuDeviceGet"));
  auto get_state = reinterpret_cast<GetState>(::dlsym(lib, "cuDevicePrimaryCtxGetState"));
  auto set_flags = reinterpret_cast<SetFlags>(::dlsym(lib, "cuDevicePrimaryCtxSetFlags_v2"));
  if (set_flags == nullptr)
    set_flags = reinterpret_cast<SetFlags>(::dlsym(lib, "cuDevicePrimaryCtxSetFlags"));
  int dev = 0;
  unsigned flags = 0;
  int active = 0;
  if (init == nullptr || device_get == nullptr || get_state == nullptr || set_flags == nullptr ||
      init(0) != 0 || device_get(&dev, device) != 0 || get_state(dev, &flags, &active) != 0) {
    spdlog::debug("CUDA device {}: cannot read its primary context's flags", device);
  } else if (flags != kSchedBlockingSync) {
    const int rc = set_flags(dev, kSchedBlockingSync);
    if (rc != 0) {
      spdlog::warn(
          "CUDA device {}: cannot set its primary context to blocking sync (CUresult "
          "{}, flags {:#x}, {}): NVDEC may refuse it",
          device, rc, flags, active ? "active" : "inactive");
    } else {
      spdlog::debug("CUDA device {}: primary context set to blocking sync (was {:#x}, {})", device,
                    flags, active ? "active" : "inactive");
    }
  }
  ::dlclose(lib);  // cudart keeps its own reference
}

}  // namespace
#endif

bool cuda_device_usable(int device) {
#ifdef CUFRAMES_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  if (device < 0 || device >= n) return false;
  static std::mutex mu;
  static std::set<int> prepared;
  std::lock_guard<std::mutex> lock(mu);
  if (prepared.insert(device).second) set_primary_context_flags(device);
  return true;
#else
  (void)device;
  return false;
#endif
}

}  // namespace cfsvc
