#include "common/frame_check.h"

#include "cuframes/pattern.hpp"

namespace cftest {

void fill_frame(const cuframes_frame_info_t& fi, uint64_t seq) {
  if (fi.memory == CUFRAMES_MEMORY_CUDA) {
    cuda_fill_frame(fi, seq, nullptr);
  } else {
    cuframes::pattern::fill(fi, seq);
  }
}

bool verify_frame(const cuframes_frame_info_t& fi, uint64_t seq, std::string* why) {
  if (fi.memory == CUFRAMES_MEMORY_CUDA) return cuda_verify_frame(fi, seq, why, nullptr);
  return cuframes::pattern::verify(fi, seq, why);
}

#ifndef CUFRAMES_WITH_CUDA
// Built without CUDA: a CUDA frame cannot appear (publishers refuse cuda memory), but say so
// loudly if one does.
void cuda_fill_frame(const cuframes_frame_info_t&, uint64_t, void*) {
  std::abort();
}
bool cuda_verify_frame(const cuframes_frame_info_t&, uint64_t, std::string* why, void*) {
  if (why) *why = "built without CUDA";
  return false;
}
void cuda_slow_verify_async(const cuframes_frame_info_t&, uint64_t, int, int*, int, void*) {
  std::abort();
}
bool cuda_available() {
  return false;
}
#endif

}  // namespace cftest
