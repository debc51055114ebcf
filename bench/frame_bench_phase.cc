// cuframes_bench: one phase of a scenario (frame_bench.h): the publisher in this process, the
// subscribers in processes of their own (this binary with --role subscriber).
#include <poll.h>
#include <sys/wait.h>

#include <chrono>
#include <cinttypes>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "bench_child.h"
#include "cuframes/cuframes.hpp"
#include "frame_bench.h"

namespace fbench {

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
  std::vector<int64_t> lat, after, wake;  // from the pts, from the publication (ns)
  lat.reserve(100000);
  after.reserve(100000);
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
  const pid_t parent = getppid();  // another one later: the bench is gone (a subreaper took us)
  const char* ended = "publisher-gone";  // one word: the RESULT line is split at spaces
  for (;;) {
    cuframes::Frame f;
    cuframes_status_t st = sub.try_next(1000, &f);
    if (st == CUFRAMES_ERR_PUBLISHER_GONE) break;
    if (st == CUFRAMES_ERR_FRAME_TIMEOUT) {
      if (getppid() != parent) {
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
    const int64_t now = cuframes::now_ns();
    int64_t usable = now;
#ifdef CUFRAMES_WITH_CUDA
    if (path == Path::kCuda || path == Path::kCudaSpin) {
      // Usable: the consumer stream, which the frame's arrival ordered after the publisher's
      // copy, synchronised (as a Python detector's latency to a synchronised tensor is).
      cuda_check(cudaStreamSynchronize(stream), "sync");
      usable = cuframes::now_ns();
    }
#endif
    f.release();
    if (!measured) continue;
    lat.push_back(usable - fi.pts_ns);
    after.push_back(usable - fi.publish_ns);
    wake.push_back(now - fi.publish_ns);
    if (t_first == 0) t_first = now;
    t_last = now;
    ++frames;
  }
  double cpu = cpu0 < 0 ? 0 : cpu_seconds() - cpu0;
  std::ostringstream out;
  out << "RESULT frames=" << frames << " cpu_us=" << static_cast<long long>(cpu * 1e6)
      << " seconds=" << (t_last - t_first) / 1e9 << " lat=" << join(lat) << " after=" << join(after)
      << " wake=" << join(wake) << " ended=" << ended;
  std::printf("%s\n", out.str().c_str());
  std::fflush(stdout);
  return 0;
}

using bench::Child;
using bench::read_line;
using bench::spawn_self;

Child spawn_subscriber(const std::string& dir, const std::string& key, Path path, int index) {
  return spawn_self({"--role", "subscriber", "--dir", dir, "--key", key, "--path", path_name(path),
                     "--spin-us", std::to_string(g_spin_us), "--index", std::to_string(index)});
}

namespace {

// The publishing loop of a session (run_phase, run_producer): the frame as its producer holds
// it, published paced (fps > 0) or flat out for `seconds`. even_pts: every pts even (t0 & ~1;
// python_bench.py tells its frames' paths apart by the pts's parity).
Publishing publish_for(cuframes::Publisher& pub, const Size& size, Path path, double seconds,
                       double fps, bool even_pts) {
  Publishing out;
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
  while (cuframes::now_ns() < end) {
    if (period > 0) wait_until_ns(next += period);  // a steady cadence, as a camera has
    const int64_t t0 = cuframes::now_ns();
    const int64_t pts = even_pts ? t0 & ~int64_t{1} : t0;
    if (period > 0) out.late.push_back(t0 - next);
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
      cuda_check(cudaMemcpy2D(fi.plane_y, fi.geometry.pitch_y, dev, src_pitch, row, size.h * 3 / 2,
                              cudaMemcpyDeviceToHost),
                 "D2H");
      pub.commit(std::move(loan), pts);
      ++out.published;
      out.publish_ns.push_back(cuframes::now_ns() - t0);
#endif
    } else if (pub.publish(src, pts) != 0) {
      ++out.published;
      out.publish_ns.push_back(cuframes::now_ns() - t0);
    }
  }
  const CpuTimes cpu1 = machine_cpu();
  if (cpu1.total > cpu0.total) {
    out.steal_pct = 100.0 * (cpu1.steal - cpu0.steal) / (cpu1.total - cpu0.total);
  }
#ifdef CUFRAMES_WITH_CUDA
  if (dev != nullptr) cudaFree(dev);
#endif
  return out;
}

// The ring `key` in dir for size on path, made off the producer's CPU (OffProducerCpu).
cuframes::Publisher open_publisher(const std::string& dir, const std::string& key, const Size& size,
                                   Path path, uint32_t slots) {
  cuframes::Publisher::Options o;
  o.runtime_dir = dir.c_str();
  o.width = size.w;
  o.height = size.h;
  o.format = CUFRAMES_FORMAT_NV12;
  o.slots = slots;
  o.memory = on_gpu_ring(path) ? CUFRAMES_MEMORY_CUDA : CUFRAMES_MEMORY_HOST;
  OffProducerCpu off;
  return cuframes::Publisher(key, o);
}

// Waits until pub has `subs` subscribers attached, until deadline_ns; empty, or what went wrong.
std::string wait_attached(cuframes::Publisher& pub, int subs, int64_t deadline_ns) {
  uint32_t most = 0;
  while (pub.stats().subscribers < static_cast<uint32_t>(subs)) {
    most = std::max(most, pub.stats().subscribers);
    if (cuframes::now_ns() > deadline_ns) {
      char what[160];
      std::snprintf(what, sizeof what, "%u of %d subscribers attached (at most %u)",
                    pub.stats().subscribers, subs, most);
      return what;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return {};
}

}  // namespace

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
  Publishing pubd;  // the times inside each publish() and the starts behind schedule
  {
    // A slot per subscriber (each may hold one) plus the newest and room to write: fewer
    // drops. At most CUFRAMES_MAX_SLOTS: past that, the ring drops when every slot is held.
    cuframes::Publisher pub = open_publisher(
        dir, key, size, path, static_cast<uint32_t>(std::clamp(subs + 4, 8, CUFRAMES_MAX_SLOTS)));
    // READY, or why not. Every failure names what each child said and how it ended.
    const auto fail = [&](const std::string& what) {
      throw std::runtime_error(what + "; the subscribers:" + bench::post_mortem(children));
    };
    const int64_t ready_deadline = cuframes::now_ns() + 120000000000;
    int64_t first_ready = 0, last_ready = 0;
    for (int i = 0; i < subs; ++i) {
      bool timed_out = false;
      const int left_ms =
          static_cast<int>(std::max<int64_t>(0, (ready_deadline - cuframes::now_ns()) / 1000000));
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
    // it is checked anyway, in case one left since.
    const std::string attached = wait_attached(pub, subs, cuframes::now_ns() + 30000000000);
    if (!attached.empty()) {
      char spread[80];
      std::snprintf(spread, sizeof spread, " within 30 s of the last READY (READYs over %.1f s)",
                    (last_ready - first_ready) / 1e9);
      fail(attached + spread);
    }
    pubd = publish_for(pub, size, path, seconds, fps, false);
    r.steal_pct = pubd.steal_pct;
    r.pub_fps = pubd.published / seconds;
  }  // the publisher goes: subscribers report

  std::vector<int64_t> lat, after, wake;
  double sub_fps = 0, cpu = 0;
  const int64_t result_deadline = cuframes::now_ns() + 60000000000;  // a hung child ends it
  for (size_t i = 0; i < children.size(); ++i) {
    Child& c = children[i];
    std::string line;
    bool timed_out = false;
    do {
      const int left_ms =
          static_cast<int>(std::max<int64_t>(0, (result_deadline - cuframes::now_ns()) / 1000000));
      line = read_line(c, left_ms, &timed_out);
    } while (!timed_out && !line.empty() && line.rfind("RESULT", 0) != 0);
    if (line.rfind("RESULT", 0) != 0) {
      throw std::runtime_error(
          "subscriber " + std::to_string(i) +
          (timed_out ? " gave no RESULT within 60 s" : " ended without RESULT") +
          " after the publisher went; the subscribers:" + bench::post_mortem(children));
    }
    uint64_t frames = 0;
    long long cpu_us = 0;
    double secs = 0;
    std::sscanf(line.c_str(), "RESULT frames=%" SCNu64 " cpu_us=%lld seconds=%lf", &frames, &cpu_us,
                &secs);
    for (int64_t v : parse_list(line, " lat=")) lat.push_back(v);
    for (int64_t v : parse_list(line, " after=")) after.push_back(v);
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
    if (p99 != nullptr) *p99 = quantile_us(v, 990);
  };
  pct(lat, &r.p50_us, &r.p99_us);
  pct(after, &r.after_p50_us, nullptr);
  pct(wake, &r.wake_p50_us, &r.wake_p99_us);
  if (!wake.empty()) r.slow_wake_pct = share_above_pct(wake, 20000);
  pct(pubd.late, nullptr, &r.late_p99_us);
  pct(pubd.publish_ns, &r.publish_p50_us, &r.publish_p99_us);
  return r;
}

// The producer alone (--role producer): python_bench.py's C publisher for Python subscribers.
int run_producer(const std::string& dir, const std::string& key, const Size& size, Path path,
                 int subs, uint32_t slots, double seconds, double fps) {
  pin_to_cpu(0);
  const auto fail = [](const std::string& what) {
    std::printf("ERROR producer: %s\n", what.c_str());
    std::fflush(stdout);
    return 1;
  };
  try {
    cuframes::Publisher pub = open_publisher(dir, key, size, path, slots);
    std::printf("READY\n");
    std::fflush(stdout);
    const std::string attached = wait_attached(pub, subs, cuframes::now_ns() + 120000000000);
    if (!attached.empty()) return fail(attached + " within 120 s");
    const Publishing p = publish_for(pub, size, path, seconds, fps, true);
    std::printf("RESULT published=%" PRIu64 " publish=%s late=%s\n", p.published,
                join(p.publish_ns).c_str(), join(p.late).c_str());
    std::fflush(stdout);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;  // the publisher went when its block ended: the subscribers report
}

}  // namespace fbench
