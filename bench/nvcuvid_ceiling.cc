// nvcuvid_ceiling: the decode-only ceiling of NVIDIA's Video Codec API called directly, the
// measurement behind docs/architecture.md's "one thread per NVDEC engine" (issue 16).
//
// Each stream demuxes its file with libavformat (looping), converts it to Annex B
// (h264_mp4toannexb / hevc_mp4toannexb) and feeds it one access unit at a time to a CUvideoparser
// of its own; the parser's callbacks create the stream's CUvideodecoder on the first sequence,
// decode each picture, and for each picture ready for display map it on the worker's CUDA stream,
// copy Y and UV into a device buffer of the stream's own (the service's publish into a ring
// slot), wait for that copy and only then unmap. Frames are counted after that wait.
//
// The point is the threading: --threads T worker threads, the N streams distributed round-robin
// over them; each worker feeds each of its streams one packet per turn. T = N is one thread per
// camera (cuframes-service's design today, and bench/nvdec_ceiling's); T = 7 on an H200 is one
// thread per NVDEC engine. --paced FPS feeds each stream at FPS packets per second in real time,
// like a live camera (a stream that falls behind is fed again at once until it has caught up,
// and its lag is reported), so that the per-stream rate and the CPU per frame of real-time
// cameras can be read at 128 streams.
//
//   nvcuvid_ceiling [--seconds S] [--streams N] [--threads T] [--paced FPS] [--display-delay D]
//                   [--surfaces K] [--output-surfaces M] [--sched blocking|spin|yield|auto]
//                   [--lock stream|shared|none]
//                   [--preload] [--sweep NxT,...,ffN,...] [--repeat R] [--ffmpeg PATH]
//                   [--demux-only] [--packets P] FILE...
//
// Each run prints one line in bench/nvdec_ceiling's format (fps= and cpu_us_per_frame= as
// bench/service_bench.py parses them), plus threads, the slowest and the median stream's fps,
// and the CPU per stream in % of a core. The window starts once every stream has shown its first
// frame (decoders created, pipelines full) and lasts --seconds; CPU is the process's (getrusage,
// user + system, all threads) over that window. --sweep runs several (streams x threads) rows in
// one process, each repeated --repeat times, interleaved (A,B,C,A,B,C,...), then prints each
// row's medians and its ratios to a reference row; a row ffN runs FFmpeg's `*_cuvid` decoder
// through bench/nvdec_ceiling (--ffmpeg PATH, --decoder cuvid, N streams, always flat out) in a
// child process, in the same interleaving.
//
// Defaults: --sched blocking (the primary context's flag, as FFmpeg sets it), --display-delay 4
// (FFmpeg's cuvid), --surfaces 4 (beyond the sequence's min_num_decode_surfaces),
// --output-surfaces 2, --lock stream (a cuvidCtxLock per decoder, as NVIDIA's samples; shared: one
// for all; none), --seconds 10, --threads = --streams. --preload reads each file once and replays
// its packets from memory, to take the demux out of the CPU per frame.
//
// --demux-only skips the GPU entirely (demux + bitstream filter + loop, each packet checked to be
// Annex B and each loop to start with a keyframe carrying its parameter sets); with --packets P
// each stream stops after P packets instead of after --seconds. No GPU, or no libnvcuvid: one
// line naming what is missing, exit status 2. Bad arguments: one line naming the argument, 2.
//
// Its parts, and what they share: nvcuvid_shared.h.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nvcuvid_args.h"
#include "nvcuvid_decoder.h"
#include "nvcuvid_packets.h"
#include "nvcuvid_shared.h"

