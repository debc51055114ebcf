#include "snapshot_frame.h"

#include <time.h>

#include <stdexcept>
#include <string>
#include <utility>

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "image.h"

namespace cfsvc {
namespace {

// JPEG settings of the snapshots: FFmpeg's -q:v 4 (2 best .. 31 worst) and 4:2:0 chroma, as
// cameras' own snapshots: about 40 KB for 640x360.
constexpr int kJpegQuality = 4;

#ifdef CUFRAMES_WITH_CUDA
void check_cuda(cudaError_t err, const char* what, int device) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("snapshot: ") + what + " (GPU " + std::to_string(device) +
                             "): " + cudaGetErrorString(err));
  }
}
#endif

}  // namespace

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

#ifdef CUFRAMES_WITH_CUDA
struct FrameEncoder::Device {
  int id = 0;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  void* dev = nullptr;   // the RGB picture on the GPU
  void* host = nullptr;  // ... and in pinned host memory
  size_t bytes = 0;      // of both

  ~Device() {
    cudaSetDevice(id);
    if (dev != nullptr) cudaFree(dev);
    if (host != nullptr) cudaFreeHost(host);
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
  void reserve(size_t n) {
    if (n <= bytes) return;
    if (dev != nullptr) cudaFree(std::exchange(dev, nullptr));
    if (host != nullptr) cudaFreeHost(std::exchange(host, nullptr));
    bytes = 0;
    check_cuda(cudaMalloc(&dev, n), "allocating the picture", id);
    check_cuda(cudaMallocHost(&host, n), "allocating pinned host memory", id);
    bytes = n;
  }
};
#else
struct FrameEncoder::Device {};
#endif

FrameEncoder::FrameEncoder() = default;
FrameEncoder::~FrameEncoder() = default;

FrameEncoder::Device& FrameEncoder::device(int id) {
  auto it = devices_.find(id);
  if (it != devices_.end()) return *it->second;
  auto d = std::make_unique<Device>();
#ifdef CUFRAMES_WITH_CUDA
  d->id = id;
  check_cuda(cudaSetDevice(id), "selecting the GPU", id);
  check_cuda(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking), "creating a stream", id);
  check_cuda(cudaEventCreate(&d->start), "creating an event", id);
  check_cuda(cudaEventCreate(&d->stop), "creating an event", id);
#else
  (void)id;
#endif
  return *devices_.emplace(id, std::move(d)).first->second;
}

void* FrameEncoder::stream(int id) {
#ifdef CUFRAMES_WITH_CUDA
  return device(id).stream;
#else
  (void)id;
  return nullptr;
#endif
}

SnapshotPicture FrameEncoder::encode(cuframes::Frame frame, uint32_t max_width) {
  const double cpu0 = thread_cpu_seconds();
  const cuframes_frame_info_t info = frame.info();
  SnapshotPicture out;
  out.seq = info.seq;
  cfimage::scaled_size(info.geometry.width, info.geometry.height, max_width, &out.width,
                       &out.height);
  cuframes::PreprocessOptions o(out.width, out.height);
  o.dtype = CUFRAMES_DTYPE_UINT8;
  o.layout = CUFRAMES_LAYOUT_NHWC;
  o.channels = CUFRAMES_CHANNELS_RGB;
  o.resize = CUFRAMES_RESIZE_STRETCH;
  const size_t bytes = cuframes::preprocess_bytes(o, 1);
  const uint8_t* rgb = nullptr;
  if (info.memory == CUFRAMES_MEMORY_HOST) {
    rgb_.resize(bytes);
    cuframes::preprocess({&frame}, o, rgb_.data(), bytes);
    frame.release();
    rgb = rgb_.data();
  } else {
#ifdef CUFRAMES_WITH_CUDA
    Device& d = device(info.device);
    check_cuda(cudaSetDevice(d.id), "selecting the GPU", d.id);
    d.reserve(bytes);
    o.cuda_stream = d.stream;
    check_cuda(cudaEventRecord(d.start, d.stream), "recording an event", d.id);
    cuframes::preprocess({&frame}, o, d.dev, bytes);
    check_cuda(cudaMemcpyAsync(d.host, d.dev, bytes, cudaMemcpyDeviceToHost, d.stream),
               "copying the picture to the host", d.id);
    check_cuda(cudaEventRecord(d.stop, d.stream), "recording an event", d.id);
    frame.release(d.stream);  // the publisher may reuse the slot once the kernel has read it
    check_cuda(cudaStreamSynchronize(d.stream), "scaling the frame", d.id);
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, d.start, d.stop), "timing", d.id);
    out.cost.gpu_s = ms / 1e3;
    rgb = static_cast<const uint8_t*>(d.host);
#else
    throw std::runtime_error("snapshot: the frame is in GPU memory, but this build has no CUDA");
#endif
  }
  cfimage::EncodeOptions eo;
  eo.jpeg_quality = kJpegQuality;
  eo.jpeg_420 = true;
  out.jpeg = cfimage::encode_rgb({rgb, out.width, out.height, size_t{out.width} * 3},
                                 cfimage::ImageKind::kJpeg, eo);
  out.cost.cpu_s = thread_cpu_seconds() - cpu0;
  return out;
}

}  // namespace cfsvc
