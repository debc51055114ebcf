// cuframes-demo: one publisher and one subscriber process sharing 1080p NV12 frames through a
// host-memory ring. The subscriber verifies every frame's content and prints fps and
// publish->receive latency once a second.
//
//   cuframes-demo [--seconds N] [--fps F] [--width W] [--height H] [--key KEY] [--subscribers N]
//
// With --subscribe KEY it only subscribes to an existing publisher (cuframes-service's cameras
// are "cam-<name>") for --seconds and prints the same figures; frames of the service's testsrc
// are checked against their stamped seq (host memory only).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuframes/cuframes.hpp"
#include "cuframes/pattern.hpp"

namespace {

struct Args {
  double seconds = 5;
  double fps = 60;
  uint32_t width = 1920, height = 1080;
  int subscribers = 1;
  std::string key = "demo";
  std::string subscribe;  // attach to this existing key only
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "cuframes-demo: %s needs a value\n", f.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (f == "--seconds")
      a.seconds = std::atof(val());
    else if (f == "--fps")
      a.fps = std::atof(val());
    else if (f == "--width")
      a.width = static_cast<uint32_t>(std::atoi(val()));
    else if (f == "--height")
      a.height = static_cast<uint32_t>(std::atoi(val()));
    else if (f == "--subscribers")
      a.subscribers = std::atoi(val());
    else if (f == "--key")
      a.key = val();
    else if (f == "--subscribe")
      a.subscribe = val();
    else {
      std::fprintf(stderr,
                   "usage: cuframes-demo [--seconds N] [--fps F] [--width W] [--height H] "
                   "[--subscribers N] [--key KEY] | --subscribe KEY [--seconds N]\n");
      std::exit(f == "--help" || f == "-h" ? 0 : 2);
    }
  }
  if (a.fps <= 0 || a.seconds <= 0 || a.subscribers < 1) {
    std::fprintf(stderr, "cuframes-demo: --fps, --seconds and --subscribers must be positive\n");
    std::exit(2);
  }
  return a;
}

double percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * (v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return static_cast<double>(v[k]);
}

