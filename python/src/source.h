// The frame handed to CuframesPublisher.publish: DLPack arrays imported and checked against the
// ring's geometry, described as a cuframes_source_t.
#pragma once

#include <optional>

#include "common.h"
#include "dlpack.h"

namespace cfpy {

class FrameSource {
 public:
  // source: one array of the whole frame ((H + H/2, W) for NV12 and P010, (H, W) for GRAY8) or a
  // (y, uv) pair of plane arrays, in host or CUDA memory, any row stride. stream: the stream
  // the copy will read them on (0: the legacy default stream), passed to __dlpack__.
  FrameSource(const py::object& source, const cuframes_geometry_t& g, uintptr_t stream);
  FrameSource(const FrameSource&) = delete;
  FrameSource& operator=(const FrameSource&) = delete;

  cuframes_source_t& source() { return src_; }
  // Gives the arrays back to their producers (their deleters run here, with the GIL).
  void release() {
    tensors_[0].reset();
    tensors_[1].reset();
  }

 private:
  cuframes_source_t src_;
  std::optional<ImportedTensor> tensors_[2];
};

}  // namespace cfpy
