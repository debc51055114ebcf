// nvcuvid_ceiling's GPU side: CUDA and NVDEC loaded at run time through FFmpeg's loader (gpu_setup:
// the tables declared in nvcuvid_shared.h, the primary context with --sched's flag, --lock shared's
// lock; ck: a failed call's one line), and one stream's NVIDIA parser + decoder (Stream:
// stream_open, feed, stream_close), whose callbacks create its decoder on the first sequence,
// decode, and map, copy and unmap each picture for display.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "nvcuvid_packets.h"
#include "nvcuvid_shared.h"

namespace nvcuvid {

// Dies (exit status 1) naming what failed unless r is CUDA_SUCCESS.
void ck(CUresult r, const char* what);

// Loads libcuda and libnvcuvid, makes the device's primary context current on this thread, and
// returns the GPU in words ("<name>, <engines> NVDEC engines for <codec>"). No driver, no NVDEC,
// no device, or a codec it cannot decode: one line naming what is missing, exit status 2.
std::string gpu_setup(cudaVideoCodec codec, const char* codec_name);

struct Stream {
  int index = 0;
  const Clip* clip = nullptr;
  std::unique_ptr<Source> src;
  CUstream cs = nullptr;  // the worker's
  CUvideoctxlock lock = nullptr;
  CUvideoparser parser = nullptr;
  CUvideodecoder dec = nullptr;
  CUdeviceptr buf = 0;  // the stream's own frame: the service's ring slot
  unsigned coded_w = 0, coded_h = 0, width = 0, height = 0, row_bytes = 0;
  unsigned surface_h = 0;  // the mapped surface's luma rows: UV starts there
  int surfaces = 0;
  std::atomic<uint64_t> frames{0};  // displayed, copied, and the copy waited for
  uint64_t fed = 0;                 // packets given to the parser
  bool at_loop_start = true;        // the next packet is the first of a loop (checked)
  double due = 0;                   // --paced: when its next packet is due (s since go)
  double max_lag = 0;               // --paced: the most it was behind (s), in the window
  bool done = false;                // --packets: fed them all
  uint64_t loops = 0;               // times the file was looped (kept when the source closes)
};

// Its source, and (unless --demux-only) its context lock and parser; the decoder comes with the
// first sequence. On the worker's thread, with the context current and s.cs set.
void stream_open(Stream& s);
void stream_close(Stream& s);  // keeps s.loops

// One packet into the stream's parser; at the end of the file, CUVID_PKT_ENDOFSTREAM (the parser
// hands out every picture still queued for display, and takes the next loop as a new stream, as
// NVIDIA's AppDecMultiFiles sample does with one parser over several files), then back to the
// start.
void feed(Stream& s);

}  // namespace nvcuvid