// The subscriber process: returns the exit code. `stamp_only`: frames come from elsewhere
// (cuframes-service's testsrc): check the seq stamped in the first 8 bytes, not the checksum.
int run_subscriber(const Args& a, int index, const std::string& key, bool stamp_only,
                   double seconds) {
  cuframes::Subscriber::Options o;
  std::string name = "demo-sub-" + std::to_string(index);
  o.consumer_name = name.c_str();
  o.connect_timeout_ms = 10000;
  (void)a;
  try {
    cuframes::Subscriber sub(key, o);
    std::printf("[%s] subscribed to '%s': %s %ux%u in %s memory\n", name.c_str(), key.c_str(),
                cuframes_format_name(sub.geometry().format), sub.geometry().width,
                sub.geometry().height, sub.memory() == CUFRAMES_MEMORY_CUDA ? "cuda" : "host");
    const int64_t end =
        seconds > 0 ? cuframes::now_ns() + static_cast<int64_t>(seconds * 1e9) : INT64_MAX;
    std::vector<int64_t> lat;
    uint64_t frames = 0, bad = 0, total = 0;
    // The rate counts the frames after the first, from its arrival on: N frames over N frame
    // intervals (from the attach, the frame already in the ring made 31 fps of a 30 fps source).
    int64_t window = 0;
    while (cuframes::now_ns() < end) {
      cuframes::Frame f;
      cuframes_status_t st = sub.try_next(1000, &f);
      if (st == CUFRAMES_ERR_PUBLISHER_GONE) break;
      if (st == CUFRAMES_ERR_FRAME_TIMEOUT) continue;
      cuframes::check(st);
      cuframes_frame_info_t fi = f.info();
      lat.push_back(cuframes::now_ns() - fi.publish_ns);
      std::string why;
      if (stamp_only) {
        if (fi.memory == CUFRAMES_MEMORY_HOST && cuframes::pattern::stamped_seq(fi) != fi.seq) {
          ++bad;
          std::fprintf(stderr, "[%s] BAD FRAME: seq %llu carries %llu\n", name.c_str(),
                       static_cast<unsigned long long>(fi.seq),
                       static_cast<unsigned long long>(cuframes::pattern::stamped_seq(fi)));
        }
      } else if (!cuframes::pattern::verify(fi, fi.seq, &why)) {
        ++bad;
        std::fprintf(stderr, "[%s] BAD FRAME: %s\n", name.c_str(), why.c_str());
      }
      f.release();
      ++total;
      int64_t now = cuframes::now_ns();
      if (window == 0) {
        window = now;
        continue;
      }
      ++frames;
      if (now - window >= 1000000000) {
        double secs = (now - window) / 1e9;
        cuframes_subscriber_stats_t s = sub.stats();
        std::printf(
            "[%s] fps %6.1f  latency p50 %7.1f us  p99 %7.1f us  gaps %llu  verified %llu/%llu\n",
            name.c_str(), frames / secs, percentile(lat, 0.5) / 1e3, percentile(lat, 0.99) / 1e3,
            static_cast<unsigned long long>(s.gaps), static_cast<unsigned long long>(total - bad),
            static_cast<unsigned long long>(total));
        std::fflush(stdout);
        lat.clear();
        frames = 0;
        window = now;
      }
    }
    std::printf("[%s] done: %llu frames received, %llu bad\n", name.c_str(),
                static_cast<unsigned long long>(total), static_cast<unsigned long long>(bad));
    return bad == 0 && total > 0 ? 0 : 1;
  } catch (const cuframes::Error& e) {
    std::fprintf(stderr, "[%s] %s\n", name.c_str(), e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (!a.subscribe.empty()) return run_subscriber(a, 0, a.subscribe, true, a.seconds);
  // Subscribers are forked before the publisher exists (and has threads); they wait for it.
  std::vector<pid_t> children;
  for (int i = 0; i < a.subscribers; ++i) {
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 1;
    }
    if (pid == 0) _exit(run_subscriber(a, i, a.key, false, 0));
    children.push_back(pid);
  }

  int rc = 0;
  try {
    cuframes::Publisher::Options o;
    o.width = a.width;
    o.height = a.height;
    o.format = CUFRAMES_FORMAT_NV12;
    o.memory = CUFRAMES_MEMORY_HOST;
    cuframes::Publisher pub(a.key, o);
    cuframes_geometry_t g = pub.geometry();
    std::printf("[publisher] '%s': NV12 %ux%u (pitch %u) on host memory, %.0f fps for %.0f s\n",
                a.key.c_str(), g.width, g.height, g.pitch_y, a.fps, a.seconds);
    const int64_t period = static_cast<int64_t>(1e9 / a.fps);
    const int64_t start = cuframes::now_ns();
    const int64_t end = start + static_cast<int64_t>(a.seconds * 1e9);
    for (int64_t t = start; t < end; t += period) {
      while (cuframes::now_ns() < t) {
        int64_t left = t - cuframes::now_ns();
        if (left > 0) usleep(static_cast<useconds_t>(std::min<int64_t>(left / 1000, 100000)));
      }
      cuframes::Loan loan;
      try {
        loan = pub.loan();
      } catch (const cuframes::Error& e) {
        if (e.status() != CUFRAMES_ERR_FRAME_TIMEOUT) throw;
        continue;  // every slot held: this frame is dropped (and counted)
      }
      cuframes_frame_info_t fi = loan.info();
      cuframes::pattern::fill(fi, pub.stats().published + 1);
      pub.commit(std::move(loan), t);
    }
    cuframes_publisher_stats_t s = pub.stats();
    std::printf("[publisher] done: %llu published, %llu dropped\n",
                static_cast<unsigned long long>(s.published),
                static_cast<unsigned long long>(s.dropped));
  } catch (const cuframes::Error& e) {
    std::fprintf(stderr, "[publisher] %s\n", e.what());
    rc = 1;
  }
  // The publisher is gone now: each subscriber sees PUBLISHER_GONE and exits.
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  return rc;
}
