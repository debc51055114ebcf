// The CPU twin of the preprocessing kernel: the same per-pixel code (preprocess_pixel.h), run
// over the output on the host, the rows of a large batch spread over a few threads. Compiled with
// -ffp-contract=off (core/CMakeLists.txt), as the kernel is with --fmad=false.
#include <algorithm>
#include <functional>
#include <system_error>
#include <thread>
#include <vector>

#include "preprocess.h"

namespace cuframes::detail {
namespace {

constexpr size_t kPixelsPerThread = 1 << 18;  // below this much work, no extra thread
constexpr unsigned kMaxThreads = 8;

// Rows [begin, end) of the batch, counted over every image (row r is row r % height of image
// r / height).
void rows(const pp::Job& job, const pp::FrameDesc* frames, size_t begin, size_t end) {
  for (size_t r = begin; r < end; ++r) {
    const size_t n = r / job.height;
    const auto y = static_cast<int32_t>(r % job.height);
    for (uint32_t x = 0; x < job.width; ++x) {
      pp::pixel(job, frames[n], n, static_cast<int32_t>(x), y);
    }
  }
}

}  // namespace

void preprocess_cpu(const pp::Job& job, const pp::FrameDesc* frames, size_t count) {
  const size_t total_rows = count * job.height;
  const size_t pixels = total_rows * job.width;
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads =
      std::min<size_t>({size_t{hw}, size_t{kMaxThreads}, pixels / kPixelsPerThread + 1});
  if (threads <= 1) {
    rows(job, frames, 0, total_rows);
    return;
  }
  std::vector<std::thread> pool;
  const size_t chunk = (total_rows + threads - 1) / threads;
  for (size_t t = 1; t < threads; ++t) {
    const size_t begin = std::min(total_rows, t * chunk);
    const size_t end = std::min(total_rows, begin + chunk);
    if (begin >= end) continue;
    try {
      pool.emplace_back(rows, std::cref(job), frames, begin, end);
    } catch (const std::system_error&) {
      rows(job, frames, begin, end);  // no thread to be had: this one does that part too
    }
  }
  rows(job, frames, 0, std::min(total_rows, chunk));
  for (std::thread& t : pool) t.join();
}

}  // namespace cuframes::detail
