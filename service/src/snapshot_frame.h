// One held frame to a small JPEG: cuframes_preprocess scales it to RGB (the fused GPU kernel for
// cuda frames, so only the small picture crosses to the host; its CPU twin for host frames), the
// frame is released, and FFmpeg's MJPEG encoder (common/image.h) encodes the picture.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "cuframes/cuframes.hpp"

namespace cfsvc {

// What one picture cost: CPU time of the calling thread (scaling on the CPU, copying, encoding)
// and GPU time (cuda frames: the kernel and the copy to the host, between CUDA events).
struct SnapshotCost {
  double cpu_s = 0;
  double gpu_s = 0;
};

struct SnapshotPicture {
  std::vector<uint8_t> jpeg;
  uint32_t width = 0, height = 0;  // of the JPEG
  uint64_t seq = 0;                // of the frame
  SnapshotCost cost;
};

// Not thread-safe: one per worker thread. Keeps a CUDA stream and buffers per device it has seen.
class FrameEncoder {
 public:
  FrameEncoder();
  ~FrameEncoder();
  FrameEncoder(const FrameEncoder&) = delete;
  FrameEncoder& operator=(const FrameEncoder&) = delete;

  // The stream to consume cuda frames of `device` on (a subscriber's consumer_stream); nullptr
  // in a build without CUDA. Throws std::runtime_error when CUDA fails.
  void* stream(int device);
  // Scales the frame to at most max_width pixels per row (keeping the aspect), releases it (once
  // the GPU is done with it), encodes a JPEG. Throws std::runtime_error or cuframes::Error.
  SnapshotPicture encode(cuframes::Frame frame, uint32_t max_width);

 private:
  struct Device;
  Device& device(int id);
  std::map<int, std::unique_ptr<Device>> devices_;
  std::vector<uint8_t> rgb_;  // host frames' picture
};

// CPU seconds the calling thread has used (CLOCK_THREAD_CPUTIME_ID).
double thread_cpu_seconds();

}  // namespace cfsvc
