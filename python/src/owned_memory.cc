// OwnedMemory: host or device memory of the module's own, exported through DLPack.
#include "owned_memory.h"

#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

namespace cfpy {

#ifdef CUFRAMES_WITH_CUDA
namespace {

// Freed blocks are kept in the pool for reuse up to this many bytes (per device).
constexpr uint64_t kPoolKeepBytes = 1ull << 30;

cudaMemPool_t pool_for(int device) {
  static std::mutex mu;
  static std::vector<std::pair<int, cudaMemPool_t>> pools;  // never destroyed: process lifetime
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [d, p] : pools) {
    if (d == device) return p;
  }
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  cudaMemPool_t pool = nullptr;
  cudaError_t e = cudaMemPoolCreate(&pool, &props);
  if (e != cudaSuccess) {
    throw_status(
        e == cudaErrorMemoryAllocation ? CUFRAMES_ERR_OUT_OF_MEMORY : CUFRAMES_ERR_DEVICE_LOST,
        cuda_message(e, "cudaMemPoolCreate"));
  }
  uint64_t keep = kPoolKeepBytes;
  (void)cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
  pools.emplace_back(device, pool);
  return pool;
}

}  // namespace

std::string cuda_message(cudaError_t e, const char* what) {
  (void)cudaGetLastError();
  return std::string(what) + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
}

std::shared_ptr<OwnedMemory> OwnedMemory::device(size_t bytes, int device, uintptr_t stream,
                                                 const char* what) {
  DeviceScope scope(device);
  if (!scope.ok()) {
    throw_status(CUFRAMES_ERR_DEVICE_LOST, std::string(what) + ": cannot make cuda device " +
                                               std::to_string(device) + " current");
  }
  cudaMemPool_t pool = pool_for(device);
  auto m = std::shared_ptr<OwnedMemory>(new OwnedMemory);
  m->device_ = device;
  cudaError_t e =
      cudaMallocFromPoolAsync(&m->ptr_, bytes, pool, reinterpret_cast<cudaStream_t>(stream));
  if (e != cudaSuccess) {
    m->ptr_ = nullptr;
    throw_status(
        e == cudaErrorMemoryAllocation ? CUFRAMES_ERR_OUT_OF_MEMORY : CUFRAMES_ERR_DEVICE_LOST,
        cuda_message(e, (std::string(what) + ": allocating " + std::to_string(bytes) +
                         " bytes on cuda device " + std::to_string(device))
                            .c_str()));
  }
  m->streams_.add(stream);  // first: the stream it is written on
  return m;
}
#endif

std::shared_ptr<OwnedMemory> OwnedMemory::host(size_t bytes, const char* what) {
  auto m = std::shared_ptr<OwnedMemory>(new OwnedMemory);
  m->ptr_ = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (m->ptr_ == nullptr) {
    throw_status(CUFRAMES_ERR_OUT_OF_MEMORY,
                 std::string(what) + ": " + std::to_string(bytes) + " bytes of host memory");
  }
  return m;
}

OwnedMemory::~OwnedMemory() {
  if (ptr_ == nullptr) return;
  if (device_ < 0) {
    std::free(ptr_);
    return;
  }
#ifdef CUFRAMES_WITH_CUDA
  DeviceScope scope(device_);
  const uintptr_t s = streams_.join(device_);  // the first stream waits for the others
  if (cudaFreeAsync(ptr_, reinterpret_cast<cudaStream_t>(s)) != cudaSuccess) {
    (void)cudaGetLastError();  // a lost device: its memory is gone with it
  }
#endif
}

#ifdef CUFRAMES_WITH_CUDA
cudaError_t stream_wait(uintptr_t consumer, uintptr_t producer, int device) {
  if (consumer == producer) return cudaSuccess;
  // One event per device, made once: cudaStreamWaitEvent waits for the record made before it,
  // so the event may be recorded again at once (the lock keeps record + wait together).
  static std::mutex mu;
  static std::vector<std::pair<int, cudaEvent_t>> events;  // process lifetime
  std::lock_guard<std::mutex> lock(mu);
  DeviceScope scope(device);
  cudaEvent_t ev = nullptr;
  for (const auto& [d, e] : events) {
    if (d == device) ev = e;
  }
  if (ev == nullptr) {
    const cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (e != cudaSuccess) return e;
    events.emplace_back(device, ev);
  }
  cudaError_t e = cudaEventRecord(ev, reinterpret_cast<cudaStream_t>(producer));
  if (e == cudaSuccess) e = cudaStreamWaitEvent(reinterpret_cast<cudaStream_t>(consumer), ev, 0);
  return e;
}
#endif

void order_after(uintptr_t consumer, uintptr_t producer, int device, const char* what) {
#ifdef CUFRAMES_WITH_CUDA
  const cudaError_t e = stream_wait(consumer, producer, device);
  if (e != cudaSuccess) throw_status(CUFRAMES_ERR_DEVICE_LOST, cuda_message(e, what));
#else
  (void)consumer;
  (void)producer;
  (void)device;
  (void)what;
#endif
}

}  // namespace cfpy
