// cuframes_bench: publish -> next_frame latency (p50/p99), frames/s and subscriber CPU per frame,
// for 1080p and 4K NV12 with 1, 4 and 16 subscriber processes, on three paths measured in the
// same run:
//   host     : cuframes host ring (frame in host memory, subscribers read it in place)
//   cuda     : cuframes cuda ring (frame in device memory, one D2D copy in, subscribers read the
//              device pointer in place: zero copies on their side)
//   baseline : what today's stacks do: the decoded frame (device memory) is copied into host
//              shared memory, and every subscriber copies it host -> device before using it
//              (transport: a cuframes host ring standing in for the shm segment + queue)
// Latency is from the start of the publish call (the frame ready at the producer) to the frame
// being usable by the subscriber: host pointer (host), device pointer (cuda), or the H2D copy
// completed on its device (baseline). Each scenario runs a paced phase (latency, 200 fps) and a
// flat-out phase (frames/s). Subscribers are separate processes (fork+exec of this binary); each
// leaves its first 10 frames (warm-up) out of its figures.
//
// Before the scenarios it measures the floors under them: a bare copy + event sync and publish()
// alone (cuda path), and the machine's own wake-up latency without CUDA or cuframes (a sleeping
// process woken by a socket write, and a timed sleep's lateness: what a sleeping subscriber, and
// spin_us's window, stand on).
//
// A scenario that fails (a publisher refused, subscribers that never attach) prints its error in
// its row and the bench goes on with the next one; its subscriber processes are killed.
//
// --pubcost PATHS adds the publisher's cost of many subscribers: publish() p50 with 1 and with
// N (--pubcost-subs, default 64) sleeping subscribers, paced at 200 fps, the two alternating in
// --pubcost-rounds rounds (default 3), with the ratio of their medians.
//
//   cuframes_bench [--seconds S] [--only host,cuda,cuda-spin,baseline] [--sizes 1080p,4k]
//                  [--subs 1,4,16] [--spin-us 200] [--repeat N (rows per scenario)]
//                  [--floor 0 (skip the floors)] [--table 0 (skip the main table)]
//                  [--pubcost host,cuda] [--pubcost-subs 64] [--pubcost-rounds 3]
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime.h>
#endif

#include "bench_child.h"
#include "cuframes/cuframes.hpp"


namespace {

struct Size {
  const char* name;
  uint32_t w, h;
};
const Size kSizes[] = {{"1080p", 1920, 1080}, {"4k", 3840, 2160}};

// cuda-spin: the cuda ring with subscribers using spin_us (--spin-us, default 200): they
// busy-wait around the expected arrival instead of sleeping until woken.
enum class Path { kHost, kCuda, kCudaSpin, kBaseline };
const char* path_name(Path p) {
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
bool on_gpu_ring(Path p) {
  return p == Path::kCuda || p == Path::kCudaSpin;
}
uint32_t g_spin_us = 200;               // --spin-us: the cuda-spin subscribers' spin_us
constexpr uint64_t kWarmupFrames = 10;  // per subscriber, left out of every figure

// The machine's CPU time so far, and how much of it the hypervisor took (steal), in jiffies
// from /proc/stat; zeros where there is none.
struct CpuTimes {
  unsigned long long total = 0, steal = 0;
};
CpuTimes machine_cpu() {
  CpuTimes t;
  FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return t;
  unsigned long long v[8] = {};
  if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                  &v[4], &v[5], &v[6], &v[7]) == 8) {
    for (unsigned long long x : v) t.total += x;
    t.steal = v[7];
  }
  std::fclose(f);
  return t;
}

// The pacing of every paced loop here: sleep, then spin the last 300 us, so that each start is
// on time (the bench's `pub late` column checks it).
void wait_until_ns(int64_t t) {
  while (t - cuframes::now_ns() > 300000)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  while (cuframes::now_ns() < t) {
  }
}

