// Frame content for the protocol tests, on whichever memory the frame lives in: host frames use
// cuframes/pattern.hpp on the CPU; CUDA frames are filled and verified by kernels on the GPU
// (frame_check_cuda.cu), with a device-side checksum over every byte of every plane.
#pragma once

#include <string>

#include "cuframes/cuframes.h"

namespace cftest {

// Writes content derived from seq into every plane, then stamps seq and the checksum.
void fill_frame(const cuframes_frame_info_t& fi, uint64_t seq);
// True when the frame carries seq and its checksum matches; *why says what differs.
bool verify_frame(const cuframes_frame_info_t& fi, uint64_t seq, std::string* why = nullptr);

// CUDA variants (frame_check_cuda.cu). stream: where to run (nullptr = legacy default stream);
// verify waits for its result.
void cuda_fill_frame(const cuframes_frame_info_t& fi, uint64_t seq, void* stream);
bool cuda_verify_frame(const cuframes_frame_info_t& fi, uint64_t seq, std::string* why,
                       void* stream);
// Launches a kernel on stream that spins for spin_us microseconds, then checksums the frame and
// records in results[index] 1 if it still carries seq intact, 2 otherwise. Returns at once.
void cuda_slow_verify_async(const cuframes_frame_info_t& fi, uint64_t seq, int spin_us,
                            int* results, int index, void* stream);
bool cuda_available();

}  // namespace cftest
