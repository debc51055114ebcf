#include "cuda_device.h"

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#endif

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "logging.h"

namespace cfsvc {

#ifdef CUFRAMES_WITH_CUDA
namespace {

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
  } else if (flags != cuda_sched_flags()) {
    const int rc = set_flags(dev, cuda_sched_flags());
    if (rc != 0) {
      spdlog::warn(
          "CUDA device {}: cannot set its primary context's flags to {:#x} (CUresult "
          "{}, flags {:#x}, {}): NVDEC may refuse it",
          device, cuda_sched_flags(), rc, flags, active ? "active" : "inactive");
    } else {
      spdlog::debug("CUDA device {}: primary context flags set to {:#x} (was {:#x}, {})", device,
                    cuda_sched_flags(), flags, active ? "active" : "inactive");
    }
  }
  ::dlclose(lib);  // cudart keeps its own reference
}

}  // namespace
#endif

unsigned cuda_sched_flags() {
  static const unsigned flags = [] {
    const char* v = std::getenv("CUFRAMES_CUDA_SCHED");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "blocking") == 0) return 0x04u;
    if (std::strcmp(v, "auto") == 0) return 0x00u;   // CU_CTX_SCHED_AUTO
    if (std::strcmp(v, "spin") == 0) return 0x01u;   // CU_CTX_SCHED_SPIN
    if (std::strcmp(v, "yield") == 0) return 0x02u;  // CU_CTX_SCHED_YIELD
    spdlog::warn("CUFRAMES_CUDA_SCHED={}: not blocking, spin, yield or auto; using blocking", v);
    return 0x04u;
  }();
  return flags;
}

bool cuda_sched_is_ffmpegs() {
  return cuda_sched_flags() == 0x04u;
}

void* cuda_primary_context(int device) {
#ifdef CUFRAMES_WITH_CUDA
  static std::mutex mu;
  static std::map<int, void*> retained;  // never released: the process keeps using them
  std::lock_guard<std::mutex> lock(mu);
  auto it = retained.find(device);
  if (it != retained.end()) return it->second;
  void* ctx = nullptr;
  if (void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
    using DeviceGet = int (*)(int*, int);
    using Retain = int (*)(void**, int);
    auto device_get = reinterpret_cast<DeviceGet>(::dlsym(lib, "cuDeviceGet"));
    auto retain = reinterpret_cast<Retain>(::dlsym(lib, "cuDevicePrimaryCtxRetain"));
    int dev = 0;
    if (device_get == nullptr || retain == nullptr || device_get(&dev, device) != 0 ||
        retain(&ctx, dev) != 0) {
      ctx = nullptr;
    }
    // Not closed: cudart holds libcuda anyway, and the context stays retained.
  }
  if (ctx != nullptr) retained[device] = ctx;
  return ctx;
#else
  (void)device;
  return nullptr;
#endif
}

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
