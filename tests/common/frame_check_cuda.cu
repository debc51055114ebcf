// GPU side of frame_check.h: fill, stamp and verify frames in device memory with kernels. The
// checksum is a wrapping sum of mix(byte, position) over every byte of every plane except the
// 16-byte stamp (seq, checksum) at the start of the Y plane, so it is order-independent and
// computed in parallel; any changed, torn or overwritten byte changes it.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/frame_check.h"

namespace cftest {
namespace {

#define CHECK_CUDA(expr)                                                                          \
  do {                                                                                            \
    cudaError_t _e = (expr);                                                                      \
    if (_e != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(_e)); \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)

constexpr int kStamp = 16;

__host__ __device__ inline unsigned long long mix(unsigned long long x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

struct Planes {
  unsigned char* y;
  unsigned char* uv;
  unsigned long long pitch_y, pitch_uv;
  unsigned int rows_y, rows_uv, row_bytes;
};

Planes planes_of(const cuframes_frame_info_t& fi) {
  const cuframes_geometry_t& g = fi.geometry;
  return Planes{static_cast<unsigned char*>(fi.plane_y),
                static_cast<unsigned char*>(fi.plane_uv),
                g.pitch_y,
                g.pitch_uv,
                g.height,
                g.num_planes == 2 ? g.height_uv : 0,
                g.width * g.bytes_per_sample};
}

// Row r of the concatenated planes (Y rows, then UV rows).
__device__ inline unsigned char* row_ptr(const Planes& p, unsigned int r) {
  return r < p.rows_y ? p.y + r * p.pitch_y : p.uv + (r - p.rows_y) * p.pitch_uv;
}

__global__ void fill_kernel(Planes p, unsigned long long seq) {
  unsigned int r = blockIdx.y;
  unsigned char* row = row_ptr(p, r);
  for (unsigned int c = blockIdx.x * blockDim.x + threadIdx.x; c < p.row_bytes;
       c += gridDim.x * blockDim.x) {
    if (r == 0 && c < kStamp) continue;
    unsigned long long pos = static_cast<unsigned long long>(r) * p.row_bytes + c;
    row[c] = static_cast<unsigned char>(mix(seq * 0x9e3779b97f4a7c15ull + pos) >> 24);
  }
}

__global__ void sum_kernel(Planes p, unsigned long long* out) {
  unsigned int r = blockIdx.y;
  const unsigned char* row = row_ptr(p, r);
  unsigned long long s = 0;
  for (unsigned int c = blockIdx.x * blockDim.x + threadIdx.x; c < p.row_bytes;
       c += gridDim.x * blockDim.x) {
    if (r == 0 && c < kStamp) continue;
    unsigned long long pos = static_cast<unsigned long long>(r) * p.row_bytes + c;
    s += mix(pos * 0x100 + row[c]);
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if ((threadIdx.x & 31) == 0) atomicAdd(out, s);
}

__global__ void stamp_kernel(unsigned char* y, unsigned long long seq,
                             const unsigned long long* sum) {
  unsigned long long v[2] = {seq, *sum};
  const unsigned char* b = reinterpret_cast<const unsigned char*>(v);
  for (int i = 0; i < kStamp; ++i) y[i] = b[i];
}

// Spins, then checksums and compares, all in one kernel: one block per row, the last block to
// finish decides. results[index] = 1 intact, 2 damaged.
__global__ void slow_verify_kernel(Planes p, unsigned long long seq, long long spin_cycles,
                                   unsigned long long* scratch, unsigned int* done, int* results,
                                   int index) {
  long long t0 = clock64();
  while (clock64() - t0 < spin_cycles) {
  }
  unsigned int r = blockIdx.x;
  const unsigned char* row = row_ptr(p, r);
  unsigned long long s = 0;
  for (unsigned int c = threadIdx.x; c < p.row_bytes; c += blockDim.x) {
    if (r == 0 && c < kStamp) continue;
    unsigned long long pos = static_cast<unsigned long long>(r) * p.row_bytes + c;
    s += mix(pos * 0x100 + row[c]);
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if ((threadIdx.x & 31) == 0) atomicAdd(scratch, s);
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    unsigned int finished = atomicAdd(done, 1u) + 1;
    if (finished == gridDim.x) {
      __threadfence();
      unsigned long long stamped_seq = 0, stamped_sum = 0;
      for (int i = 7; i >= 0; --i) {
        stamped_seq = (stamped_seq << 8) | p.y[i];
        stamped_sum = (stamped_sum << 8) | p.y[8 + i];
      }
      results[index] = (stamped_seq == seq && stamped_sum == atomicAdd(scratch, 0ull)) ? 1 : 2;
    }
  }
}

dim3 grid_of(const Planes& p) {
  unsigned int x = (p.row_bytes + 255) / 256;
  return dim3(x < 8 ? x : 8, p.rows_y + p.rows_uv);
}

// Per-thread scratch for sums.
unsigned long long* scratch() {
  thread_local unsigned long long* d = nullptr;
  if (d == nullptr) CHECK_CUDA(cudaMalloc(&d, 2 * sizeof(unsigned long long)));
  return d;
}

int device_of(const cuframes_frame_info_t& fi) {
  return fi.device < 0 ? 0 : fi.device;
}

}  // namespace

bool cuda_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

void cuda_fill_frame(const cuframes_frame_info_t& fi, uint64_t seq, void* stream) {
  CHECK_CUDA(cudaSetDevice(device_of(fi)));
  auto s = static_cast<cudaStream_t>(stream);
  Planes p = planes_of(fi);
  unsigned long long* sum = scratch();
  fill_kernel<<<grid_of(p), 256, 0, s>>>(p, seq);
  CHECK_CUDA(cudaMemsetAsync(sum, 0, sizeof *sum, s));
  sum_kernel<<<grid_of(p), 256, 0, s>>>(p, sum);
  stamp_kernel<<<1, 1, 0, s>>>(p.y, seq, sum);
  CHECK_CUDA(cudaGetLastError());
}

bool cuda_verify_frame(const cuframes_frame_info_t& fi, uint64_t seq, std::string* why,
                       void* stream) {
  CHECK_CUDA(cudaSetDevice(device_of(fi)));
  auto s = static_cast<cudaStream_t>(stream);
  Planes p = planes_of(fi);
  unsigned long long* sum = scratch();
  CHECK_CUDA(cudaMemsetAsync(sum, 0, sizeof *sum, s));
  sum_kernel<<<grid_of(p), 256, 0, s>>>(p, sum);
  CHECK_CUDA(cudaGetLastError());
  unsigned long long host_sum = 0, stamp[2] = {0, 0};
  CHECK_CUDA(cudaMemcpyAsync(&host_sum, sum, sizeof host_sum, cudaMemcpyDeviceToHost, s));
  CHECK_CUDA(cudaMemcpyAsync(stamp, p.y, sizeof stamp, cudaMemcpyDeviceToHost, s));
  CHECK_CUDA(cudaStreamSynchronize(s));
  if (stamp[0] != seq) {
    if (why) *why = "stamped seq " + std::to_string(stamp[0]) + ", expected " + std::to_string(seq);
    return false;
  }
  if (stamp[1] != host_sum) {
    if (why) *why = "device checksum mismatch in frame " + std::to_string(seq);
    return false;
  }
  return true;
}

void cuda_slow_verify_async(const cuframes_frame_info_t& fi, uint64_t seq, int spin_us,
                            int* results, int index, void* stream) {
  CHECK_CUDA(cudaSetDevice(device_of(fi)));
  auto s = static_cast<cudaStream_t>(stream);
  Planes p = planes_of(fi);
  // Scratch per launch: a fresh pair (sum, done counter) so launches may overlap.
  unsigned long long* buf = nullptr;
  CHECK_CUDA(cudaMallocAsync(&buf, 2 * sizeof(unsigned long long), s));
  CHECK_CUDA(cudaMemsetAsync(buf, 0, 2 * sizeof(unsigned long long), s));
  int rate_khz = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&rate_khz, cudaDevAttrClockRate, device_of(fi)));
  long long cycles = static_cast<long long>(rate_khz) * spin_us / 1000;
  slow_verify_kernel<<<p.rows_y + p.rows_uv, 256, 0, s>>>(
      p, seq, cycles, buf, reinterpret_cast<unsigned int*>(buf + 1), results, index);
  CHECK_CUDA(cudaGetLastError());
  CHECK_CUDA(cudaFreeAsync(buf, s));
}

}  // namespace cftest
