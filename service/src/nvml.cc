#include "nvml.h"

#include <dlfcn.h>

#include <spdlog/spdlog.h>

#include <mutex>

namespace cfsvc {
namespace {

// The few NVML entry points used, declared here (ABI of nvml.h, stable since NVML 5).
using nvmlReturn = int;  // nvmlReturn_t; 0 = NVML_SUCCESS
using nvmlDevice = struct nvmlDevice_st*;
struct nvmlMemory {
  unsigned long long total, free, used;
};
struct nvmlUtilization {
  unsigned int gpu, memory;
};

struct Nvml {
  bool ok = false;
  nvmlReturn (*init)() = nullptr;
  nvmlReturn (*handle_by_index)(unsigned int, nvmlDevice*) = nullptr;
  nvmlReturn (*name)(nvmlDevice, char*, unsigned int) = nullptr;
  nvmlReturn (*memory)(nvmlDevice, nvmlMemory*) = nullptr;
  nvmlReturn (*utilization)(nvmlDevice, nvmlUtilization*) = nullptr;
  nvmlReturn (*decoder)(nvmlDevice, unsigned int*, unsigned int*) = nullptr;
};

template <class F>
bool sym(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(::dlsym(lib, name));
  return *out != nullptr;
}

Nvml load() {
  Nvml n;
  // Never unloaded: NVML stays initialised for the life of the process.
  void* lib = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    spdlog::debug("NVML not available ({}): no GPU stats over MQTT", ::dlerror());
    return n;
  }
  if (!sym(lib, "nvmlInit_v2", &n.init) ||
      !sym(lib, "nvmlDeviceGetHandleByIndex_v2", &n.handle_by_index) ||
      !sym(lib, "nvmlDeviceGetName", &n.name) || !sym(lib, "nvmlDeviceGetMemoryInfo", &n.memory) ||
      !sym(lib, "nvmlDeviceGetUtilizationRates", &n.utilization) ||
      !sym(lib, "nvmlDeviceGetDecoderUtilization", &n.decoder)) {
    spdlog::warn("NVML ({}) lacks an expected function: no GPU stats over MQTT",
                 "libnvidia-ml.so.1");
    return n;
  }
  const nvmlReturn rc = n.init();
  if (rc != 0) {
    spdlog::info("NVML did not initialise (error {}): no GPU stats over MQTT", rc);
    return n;
  }
  n.ok = true;
  return n;
}

}  // namespace

std::optional<GpuStats> query_gpu(unsigned index) {
  static std::once_flag once;
  static Nvml nvml;
  std::call_once(once, [] { nvml = load(); });
  if (!nvml.ok) return std::nullopt;

  nvmlDevice dev = nullptr;
  if (nvml.handle_by_index(index, &dev) != 0) return std::nullopt;
  GpuStats g;
  char name[96] = {};
  if (nvml.name(dev, name, sizeof name) == 0) g.name = name;
  nvmlMemory mem{};
  if (nvml.memory(dev, &mem) == 0) {
    g.memory_used_bytes = mem.used;
    g.memory_total_bytes = mem.total;
  }
  nvmlUtilization util{};
  if (nvml.utilization(dev, &util) == 0) g.utilization_percent = static_cast<int>(util.gpu);
  unsigned int dec = 0, period_us = 0;
  if (nvml.decoder(dev, &dec, &period_us) == 0)
    g.decoder_utilization_percent = static_cast<int>(dec);
  return g;
}

}  // namespace cfsvc