// Children report samples as "tag=v1,v2,..." in their RESULT line.
std::string join(const std::vector<int64_t>& v) {
  std::ostringstream out;
  for (size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
  return out.str();
}
// The values after `tag` (e.g. " lat=") in line, up to the next space; none if tag is absent.
std::vector<int64_t> parse_list(const std::string& line, const char* tag) {
  std::vector<int64_t> out;
  size_t at = line.find(tag);
  if (at == std::string::npos) return out;
  at += std::strlen(tag);
  std::stringstream ss(line.substr(at, line.find(' ', at) - at));
  std::string v;
  while (std::getline(ss, v, ',')) out.push_back(std::atoll(v.c_str()));
  return out;
}

// Of sorted samples in ns (not empty): the per_mille quantile (500: p50, 990: p99) in us.
double quantile_us(const std::vector<int64_t>& sorted, size_t per_mille) {
  return sorted[std::min(sorted.size() - 1, sorted.size() * per_mille / 1000)] / 1e3;
}
// The share of samples above ns, %.
double share_above_pct(const std::vector<int64_t>& v, int64_t ns) {
  return 100.0 * std::count_if(v.begin(), v.end(), [ns](int64_t x) { return x > ns; }) / v.size();
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

#ifdef CUFRAMES_WITH_CUDA
void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
#endif

// ---------------------------------------------------------------------------------------------
// Subscriber process: prints "READY", then on PUBLISHER_GONE a result line:
//   RESULT frames=N cpu_us=C seconds=S lat=l1,l2,...   (latencies in ns)
// Pins the calling process to one CPU (the publisher to CPU 0, subscriber i to CPU 1 + i, wrapping
// over CPUs 1..n-1) so the scheduler's migrations stay out of the latency figures.
void pin_to_cpu(int cpu) {
  const int n = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (n < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % n, &set);
  sched_setaffinity(0, sizeof set, &set);
}

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

int run_subscriber(const std::string& dir, const std::string& key, Path path, int index) {
  // CPUs 1.. in turn, never the publisher's CPU 0 (64 subscribers on 16 CPUs: 4-5 per CPU).
  const int cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  pin_to_cpu(cpus > 1 ? 1 + index % (cpus - 1) : 0);
  cuframes::Subscriber::Options o;
  o.runtime_dir = dir.c_str();
  o.connect_timeout_ms = 60000;  // 64 CUDA contexts made at once may take a while
  std::string name = std::string("bench-") + std::to_string(index);
  o.consumer_name = name.c_str();
  if (path == Path::kCudaSpin) o.spin_us = g_spin_us;
#ifdef CUFRAMES_WITH_CUDA
  cudaStream_t stream = nullptr;
  void* dev = nullptr;
  if (path != Path::kHost) {
    cuda_check(cudaSetDevice(0), "cudaSetDevice");
    cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    o.consumer_stream = stream;
  }
#endif
  cuframes::Subscriber sub = [&] {
    try {
      return cuframes::Subscriber(key, o);
    } catch (const cuframes::Error& e) {  // said to the parent, which names the scenario
      std::printf("ERROR subscriber %d: %s\n", index, e.what());
      std::fflush(stdout);
      std::exit(1);
    }
  }();
  std::printf("READY\n");
  std::fflush(stdout);
  (void)path;
  std::vector<int64_t> lat, wake;
  lat.reserve(100000);
  wake.reserve(100000);
  uint64_t frames = 0, seen = 0;
  double cpu0 = -1;
  int64_t t_first = 0, t_last = 0;
  // The phase ends when the publisher goes. No frame for a while is no reason to leave: the
  // publisher waits until every subscriber is attached before its first frame, and 64 processes
  // making CUDA contexts at once can take many seconds (a child that left after 5 s without a
  // frame made every cuda row with 64 subscribers fail "0 of 64 attached"). Only an orphan (its
  // parent gone) or 120 s without any frame end it.
  int64_t last_frame = cuframes::now_ns();
  const char* ended = "publisher-gone";  // one word: the RESULT line is split at spaces
  for (;;) {
    cuframes::Frame f;
    cuframes_status_t st = sub.try_next(1000, &f);
    if (st == CUFRAMES_ERR_PUBLISHER_GONE) break;
    if (st == CUFRAMES_ERR_FRAME_TIMEOUT) {
      if (getppid() == 1) {
        ended = "orphaned";
        break;
      }
      if (cuframes::now_ns() - last_frame > 120000000000) {
        ended = "no-frame-for-120s";
        break;
      }
      continue;
    }
    if (st != CUFRAMES_OK) {
      std::printf("NOTE subscriber %d: try_next: %s\n", index, cuframes_status_name(st));
      std::fflush(stdout);
      continue;
    }
    last_frame = cuframes::now_ns();
    // Warm-up: the first frames pay for first touches and, with spin_us, arrive while the
    // publisher's cadence is still being learned. Counted from there: CPU, latency, rate.
    const bool measured = ++seen > kWarmupFrames;
    if (measured && cpu0 < 0) cpu0 = cpu_seconds();
    cuframes_frame_info_t fi = f.info();
#ifdef CUFRAMES_WITH_CUDA
    if (path == Path::kBaseline) {
      // Today's stacks: the frame is in host memory; bring it to the GPU before using it.
      if (dev == nullptr) cuda_check(cudaMalloc(&dev, fi.geometry.frame_bytes), "cudaMalloc");
      cuda_check(
          cudaMemcpyAsync(dev, fi.data, fi.geometry.frame_bytes, cudaMemcpyHostToDevice, stream),
          "H2D");
      cuda_check(cudaStreamSynchronize(stream), "sync");
    }
#endif
    int64_t now = cuframes::now_ns();
    f.release();
    if (!measured) continue;
    lat.push_back(now - fi.pts_ns);
    wake.push_back(now - fi.publish_ns);
    if (t_first == 0) t_first = now;
    t_last = now;
    ++frames;
  }
  double cpu = cpu0 < 0 ? 0 : cpu_seconds() - cpu0;
  std::ostringstream out;
  out << "RESULT frames=" << frames << " cpu_us=" << static_cast<long long>(cpu * 1e6)
      << " seconds=" << (t_last - t_first) / 1e9 << " lat=" << join(lat) << " wake=" << join(wake) << " ended=" << ended;
  std::printf("%s\n", out.str().c_str());
  std::fflush(stdout);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Parent side.

using bench::Child;
using bench::read_line;
using bench::spawn_self;

Child spawn_subscriber(const std::string& dir, const std::string& key, Path path, int index) {
  return spawn_self({"--role", "subscriber", "--dir", dir, "--key", key, "--path", path_name(path),
                     "--spin-us", std::to_string(g_spin_us), "--index", std::to_string(index)});
}

struct PhaseResult {
  double pub_fps = 0;
  double sub_fps = 0;                       // mean over subscribers
  double p50_us = 0, p99_us = 0;            // publish() call -> frame usable by the subscriber
  double wake_p50_us = 0, wake_p99_us = 0;  // publication (after the copy) -> subscriber has it
  double publish_us = 0;                    // mean time inside publish()
  double publish_p50_us = 0, publish_p99_us = 0;  // time inside publish(), quantiles
  double late_p99_us = 0;       // the publisher's start behind its 200 fps schedule, p99
  double slow_wake_pct = 0;     // deliveries more than 20 us after publication, % (a woken sleeper)
  double steal_pct = 0;         // the machine's CPU time taken by the hypervisor (VM steal), %
  double cpu_us_per_frame = 0;  // mean over subscribers
  uint64_t frames = 0;          // delivered, all subscribers
};

// One publisher session: paced (fps > 0) or flat out, for `seconds`.
PhaseResult run_phase(const Size& size, Path path, int subs, double seconds, double fps) {
  char tmpl[] = "/tmp/cuframes-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  const std::string key = "bench";
  // The subscriber processes; whatever ends the phase (an error included) leaves none behind, and
  // the temporary directory goes.
  struct Children {
    std::vector<Child> list;
    std::string dir, key;
    ~Children() {
      for (Child& c : list) bench::reap(c);
      const std::string lock = dir + "/" + key + ".lock";
      unlink(lock.c_str());
      rmdir(dir.c_str());
    }
  } kids{{}, dir, key};
  std::vector<Child>& children = kids.list;
  for (int i = 0; i < subs; ++i) children.push_back(spawn_subscriber(dir, key, path, i));

  PhaseResult r;
  std::vector<int64_t> publish_ns;  // time inside each publish()
  std::vector<int64_t> late;        // paced: the publisher's start behind its schedule
  {
    cuframes::Publisher::Options o;
    o.runtime_dir = dir.c_str();
    o.width = size.w;
    o.height = size.h;
    o.format = CUFRAMES_FORMAT_NV12;
    // A slot per subscriber (each may hold one) plus the newest and room to write: fewer
    // drops. At most CUFRAMES_MAX_SLOTS: past that, the ring drops when every slot is held.
    o.slots = static_cast<uint32_t>(std::clamp(subs + 4, 8, CUFRAMES_MAX_SLOTS));
    o.memory = on_gpu_ring(path) ? CUFRAMES_MEMORY_CUDA : CUFRAMES_MEMORY_HOST;
    cuframes::Publisher pub = [&] {
      OffProducerCpu off;
      return cuframes::Publisher(key, o);
    }();
    // READY, or why not. Every failure names what each child said and how it ended.
    const auto fail = [&](const std::string& what) {
      throw std::runtime_error(what + "; the subscribers:" + bench::post_mortem(children));
    };
    const int64_t ready_deadline = cuframes::now_ns() + 120000000000;
    int64_t first_ready = 0, last_ready = 0;
    for (int i = 0; i < subs; ++i) {
      bool timed_out = false;
      const int left_ms = static_cast<int>(
          std::max<int64_t>(0, (ready_deadline - cuframes::now_ns()) / 1000000));
      const std::string line = read_line(children[static_cast<size_t>(i)], left_ms, &timed_out);
      if (line != "READY") {
        fail(timed_out ? "subscriber " + std::to_string(i) + " not READY within 120 s"
                       : "subscriber " + std::to_string(i) + " said \"" + line.substr(0, 200) +
                             "\" instead of READY");
      }
      last_ready = cuframes::now_ns();
      if (first_ready == 0) first_ready = last_ready;
    }
    // Attached: the subscribers said READY after their handshake, so the count is there at once;
    // it is checked anyway, with the most seen, in case one left since.
    const int64_t attach_deadline = cuframes::now_ns() + 30000000000;
    uint32_t most = 0;
    while (pub.stats().subscribers < static_cast<uint32_t>(subs)) {
      most = std::max(most, pub.stats().subscribers);
      if (cuframes::now_ns() > attach_deadline) {
        char what[200];
        std::snprintf(what, sizeof what,
                      "%u of %d subscribers attached within 30 s of the last READY (at most %u; "
                      "READYs over %.1f s)",
                      pub.stats().subscribers, subs, most, (last_ready - first_ready) / 1e9);
        fail(what);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const size_t row = size.w;
    // The decoded frame as its producer holds it: tightly packed in host memory (software
    // decode), NVDEC-style in device memory (rows 256-byte aligned: pitch 2048 for 1920 wide).
    const size_t src_pitch = path == Path::kHost ? row : (row + 255) / 256 * 256;
    const size_t bytes = src_pitch * size.h * 3 / 2;
    std::vector<uint8_t> host(bytes, 0x5a);
    void* dev = nullptr;
#ifdef CUFRAMES_WITH_CUDA
    if (path != Path::kHost) {
      cuda_check(cudaMalloc(&dev, bytes), "cudaMalloc");
      cuda_check(cudaMemset(dev, 0x5a, bytes), "cudaMemset");
      cuda_check(cudaDeviceSynchronize(), "sync");
    }
#endif
    cuframes_source_t src;
    cuframes_source_init(&src);
    const uint8_t* base = path == Path::kHost ? host.data() : static_cast<uint8_t*>(dev);
    src.planes[0] = base;
    src.planes[1] = base + src_pitch * size.h;
    src.pitches[0] = src.pitches[1] = src_pitch;
    src.memory = path == Path::kHost ? CUFRAMES_MEMORY_HOST : CUFRAMES_MEMORY_CUDA;

    const CpuTimes cpu0 = machine_cpu();
    const int64_t start = cuframes::now_ns();
    const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
    const int64_t period = fps > 0 ? static_cast<int64_t>(1e9 / fps) : 0;
    int64_t next = start;
    uint64_t published = 0;
    int64_t publish_ns_total = 0;
    while (cuframes::now_ns() < end) {
      if (period > 0) wait_until_ns(next += period);  // a steady cadence, as a camera has
      const int64_t t0 = cuframes::now_ns();
      if (period > 0) late.push_back(t0 - next);
      if (path == Path::kBaseline) {
#ifdef CUFRAMES_WITH_CUDA
        // Decoded frame (device) -> host shared memory, as NVDEC-to-host stacks do.
        cuframes::Loan loan;
        try {
          loan = pub.loan();
        } catch (const cuframes::Error&) {
          continue;
        }
        cuframes_frame_info_t fi = loan.info();
        cuda_check(cudaMemcpy2D(fi.plane_y, fi.geometry.pitch_y, dev, src_pitch, row,
                                size.h * 3 / 2, cudaMemcpyDeviceToHost),
                   "D2H");
        pub.commit(std::move(loan), t0);
        ++published;
        publish_ns.push_back(cuframes::now_ns() - t0);
        publish_ns_total += publish_ns.back();
#endif
      } else if (pub.publish(src, t0) != 0) {
        ++published;
        publish_ns.push_back(cuframes::now_ns() - t0);
        publish_ns_total += publish_ns.back();
      }
    }
    const CpuTimes cpu1 = machine_cpu();
    if (cpu1.total > cpu0.total) {
      r.steal_pct = 100.0 * (cpu1.steal - cpu0.steal) / (cpu1.total - cpu0.total);
    }
    r.pub_fps = published / seconds;
    r.publish_us = published ? publish_ns_total / 1e3 / published : 0;
#ifdef CUFRAMES_WITH_CUDA
    if (dev != nullptr) cudaFree(dev);
#endif
  }  // the publisher goes: subscribers report

  std::vector<int64_t> lat, wake;
  double sub_fps = 0, cpu = 0;
  for (auto& c : children) {
    std::string line;
    do {
      line = read_line(c);
    } while (!line.empty() && line.rfind("RESULT", 0) != 0);
    uint64_t frames = 0;
    long long cpu_us = 0;
    double secs = 0;
    std::sscanf(line.c_str(), "RESULT frames=%" SCNu64 " cpu_us=%lld seconds=%lf", &frames, &cpu_us,
                &secs);
    for (int64_t v : parse_list(line, " lat=")) lat.push_back(v);
    for (int64_t v : parse_list(line, " wake=")) wake.push_back(v);
    r.frames += frames;
    sub_fps += secs > 0 ? frames / secs : 0;
    cpu += frames > 0 ? static_cast<double>(cpu_us) / frames : 0;
    bench::reap(c);
  }
  r.sub_fps = sub_fps / subs;
  r.cpu_us_per_frame = cpu / subs;
  auto pct = [](std::vector<int64_t>& v, double* p50, double* p99) {
    if (v.empty()) return;
    std::sort(v.begin(), v.end());
    if (p50 != nullptr) *p50 = quantile_us(v, 500);
    *p99 = quantile_us(v, 990);
  };
  pct(lat, &r.p50_us, &r.p99_us);
  pct(wake, &r.wake_p50_us, &r.wake_p99_us);
  if (!wake.empty()) r.slow_wake_pct = share_above_pct(wake, 20000);
  pct(late, nullptr, &r.late_p99_us);
  pct(publish_ns, &r.publish_p50_us, &r.publish_p99_us);
  return r;
}

#ifdef CUFRAMES_WITH_CUDA
// An idle process holding a CUDA context on device 0, as every cuda subscriber does.
int run_idle() {
  cuda_check(cudaSetDevice(0), "cudaSetDevice");
  cuda_check(cudaFree(nullptr), "creating a context");
  std::printf("READY\n");
  std::fflush(stdout);
  for (;;) pause();  // until the parent kills us
}

// p50/p99 of once() in us over many runs: back to back, then paced at the latency phases'
// 200 fps (the GPU idle in between, as it is between camera frames). One printed row.
template <class F>
void floor_row(const Size& size, const char* what, int others, F&& once) {
  double p50[2], p99[2];
  for (int k = 0; k < 2; ++k) {
    const int64_t period = k == 0 ? 0 : 5000000;
    std::vector<int64_t> t;
    int64_t next = cuframes::now_ns();
    for (int i = 0; i < (period ? 600 : 2000); ++i) {
      if (period > 0) wait_until_ns(next += period);  // the latency phases' cadence
      const int64_t t0 = cuframes::now_ns();
      once(t0);
      if (i >= 100) t.push_back(cuframes::now_ns() - t0);
    }
    std::sort(t.begin(), t.end());
    p50[k] = quantile_us(t, 500);
    p99[k] = quantile_us(t, 990);
  }
  std::printf("%-6s %-40s %6d | %8.1f %8.1f | %9.1f %9.1f\n", size.name, what, others, p50[0],
              p99[0], p50[1], p99[1]);
  std::fflush(stdout);
}

// The floor under publish() on the cuda path, and where publish()'s time goes:
//   copy + event sync: a bare device-to-device copy of one frame (NVDEC pitch) into cudaMalloc
//     memory, and the event sync that publication needs;
//   publish(), no subscriber: the same frame through a cuda ring's publish() (the copy into the
//     VMM ring, its wait, the publication);
// first alone on the GPU, then with 4 idle processes holding a CUDA context on it, as
// subscribers do (the GPU time-slices between processes).
void copy_floor(const Size& size) {
  const size_t pitch = (size.w + 255) / 256 * 256, bytes = pitch * size.h * 3 / 2;
  void *a = nullptr, *b = nullptr;
  cudaEvent_t ev;
  cuda_check(cudaMalloc(&a, bytes), "cudaMalloc");
  cuda_check(cudaMalloc(&b, bytes), "cudaMalloc");
  cuda_check(cudaMemset(a, 0x5a, bytes), "cudaMemset");
  cuda_check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "event");
  char tmpl[] = "/tmp/cuframes-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  {
    cuframes::Publisher::Options o;
    o.runtime_dir = dir.c_str();
    o.width = size.w;
    o.height = size.h;
    o.format = CUFRAMES_FORMAT_NV12;
    o.slots = 8;
    o.memory = CUFRAMES_MEMORY_CUDA;
    cuframes::Publisher pub("floor", o);
    cuframes_source_t src;
    cuframes_source_init(&src);
    src.planes[0] = a;
    src.planes[1] = static_cast<uint8_t*>(a) + pitch * size.h;
    src.pitches[0] = src.pitches[1] = pitch;
    src.memory = CUFRAMES_MEMORY_CUDA;
    auto copy = [&](int64_t) {
      cuda_check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, nullptr), "copy");
      cuda_check(cudaEventRecord(ev, nullptr), "record");
      cuda_check(cudaEventSynchronize(ev), "sync");
    };
    auto publish = [&](int64_t t0) { pub.publish(src, t0); };
    char what[2][64];
    std::snprintf(what[0], sizeof what[0], "copy %.1f MB D2D + event sync", bytes / 1e6);
    std::snprintf(what[1], sizeof what[1], "publish(), no subscriber");
    for (const int others : {0, 4}) {
      std::vector<Child> idle;
      for (int i = 0; i < others; ++i) {
        idle.push_back(spawn_self({"--role", "idle"}));
        read_line(idle.back());  // READY: its context exists
      }
      floor_row(size, what[0], others, copy);
      floor_row(size, what[1], others, publish);
      for (Child& c : idle) bench::reap(c);
    }
  }
  const std::string lock = dir + "/floor.lock";
  unlink(lock.c_str());
  rmdir(dir.c_str());
  cudaEventDestroy(ev);
  cudaFree(a);
  cudaFree(b);
}
#endif

// ---------------------------------------------------------------------------------------------
// The machine's wake-up floor, without CUDA or cuframes: `kWakers` processes pinned as the
// subscribers are (CPUs 1..4), at the latency phases' 200 fps.
//   note : each sleeps in poll() on a socket; the parent (CPU 0) writes its send time to each in
//          turn, as publish() sends Notes; latency from that time to poll() returning.
//   timer: each sleeps with ppoll() until 200 us before its next 5 ms tick (what spin_us does
//          before its window); latency is how late it woke.
constexpr int kWakers = 4;
constexpr int kWakeFrames = 600;
constexpr int64_t kWakePeriod = 5000000;

// Child: prints READY, then (after its kWakeFrames, warm-up left out) RESULT lat=l1,l2,... in ns.
int run_waker(const std::string& mode, int index, int64_t start_ns) {
  pin_to_cpu(1 + index);
  std::printf("READY\n");
  std::fflush(stdout);
  std::vector<int64_t> lat;
  if (mode == "note") {
    for (;;) {
      pollfd p{3, POLLIN, 0};
      if (::poll(&p, 1, -1) < 0) break;
      int64_t t0 = 0;
      if (::read(3, &t0, sizeof t0) != static_cast<ssize_t>(sizeof t0)) break;  // EOF: done
      lat.push_back(cuframes::now_ns() - t0);
    }
  } else {
    for (int k = 1; k <= kWakeFrames; ++k) {
      const int64_t target = start_ns + k * kWakePeriod - 200000;
      const int64_t rel = target - cuframes::now_ns();
      if (rel <= 0) continue;
      timespec ts{static_cast<time_t>(rel / 1000000000), static_cast<long>(rel % 1000000000)};
      ::ppoll(nullptr, 0, &ts, nullptr);
      lat.push_back(cuframes::now_ns() - target);
    }
  }
  if (lat.size() > kWarmupFrames) lat.erase(lat.begin(), lat.begin() + kWarmupFrames);
  std::printf("RESULT lat=%s\n", join(lat).c_str());
  std::fflush(stdout);
  return 0;
}

void wake_floor_row(const char* mode, const char* what) {
  std::vector<Child> kids;
  std::vector<int> socks;
  const int64_t start = cuframes::now_ns() + 200000000;  // the timer grid: 200 ms from now
  for (int i = 0; i < kWakers; ++i) {
    int sv[2] = {-1, -1};
    if (std::string(mode) == "note" && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      std::exit(1);
    kids.push_back(spawn_self({"--role", "waker", "--mode", mode, "--index", std::to_string(i),
                               "--start", std::to_string(start)},
                              sv[1]));
    if (sv[1] >= 0) close(sv[1]);
    socks.push_back(sv[0]);
  }
  for (Child& c : kids) read_line(c);  // READY
  if (std::string(mode) == "note") {
    int64_t next = cuframes::now_ns();
    for (int i = 0; i < kWakeFrames; ++i) {
      wait_until_ns(next += kWakePeriod);  // the latency phases' cadence
      const int64_t t0 = cuframes::now_ns();
      for (int fd : socks) {  // a waker that died gives fewer samples, nothing worse
        (void)::send(fd, &t0, sizeof t0, MSG_NOSIGNAL);
      }
    }
    for (int fd : socks) close(fd);
  }
  std::vector<int64_t> all;
  for (Child& c : kids) {
    for (int64_t v : parse_list(read_line(c), " lat=")) all.push_back(v);
    bench::reap(c, /*drain=*/true);
  }
  if (all.empty()) return;
  std::sort(all.begin(), all.end());
  std::printf("%-52s | %7.1f %7.1f %8.1f %8.1f | %6.2f %6.2f\n", what, quantile_us(all, 500),
              quantile_us(all, 990), quantile_us(all, 999), all.back() / 1e3,
              share_above_pct(all, 100000), share_above_pct(all, 200000));
  std::fflush(stdout);
}

void wake_floor() {
  std::printf(
      "The machine's wake-up floor, no CUDA, no cuframes (%d processes pinned as subscribers "
      "are, 200 Hz), us:\n",
      kWakers);
  std::printf("%-52s | %7s %7s %8s %8s | %6s %6s\n", "what", "p50", "p99", "p99.9", "max", ">100 %",
              ">200 %");
  wake_floor_row("note", "woken by a socket write (poll), as by a Note");
  wake_floor_row("timer", "timed sleep (ppoll) ending late, as before spin_us");
  std::printf("\n");
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string v;
  while (std::getline(ss, v, ',')) out.push_back(v);
  return out;
}

void main_table(std::map<std::string, std::string>& args, const std::vector<Path>& paths,
                double seconds, int repeat);
void pubcost_table(std::map<std::string, std::string>& args, const std::vector<Path>& paths,
                   double seconds);

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[std::string(argv[i]).substr(2)] = argv[i + 1];
  cuframes_set_log_handler(nullptr, nullptr, CUFRAMES_LOG_ERROR);
  if (args.count("spin-us")) g_spin_us = static_cast<uint32_t>(std::atoi(args["spin-us"].c_str()));
#ifdef CUFRAMES_WITH_CUDA
  if (args["role"] == "idle") return run_idle();
#endif
  if (args["role"] == "waker") {
    return run_waker(args["mode"], std::atoi(args["index"].c_str()),
                     std::atoll(args["start"].c_str()));
  }
  if (args["role"] == "subscriber") {
    Path p = Path::kHost;
    for (Path q : {Path::kHost, Path::kCuda, Path::kCudaSpin, Path::kBaseline})
      if (args["path"] == path_name(q)) p = q;
    return run_subscriber(args["dir"], args["key"], p, std::atoi(args["index"].c_str()));
  }
  const double seconds = args.count("seconds") ? std::atof(args["seconds"].c_str()) : 3.0;
  const int repeat = args.count("repeat") ? std::max(1, std::atoi(args["repeat"].c_str())) : 1;
  pin_to_cpu(0);
  std::vector<Path> paths = {Path::kHost};
#ifdef CUFRAMES_WITH_CUDA
  int devices = 0;
  if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) {
    paths.push_back(Path::kCuda);
    paths.push_back(Path::kCudaSpin);
    paths.push_back(Path::kBaseline);
  } else {
    std::printf("(no CUDA device: host path only)\n");
  }
#else
  std::printf("(built without CUDA: host path only)\n");
#endif
  // The paths of a comma-separated list, among those this machine can run.
  auto chosen = [&](const std::string& list) {
    const std::vector<std::string> names = split(list);
    std::vector<Path> out;
    for (Path p : paths)
      if (std::find(names.begin(), names.end(), path_name(p)) != names.end()) out.push_back(p);
    return out;
  };
  const std::vector<Path> pubcost_paths = chosen(args.count("pubcost") ? args["pubcost"] : "");
  if (args.count("only")) paths = chosen(args["only"]);
  if (args["table"] == "0") paths.clear();

  std::printf(
      "cuframes_bench: %.1f s per phase; latency paced at 200 fps, frames/s flat out; "
      "cuda-spin with spin_us %u\n",
      seconds, g_spin_us);
  if (args["floor"] != "0") wake_floor();
#ifdef CUFRAMES_WITH_CUDA
  if (args["floor"] != "0" &&
      (std::find(paths.begin(), paths.end(), Path::kCuda) != paths.end() ||
       std::find(paths.begin(), paths.end(), Path::kCudaSpin) != paths.end())) {
    std::printf(
        "The floor under publish() on the cuda path, us (paced: 200 fps; others: idle "
        "processes with a CUDA context on the GPU):\n");
    std::printf("%-6s %-40s %6s | %8s %8s | %9s %9s\n", "size", "what", "others", "b2b p50",
                "b2b p99", "paced p50", "paced p99");
    for (const std::string& sz : split(args.count("sizes") ? args["sizes"] : "1080p,4k"))
      for (const Size& s : kSizes)
        if (sz == s.name) copy_floor(s);
    std::printf("\n");
  }
#endif
  if (!paths.empty()) main_table(args, paths, seconds, repeat);
  if (!pubcost_paths.empty()) pubcost_table(args, pubcost_paths, seconds);
  return 0;
}

