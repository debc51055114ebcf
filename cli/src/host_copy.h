// A frame's planes readable by the CPU: a host frame's own memory, or a copy of a cuda frame.
#ifndef CUFRAMES_CLI_HOST_COPY_H_
#define CUFRAMES_CLI_HOST_COPY_H_

#include <cstdint>
#include <vector>

#include "cuframes/cuframes.h"
#include "image.h"

namespace cli {

class HostPlanes {
 public:
  // Host frames are read in place (keep the frame held while view() is used); cuda frames are
  // copied to host memory with cudaMemcpy2D (the frame may be released afterwards). Throws
  // std::runtime_error when the copy fails or this build has no CUDA.
  explicit HostPlanes(const cuframes_frame_info_t& info);
  const cfimage::HostImage& view() const { return view_; }

 private:
  std::vector<uint8_t> copy_;
  cfimage::HostImage view_;
};

}  // namespace cli

#endif  // CUFRAMES_CLI_HOST_COPY_H_
