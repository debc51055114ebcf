// cuframes_bench: the floors under the scenarios (frame_bench.h).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cstring>

#include "bench_child.h"
#include "cuframes/cuframes.hpp"
#include "frame_bench.h"

namespace fbench {

using bench::Child;
using bench::read_line;
using bench::spawn_self;

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

}  // namespace fbench
