// cuframes_preprocess: frames to one model-ready batch. preprocess.cc checks the arguments and
// describes every frame (preprocess_pixel.h), then hands the batch to a back end: the CPU twin
// (preprocess_cpu.cc) for host frames, the CUDA kernel (preprocess_cuda.cu) for device frames.
#pragma once

#include <cstddef>

#include "preprocess_pixel.h"
#include "status.h"

namespace cuframes::detail {

// A frame as the C ABI hands it over: its info and its subscriber's consumer stream.
struct PreprocessInput {
  const cuframes_frame_info_t* info;
  void* consumer_stream;
};

// The defaults of cuframes_preprocess_options_init.
cuframes_preprocess_options_t preprocess_defaults();

// Bytes of the output of count frames; 0 for options preprocess() refuses (or an overflow).
size_t preprocess_bytes(const cuframes_preprocess_options_t& o, size_t count);

Status preprocess(const PreprocessInput* frames, size_t count,
                  const cuframes_preprocess_options_t& o, void* out, size_t out_bytes,
                  cuframes_transform_t* transforms);

// The back ends: write every pixel of the count images of job.
void preprocess_cpu(const pp::Job& job, const pp::FrameDesc* frames, size_t count);
// Queues the work on stream, on device. Only in builds with CUDA.
Status preprocess_cuda(const pp::Job& job, const pp::FrameDesc* frames, size_t count, int device,
                       void* stream);

}  // namespace cuframes::detail
