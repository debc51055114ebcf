// nvcuvid_ceiling's parts, and what they share:
//   nvcuvid_ceiling.cc  main: the runs (N streams on T worker threads, or FFmpeg's cuvid through
//                       bench/nvdec_ceiling as a child process), their lines, a sweep's medians
//   nvcuvid_args.h      the arguments: g_opt filled from the command line, --sweep's rows
//   nvcuvid_packets.h   a file's packets: probed once, demuxed + Annex B (or preloaded), looping
//   nvcuvid_decoder.h   CUDA and NVDEC loaded at run time, and one stream's parser + decoder
// This header declares what they share, each defined once: the options (g_opt: nvcuvid_args.cc
// fills it), die() (nvcuvid_ceiling.cc), and NVIDIA's API through FFmpeg's loader, whose function
// tables, context and shared lock nvcuvid_decoder.cc defines and loads (gpu_setup). ffnvcodec's
// headers are included through this one only, so that the loader's complaints reach loader_log.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace nvcuvid {
// Keeps the loader's complaint (which library or symbol) for gpu_setup's one line.
void loader_log(void*, const char* fmt, ...);
}  // namespace nvcuvid

// FFmpeg's loader (Debian's libffmpeg-nvenc-dev): libcuda and libnvcuvid are opened at run time,
// so this builds without a GPU or the CUDA toolkit. No CUDA toolkit header may come before it.
#define FFNV_LOG_FUNC(logctx, msg, ...) nvcuvid::loader_log((logctx), (msg), __VA_ARGS__)
#define FFNV_DEBUG_LOG_FUNC(logctx, msg, ...)
#include <ffnvcodec/dynlink_loader.h>

namespace nvcuvid {

using Clock = std::chrono::steady_clock;

// One line on stderr ("nvcuvid_ceiling: ..."), then _Exit(code), also from a worker thread.
[[noreturn]] void die(int code, const char* fmt, ...);

struct Options {
  double seconds = 10;
  int streams = 1;
  int threads = 0;  // 0: one per stream
  double paced = 0;
  int display_delay = 4;  // FFmpeg's cuviddec: CUVID_MAX_DISPLAY_DELAY
  int surfaces = 4;       // decode surfaces beyond the sequence's min_num_decode_surfaces
  int output_surfaces = 2;
  std::string sched = "blocking";  // FFmpeg's (primary_ctx) and the service's default
  std::string lock = "stream";
  bool preload = false, demux_only = false;
  long packets = 0;  // per stream; 0: run --seconds
  int repeat = 1;
  std::string sweep, ffmpeg;
  std::vector<std::string> files;
};
extern Options g_opt;  // nvcuvid_args.cc: parse_args fills it

// NVIDIA's API, loaded at run time by gpu_setup (nvcuvid_decoder.cc); null under --demux-only.
extern CudaFunctions* cu;
extern CuvidFunctions* cv;
extern CUcontext g_ctx;               // the device's primary context
extern CUvideoctxlock g_shared_lock;  // --lock shared: the one lock of every decoder

}  // namespace nvcuvid
