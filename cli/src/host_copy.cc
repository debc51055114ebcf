#include "host_copy.h"

#include <stdexcept>
#include <string>

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cli {

#ifdef CUFRAMES_WITH_CUDA
namespace {

void check_cuda(cudaError_t err, const char* what, int device) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + " (GPU " + std::to_string(device) +
                             "): " + cudaGetErrorString(err));
  }
}

}  // namespace
#endif

HostPlanes::HostPlanes(const cuframes_frame_info_t& info) {
  const cuframes_geometry_t& g = info.geometry;
  view_.geometry = g;
  view_.color_matrix = info.color_matrix;
  view_.color_range = info.color_range;
  if (info.memory == CUFRAMES_MEMORY_HOST) {
    view_.y = static_cast<const uint8_t*>(info.plane_y);
    view_.uv = static_cast<const uint8_t*>(info.plane_uv);
    view_.pitch_y = g.pitch_y;
    view_.pitch_uv = g.pitch_uv;
    return;
  }
#ifdef CUFRAMES_WITH_CUDA
  // Both planes hold width samples per row (UV interleaved at half the width), so the copy has
  // tightly packed rows of width * bytes_per_sample bytes.
  const size_t row = size_t{g.width} * g.bytes_per_sample;
  const size_t uv_rows = info.plane_uv != nullptr ? g.height_uv : 0;
  copy_.resize(row * (g.height + uv_rows));
  check_cuda(cudaSetDevice(info.device), "selecting the frame's GPU", info.device);
  check_cuda(cudaMemcpy2D(copy_.data(), row, info.plane_y, g.pitch_y, row, g.height,
                          cudaMemcpyDeviceToHost),
             "copying the Y plane to the host", info.device);
  if (uv_rows != 0) {
    check_cuda(cudaMemcpy2D(copy_.data() + row * g.height, row, info.plane_uv, g.pitch_uv, row,
                            uv_rows, cudaMemcpyDeviceToHost),
               "copying the UV plane to the host", info.device);
  }
  view_.y = copy_.data();
  view_.uv = uv_rows != 0 ? copy_.data() + row * g.height : nullptr;
  view_.pitch_y = row;
  view_.pitch_uv = uv_rows != 0 ? row : 0;
#else
  throw std::runtime_error("the frame is in GPU memory, but this cuframes was built without CUDA");
#endif
}

}  // namespace cli