namespace {

// One scenario's row, or its error: a failed scenario never stops the bench.
template <class F>
bool scenario(const char* size, Path p, int subs, F&& body) {
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    std::printf("%-6s %-9s %4d | FAILED: %s\n", size, path_name(p), subs, e.what());
    std::fflush(stdout);
    return false;
  }
}

void main_table(std::map<std::string, std::string>& args, const std::vector<Path>& paths,
                double seconds, int repeat) {
  std::vector<std::string> sizes = split(args.count("sizes") ? args["sizes"] : "1080p,4k");
  std::vector<std::string> subs = split(args.count("subs") ? args["subs"] : "1,4,16");
  std::printf(
      "Latency: from the publish() call to the frame usable by the subscriber (p50/p99);\n"
      "wake: from publication (copy done) to the subscriber holding it (wake>20: share of\n"
      "frames later than 20 us, i.e. a sleeping subscriber woken); publish: time in\n"
      "publish() (the copy into the ring); pub late: the publisher's start behind its\n"
      "schedule; steal: the VM's CPU time taken by its host in the paced phase. Paced at\n"
      "200 fps; max fps flat out. Each subscriber's first 10 frames (warm-up) are left out.\n\n");
  std::printf("%-6s %-9s %4s | %8s %8s | %8s %8s %7s | %8s %8s | %8s | %9s | %9s %9s | %5s\n",
              "size", "path", "subs", "p50 us", "p99 us", "wake p50", "wake p99", "wake>20",
              "publish", "pub late", "sub fps", "sub CPU", "max pub", "max sub", "steal");
  std::printf("%-6s %-9s %4s | %8s %8s | %8s %8s %7s | %8s %8s | %8s | %9s | %9s %9s | %5s\n", "",
              "", "", "", "", "us", "us", "%", "us", "p99 us", "", "us/frame", "fps", "fps", "%");
  for (const std::string& sz : sizes) {
    const Size* size = nullptr;
    for (const Size& s : kSizes)
      if (sz == s.name) size = &s;
    if (size == nullptr) continue;
    for (const std::string& n : subs) {
      const int count = std::atoi(n.c_str());
      for (int rep = 0; rep < repeat; ++rep)
        for (Path p : paths) {
          scenario(size->name, p, count, [&] {
            PhaseResult paced = run_phase(*size, p, count, seconds, 200);
            PhaseResult flat = run_phase(*size, p, count, seconds, 0);
            std::printf(
                "%-6s %-9s %4d | %8.1f %8.1f | %8.1f %8.1f %7.2f | %8.1f %8.1f | %8.0f | "
                "%9.1f | %9.0f %9.0f | %5.2f\n",
                size->name, path_name(p), count, paced.p50_us, paced.p99_us, paced.wake_p50_us,
                paced.wake_p99_us, paced.slow_wake_pct, paced.publish_us, paced.late_p99_us,
                paced.sub_fps, paced.cpu_us_per_frame, flat.pub_fps, flat.sub_fps, paced.steal_pct);
            std::fflush(stdout);
          });
        }
    }
  }
}

