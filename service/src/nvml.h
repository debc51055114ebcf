// GPU health through NVML, loaded at run time (libnvidia-ml.so.1, part of the NVIDIA driver):
// no build-time dependency, and nothing at all where there is no driver.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace cfsvc {

struct GpuStats {
  std::string name;  // "NVIDIA H100 80GB HBM3"
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  int utilization_percent = -1;  // -1: not reported by this GPU
  int decoder_utilization_percent = -1;
};

// Reads NVML device `index` (NVML's order: PCI bus order). The library is loaded and
// initialised on the first call; returns nullopt (quietly, every time) when there is no NVML or
// no such device. Thread-safe.
std::optional<GpuStats> query_gpu(unsigned index = 0);

}  // namespace cfsvc
