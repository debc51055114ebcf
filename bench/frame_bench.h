// cuframes_bench's parts, shared by its files:
//   frame_bench.cc        main, the main table and the publisher's cost of subscribers
//   frame_bench_phase.cc  one phase of a scenario: the publisher, and the subscriber processes
//   frame_bench_floor.cc  the floors under the scenarios (copy + sync, publish(), wake-ups)
//   frame_bench_util.cc   measurement helpers (quantiles, CPU times, pacing, pinning)
//   bench_child.h         the child processes (this binary again) and their post-mortem
#pragma once

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace fbench {

struct Size {
  const char* name;
  uint32_t w, h;
};
inline constexpr Size kSizes[] = {{"1080p", 1920, 1080}, {"4k", 3840, 2160}};

// cuda-spin: the cuda ring with subscribers using spin_us (--spin-us, default 200): they
// busy-wait around the expected arrival instead of sleeping until woken.
enum class Path { kHost, kCuda, kCudaSpin, kBaseline };
inline const char* path_name(Path p) {
  switch (p) {
    case Path::kHost:
      return "host";
    case Path::kCuda:
      return "cuda";
    case Path::kCudaSpin:
      return "cuda-spin";
    case Path::kBaseline:
      return "baseline";
  }
  return "?";
}
inline bool on_gpu_ring(Path p) {
  return p == Path::kCuda || p == Path::kCudaSpin;
}
extern uint32_t g_spin_us;                     // --spin-us: the cuda-spin subscribers' spin_us
inline constexpr uint64_t kWarmupFrames = 10;  // per subscriber, left out of every figure

// The machine's CPU time so far, and how much of it the hypervisor took (steal), in jiffies
// from /proc/stat; zeros where there is none.
struct CpuTimes {
  unsigned long long total = 0, steal = 0;
};
CpuTimes machine_cpu();

// The pacing of every paced loop here: sleep, then spin the last 300 us, so that each start is
// on time (the bench's `pub late` column checks it).
void wait_until_ns(int64_t t);
// Children report samples as "tag=v1,v2,..." in their RESULT line.
std::string join(const std::vector<int64_t>& v);
// The values after `tag` (e.g. " lat=") in line, up to the next space; none if tag is absent.
std::vector<int64_t> parse_list(const std::string& line, const char* tag);
// Of sorted samples in ns (not empty): the per_mille quantile (500: p50, 990: p99) in us.
double quantile_us(const std::vector<int64_t>& sorted, size_t per_mille);
// The share of samples above ns, %.
double share_above_pct(const std::vector<int64_t>& v, int64_t ns);
// This process's CPU time (user + system), s.
double cpu_seconds();
// "a,b,c" -> {a, b, c}
std::vector<std::string> split(const std::string& s);
#ifdef CUFRAMES_WITH_CUDA
// Exits the bench, naming what failed.
void cuda_check(cudaError_t e, const char* what);
#endif

// Pins the calling process to one CPU (the publisher to CPU 0, subscriber i to CPU 1 + i,
// wrapping over CPUs 1..n-1) so the scheduler's migrations stay out of the latency figures.
void pin_to_cpu(int cpu);
// The publisher's own service thread (it wakes the subscribers past the first few) inherits the
// CPUs of the thread that creates the publisher: made on CPUs 1..n-1, it never preempts the
// producer on CPU 0, as on a host where another core takes it.
struct OffProducerCpu {
  OffProducerCpu() {
    const int n = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    if (n < 2) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = 1; c < n; ++c) CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  ~OffProducerCpu() { pin_to_cpu(0); }
};

// Subscriber process (--role subscriber): prints "READY", then when the publisher goes a line
//   RESULT frames=N cpu_us=C seconds=S lat=l1,... after=a1,... wake=w1,... ended=WHY  (samples in
//   ns; lat from the pts, after from the publication, to the frame usable)
int run_subscriber(const std::string& dir, const std::string& key, Path path, int index);

struct PhaseResult {
  double pub_fps = 0;
  double sub_fps = 0;                       // mean over subscribers
  double p50_us = 0, p99_us = 0;            // publish() call -> frame usable by the subscriber
  double after_p50_us = 0;                  // publication -> frame usable by the subscriber
  double wake_p50_us = 0, wake_p99_us = 0;  // publication (after the copy) -> subscriber has it
  double publish_p50_us = 0, publish_p99_us = 0;  // time inside publish(), quantiles
  double late_p99_us = 0;       // the publisher's start behind its 200 fps schedule, p99
  double slow_wake_pct = 0;     // deliveries more than 20 us after publication, % (a woken sleeper)
  double steal_pct = 0;         // the machine's CPU time taken by the hypervisor (VM steal), %
  double cpu_us_per_frame = 0;  // mean over subscribers
  uint64_t frames = 0;          // delivered, all subscribers
};

// A publishing loop's figures (publish_for, frame_bench_phase.cc).
struct Publishing {
  std::vector<int64_t> publish_ns;  // time inside each publish()
  std::vector<int64_t> late;        // paced: each start behind its schedule
  uint64_t published = 0;
  double steal_pct = 0;  // the machine's CPU time taken by the hypervisor meanwhile, %
};

// Producer process (--role producer, python_bench.py's C publisher): a ring `key` in dir (path
// kCuda or kHost; its source as run_phase's), "READY" once it exists, then, once `subs` subscribers
// are attached, `seconds` of frames at `fps` (even pts), then one line
//   RESULT published=N publish=p1,... late=l1,...  (ns; or ERROR producer: WHY), and the
// publisher goes.
int run_producer(const std::string& dir, const std::string& key, const Size& size, Path path,
                 int subs, uint32_t slots, double seconds, double fps);

// One publisher session with `subs` subscriber processes: paced (fps > 0) or flat out, for
// `seconds`. Throws, with what each subscriber said and how it ended, when it cannot run.
PhaseResult run_phase(const Size& size, Path path, int subs, double seconds, double fps);

// The floors (frame_bench_floor.cc): the machine's wake-up latency without CUDA or cuframes,
// and (CUDA) a bare copy + event sync and publish() alone; their child processes' entry points.
void wake_floor();
int run_waker(const std::string& mode, int index, int64_t start_ns);
#ifdef CUFRAMES_WITH_CUDA
void copy_floor(const Size& size);
int run_idle();
#endif

}  // namespace fbench