// The publisher's cost of many subscribers: publish() with 1 and with N subscribers sleeping in
// next_frame (each needs its wake-up), paced at 200 fps, 1080p; rounds alternate 1 and N so
// that drifts of the machine hit both. Target: N's median p50 within 1.5x of 1's.
void pubcost_table(std::map<std::string, std::string>& args, const std::vector<Path>& paths,
                   double seconds) {
  const int many = args.count("pubcost-subs") ? std::atoi(args["pubcost-subs"].c_str()) : 64;
  const int rounds =
      args.count("pubcost-rounds") ? std::max(1, std::atoi(args["pubcost-rounds"].c_str())) : 3;
  const Size& size = kSizes[0];
  std::printf(
      "\nThe publisher's cost of subscribers: publish() in us, 1 against %d sleeping "
      "subscribers, %s, paced at 200 fps, %d rounds alternating (target: ratio of the "
      "p50 medians <= 1.5)\n",
      many, size.name, rounds);
  const std::string p50_many = "p50 (" + std::to_string(many) + ")";
  const std::string p99_many = "p99 (" + std::to_string(many) + ")";
  std::printf("%-9s %5s | %12s %12s | %12s %12s | %8s | %s\n", "path", "round", "p50 (1 sub)",
              "p99 (1 sub)", p50_many.c_str(), p99_many.c_str(), "sub fps",
              "frames delivered (N run)");
  for (Path p : paths) {
    std::vector<double> one, lots;
    for (int r = 0; r < rounds; ++r) {
      PhaseResult a, b;
      bool ok = scenario(size.name, p, 1, [&] { a = run_phase(size, p, 1, seconds, 200); });
      ok = scenario(size.name, p, many, [&] { b = run_phase(size, p, many, seconds, 200); }) && ok;
      if (!ok) continue;
      one.push_back(a.publish_p50_us);
      lots.push_back(b.publish_p50_us);
      std::printf("%-9s %5d | %12.1f %12.1f | %12.1f %12.1f | %8.0f | %llu\n", path_name(p), r + 1,
                  a.publish_p50_us, a.publish_p99_us, b.publish_p50_us, b.publish_p99_us, b.sub_fps,
                  static_cast<unsigned long long>(b.frames));
      std::fflush(stdout);
    }
    if (one.empty()) continue;
    std::sort(one.begin(), one.end());
    std::sort(lots.begin(), lots.end());
    const double m1 = one[one.size() / 2], mn = lots[lots.size() / 2];
    std::printf("%-9s %5s | %12.1f %12s | %12.1f %12s | ratio %.2fx (%s)\n", path_name(p), "median",
                m1, "", mn, "", mn / m1, mn / m1 <= 1.5 ? "within 1.5x" : "OVER 1.5x");
    std::fflush(stdout);
  }
}

}  // namespace