namespace nvcuvid {

[[noreturn]] void die(int code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("nvcuvid_ceiling: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::fflush(stdout);
  std::_Exit(code);  // also from a worker thread: no destructors racing the others
}

namespace {

std::vector<Clip> g_clips;

// ---------------------------------------------------------------- one run: N streams on T threads
struct Result {
  std::string row;
  int streams = 0, threads = 0;
  bool ffmpeg = false, ok = true;
  uint64_t frames = 0;
  double seconds = 0, cpu_s = 0, fps = 0, min_fps = 0, median_fps = 0, max_lag_ms = 0;
  uint64_t loops = 0;
  double cpu_us_per_frame() const { return frames ? cpu_s * 1e6 / frames : 0.0; }
  double core_pct_per_stream() const {
    return seconds > 0 && streams > 0 ? 100.0 * cpu_s / seconds / streams : 0.0;
  }
};

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Gate {  // workers say ready (pipelines full); main says go, then stop
  std::mutex m;
  std::condition_variable c;
  int streams = 0;  // in this run (a --sweep row's)
  int ready = 0;
  bool go = false;
  Clock::time_point t0;
  std::atomic<bool> stop{false};
};

void worker(std::vector<Stream*> mine, Gate& gate) {
  CUstream cs = nullptr;
  if (!g_opt.demux_only) {
    ck(cu->cuCtxPushCurrent(g_ctx), "cuCtxPushCurrent");
    ck(cu->cuStreamCreate(&cs, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  }
  for (Stream* s : mine) {
    s->cs = cs;
    stream_open(*s);
  }
  // Warm up: every stream fed until its first frame (its decoder created, its pipeline full).
  if (!g_opt.demux_only) {
    for (bool all = false; !all && !gate.stop.load();) {
      all = true;
      for (Stream* s : mine) {
        if (s->frames.load(std::memory_order_relaxed) > 0) continue;
        all = false;
        if (s->fed > 1000)
          die(1, "stream %d (%s): no frame after %llu packets", s->index, s->clip->path.c_str(),
              static_cast<unsigned long long>(s->fed));
        feed(*s);
      }
    }
  }
  Clock::time_point t0;
  {
    std::unique_lock<std::mutex> l(gate.m);
    ++gate.ready;
    gate.c.notify_all();
    gate.c.wait(l, [&] { return gate.go; });
    t0 = gate.t0;
  }
  const double period = g_opt.paced > 0 ? 1.0 / g_opt.paced : 0;
  const int n = gate.streams;
  for (Stream* s : mine) {
    s->fed = 0;
    s->due = period * s->index / n;  // cameras are not in phase: spread over one period
  }
  const auto since = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  size_t live = mine.size();
  while (!gate.stop.load(std::memory_order_relaxed) && live > 0) {
    if (period == 0) {
      for (Stream* s : mine) {
        if (s->done) continue;
        feed(*s);
        if (g_opt.packets > 0 && static_cast<long>(s->fed) >= g_opt.packets) {
          s->done = true;
          --live;
        }
      }
      continue;
    }
    // Paced: each stream due now gets one packet this turn (a late one is fed again next turn
    // until it has caught up: late frames are caught up, not lost); none due: sleep until the
    // first one is.
    double now = since(), first = 1e300;
    bool any = false;
    for (Stream* s : mine) {
      if (s->done) continue;
      if (s->due <= now) {
        s->max_lag = std::max(s->max_lag, now - s->due);
        feed(*s);
        s->due += period;
        any = true;
        if (g_opt.packets > 0 && static_cast<long>(s->fed) >= g_opt.packets) {
          s->done = true;
          --live;
        }
      }
      first = std::min(first, s->due);
    }
    if (!any && first < 1e300)
      std::this_thread::sleep_until(
          t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(first)));
  }
  for (Stream* s : mine) stream_close(*s);
  if (cs != nullptr) {
    cu->cuStreamDestroy(cs);
    CUcontext popped = nullptr;
    cu->cuCtxPopCurrent(&popped);
  }
}

Result run_direct(int streams, int threads) {
  Result r;
  r.streams = streams;
  r.threads = threads;
  r.row = std::to_string(streams) + "x" + std::to_string(threads);
  std::vector<std::unique_ptr<Stream>> all;
  for (int i = 0; i < streams; ++i) {
    all.push_back(std::make_unique<Stream>());
    all.back()->index = i;
    all.back()->clip = &g_clips[static_cast<size_t>(i) % g_clips.size()];
  }
  Gate gate;
  gate.streams = streams;
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w) {
    std::vector<Stream*> mine;
    for (int i = w; i < streams; i += threads) mine.push_back(all[static_cast<size_t>(i)].get());
    pool.emplace_back(worker, std::move(mine), std::ref(gate));
  }
  std::vector<uint64_t> c0(static_cast<size_t>(streams)), c1(c0.size());
  double cpu0 = 0;
  Clock::time_point t0;
  {
    std::unique_lock<std::mutex> l(gate.m);
    gate.c.wait(l, [&] { return gate.ready == threads; });
    for (size_t i = 0; i < c0.size(); ++i) c0[i] = all[i]->frames.load();
    cpu0 = cpu_seconds();
    t0 = gate.t0 = Clock::now();
    gate.go = true;
  }
  gate.c.notify_all();
  if (g_opt.packets > 0) {
    for (auto& t : pool) t.join();
  } else {
    std::this_thread::sleep_for(std::chrono::duration<double>(g_opt.seconds));  // the window
  }
  const double cpu1 = cpu_seconds();
  const auto t1 = Clock::now();
  for (size_t i = 0; i < c1.size(); ++i) c1[i] = all[i]->frames.load();
  gate.stop = true;
  for (auto& t : pool)
    if (t.joinable()) t.join();
  r.seconds = std::chrono::duration<double>(t1 - t0).count();
  r.cpu_s = cpu1 - cpu0;
  std::vector<double> per(c0.size());
  for (size_t i = 0; i < c0.size(); ++i) {
    r.frames += c1[i] - c0[i];
    per[i] = (c1[i] - c0[i]) / r.seconds;
    r.max_lag_ms = std::max(r.max_lag_ms, all[i]->max_lag * 1e3);
  }
  std::sort(per.begin(), per.end());
  r.min_fps = per.front();
  r.median_fps = per[per.size() / 2];
  r.fps = r.frames / r.seconds;
  for (auto& s : all) r.loops += s->loops;
  return r;
}

// FFmpeg's *_cuvid decoder, through bench/nvdec_ceiling, as a child process.
Result run_ffmpeg(int streams) {
  Result r;
  r.streams = r.threads = streams;
  r.ffmpeg = true;
  r.row = "ff" + std::to_string(streams);
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", g_opt.seconds);
  std::vector<std::string> args = {
      g_opt.ffmpeg, "--decoder", "cuvid", "--seconds", secs, "--streams", std::to_string(streams)};
  for (const Clip& c : g_clips) args.push_back(c.path);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) die(1, "pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);  // its complaints, to quote if it fails
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid = 0;
  std::fflush(stdout);
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  std::string out;
  if (rc == 0) {
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
      out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  if (rc == 0) waitpid(pid, &status, 0);
  const size_t at = out.find("nvdec_ceiling ");
  unsigned long long frames = 0;
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || at == std::string::npos ||
      std::sscanf(out.c_str() + at,
                  "nvdec_ceiling decoder=%*s streams=%*d frames=%llu seconds=%lf "
                  "cpu_us_per_frame=%*f fps=%lf",
                  &frames, &r.seconds, &r.fps) != 3) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    const char* why = rc != 0                                          ? std::strerror(rc)
                      : !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? "its exit status is not 0"
                                                                       : "no result line";
    std::fprintf(stderr, "nvcuvid_ceiling: row %s: %s failed (%s); its output:\n%s\n",
                 r.row.c_str(), g_opt.ffmpeg.c_str(), why, out.c_str());
    r.ok = false;
    return r;
  }
  const size_t eol = out.find('\n', at);
  std::printf("%s\n", out.substr(at, eol == std::string::npos ? eol : eol - at).c_str());
  std::fflush(stdout);
  const char* cpu = std::strstr(out.c_str() + at, "cpu_us_per_frame=");
  r.frames = frames;
  r.cpu_s = cpu ? std::atof(cpu + 17) * frames / 1e6 : 0;
  r.min_fps = r.median_fps = -1;  // nvdec_ceiling does not say
  return r;
}

void print_direct(const Result& r) {
  std::printf(
      "nvcuvid_ceiling decoder=%s streams=%d threads=%d frames=%llu seconds=%.2f "
      "cpu_us_per_frame=%.1f fps=%.1f per_stream_min=%.2f per_stream_median=%.2f "
      "core_pct_per_stream=%.3f paced=%g max_lag_ms=%.1f loops=%llu\n",
      g_opt.demux_only ? "demux-only" : "direct", r.streams, r.threads,
      static_cast<unsigned long long>(r.frames), r.seconds, r.cpu_us_per_frame(), r.fps, r.min_fps,
      r.median_fps, r.core_pct_per_stream(), g_opt.paced, r.max_lag_ms,
      static_cast<unsigned long long>(r.loops));
  std::fflush(stdout);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace
}  // namespace nvcuvid

using namespace nvcuvid;

int main(int argc, char** argv) {
  parse_args(argc, argv);
  std::vector<Row> rows = g_opt.sweep.empty()
                              ? std::vector<Row>{{g_opt.streams, g_opt.threads, false}}
                              : parse_sweep(g_opt.sweep);
  av_log_set_level(AV_LOG_ERROR);
  g_clips.resize(g_opt.files.size());
  for (size_t i = 0; i < g_clips.size(); ++i) g_clips[i].path = g_opt.files[i];
  for (Clip& c : g_clips) probe(c);
  for (const Clip& c : g_clips)
    if (c.codec != g_clips[0].codec)
      die(2, "all files must have one codec (%s is %s, %s is %s)", g_clips[0].path.c_str(),
          avcodec_get_name(g_clips[0].codec_id), c.path.c_str(), avcodec_get_name(c.codec_id));
  const bool any_direct =
      std::any_of(rows.begin(), rows.end(), [](const Row& r) { return !r.ffmpeg; });
  std::string gpu = "no GPU used";
  if (!g_opt.demux_only && any_direct)
    gpu = gpu_setup(g_clips[0].codec, avcodec_get_name(g_clips[0].codec_id));
  std::printf(
      "# nvcuvid_ceiling: %s; sched=%s lock=%s display_delay=%d surfaces=+%d paced=%g "
      "preload=%d seconds=%g repeat=%d\n",
      gpu.c_str(), g_opt.sched.c_str(), g_opt.lock.c_str(), g_opt.display_delay, g_opt.surfaces,
      g_opt.paced, g_opt.preload ? 1 : 0, g_opt.seconds, g_opt.repeat);
  std::fflush(stdout);
  std::vector<std::vector<Result>> results(rows.size());
  for (int rep = 0; rep < g_opt.repeat; ++rep) {
    for (size_t k = 0; k < rows.size(); ++k) {  // interleaved: A,B,C,A,B,C,...
      const Row& row = rows[k];
      Result r = row.ffmpeg ? run_ffmpeg(row.streams) : run_direct(row.streams, row.threads);
      if (!row.ffmpeg) print_direct(r);
      results[k].push_back(r);
    }
  }
  int failed = 0;
  for (const auto& rs : results)
    for (const Result& r : rs) failed += r.ok ? 0 : 1;
  if (rows.size() == 1 && g_opt.repeat == 1) return failed ? 1 : 0;
  // Medians per row, and ratios to the row's reference: FFmpeg's row with the same streams
  // (ffN) where there is one, else the one-thread-per-stream row (NxN).
  struct Median {
    double fps = 0, min_fps = -1, cpu_us = 0, core_pct = 0, lag_ms = 0;
    int ok = 0;
  };
  std::vector<Median> med(rows.size());
  for (size_t k = 0; k < rows.size(); ++k) {
    std::vector<double> fps, mn, cpu, core, lag;
    for (const Result& r : results[k]) {
      if (!r.ok) continue;
      ++med[k].ok;
      fps.push_back(r.fps);
      mn.push_back(r.min_fps);
      cpu.push_back(r.cpu_us_per_frame());
      core.push_back(r.core_pct_per_stream());
      lag.push_back(r.max_lag_ms);
    }
    if (med[k].ok == 0) continue;
    med[k] = {median(fps), median(mn), median(cpu), median(core), median(lag), med[k].ok};
  }
  std::printf("# medians of %d interleaved run(s) per row; ratios to ffN, else NxN, same N\n",
              g_opt.repeat);
  std::printf("# %-8s %7s %7s %9s %9s %9s %10s %9s %9s %9s %7s\n", "row", "streams", "threads",
              "fps", "min/strm", "cpu_us/f", "core%/strm", "lag_ms", "fps_ratio", "cpu_ratio",
              "ok_runs");
  for (size_t k = 0; k < rows.size(); ++k) {
    const Row& row = rows[k];
    const Median& m = med[k];
    const Median* ref = nullptr;
    for (size_t j = 0; j < rows.size() && ref == nullptr; ++j)
      if (j != k && med[j].ok && rows[j].streams == row.streams && rows[j].ffmpeg) ref = &med[j];
    for (size_t j = 0; j < rows.size() && ref == nullptr && !row.ffmpeg; ++j)
      if (j != k && med[j].ok && rows[j].streams == row.streams && !rows[j].ffmpeg &&
          rows[j].threads == rows[j].streams)
        ref = &med[j];
    char fr[16] = "-", cr[16] = "-", mn[16] = "-";
    if (ref != nullptr && m.ok && ref->fps > 0 && ref->cpu_us > 0) {
      std::snprintf(fr, sizeof fr, "%.2f", m.fps / ref->fps);
      std::snprintf(cr, sizeof cr, "%.2f", m.cpu_us / ref->cpu_us);
    }
    if (m.min_fps >= 0) std::snprintf(mn, sizeof mn, "%.2f", m.min_fps);
    const std::string label = row.ffmpeg
                                  ? "ff" + std::to_string(row.streams)
                                  : std::to_string(row.streams) + "x" + std::to_string(row.threads);
    const std::string threads = row.ffmpeg ? "1/strm" : std::to_string(row.threads);
    std::printf("# %-8s %7d %7s %9.1f %9s %9.1f %10.3f %9.1f %9s %9s %7d\n", label.c_str(),
                row.streams, threads.c_str(), m.fps, mn, m.cpu_us, m.core_pct, m.lag_ms, fr, cr,
                m.ok);
  }
  if (failed) std::printf("# %d run(s) failed: see their errors above\n", failed);
  return failed ? 1 : 0;
}
