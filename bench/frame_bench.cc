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
// being usable by the subscriber: host pointer (host), device pointer with the consumer stream
// synchronised (cuda: what a detector's synchronised tensor costs), or the H2D copy completed on
// its device (baseline). Each scenario runs a paced phase (latency, 200 fps) and a
// flat-out phase (frames/s). Subscribers are separate processes (fork+exec of this binary); each
// leaves its first 10 frames (warm-up) out of its figures.
//
// Before the scenarios it measures the floors under them: a bare copy + event sync and publish()
// alone (cuda path), and the machine's own wake-up latency without CUDA or cuframes (a sleeping
// process woken by a socket write, and a timed sleep's lateness: what a sleeping subscriber, and
// spin_us's window, stand on).
//
// A scenario that fails (a publisher refused, subscribers that never attach, a subscriber that
// gives no result) prints its error in its row, with what each subscriber process said and how
// it ended (bench_child.h), and the bench goes on with the next one; its subscriber processes are
// killed. Subscribers wait for the publisher as long as it lives (64 processes making CUDA
// contexts at once take many seconds before the first frame).
//
// --pubcost PATHS adds the publisher's cost of many subscribers: publish() p50 with 1 and with
// N (--pubcost-subs, default 64) sleeping subscribers, paced at 200 fps, the two alternating in
// --pubcost-rounds rounds (default 3), with the ratio of their medians.
//
//   cuframes_bench [--seconds S] [--only host,cuda,cuda-spin,baseline] [--sizes 1080p,4k]
//                  [--subs 1,4,16] [--spin-us 200] [--repeat N (rows per scenario)]
//                  [--floor 0 (skip the floors)] [--table 0 (skip the main table)]
//                  [--pubcost host,cuda] [--pubcost-subs 64] [--pubcost-rounds 3]
//
// --role producer publishes alone, for subscribers of another program (bench/python_bench.py's
// cuframes-cpub arm: the C publisher under the same Python subscribers as its own):
//   cuframes_bench --role producer --dir D --key K --sizes 1080p|4k --subs N --slots S
//                  [--path cuda|host] [--seconds S] [--fps 200]   (frame_bench.h: run_producer)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime.h>
#endif

#include "cuframes/cuframes.hpp"
#include "frame_bench.h"

using namespace fbench;

namespace {

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
  if (args["role"] == "producer") {
    const Path p = args["path"] == "host" ? Path::kHost : Path::kCuda;
    for (const Size& s : kSizes) {
      if (args["sizes"] == s.name) {
        return run_producer(args["dir"], args["key"], s, p, std::atoi(args["subs"].c_str()),
                            static_cast<uint32_t>(std::atoi(args["slots"].c_str())), seconds,
                            args.count("fps") ? std::atof(args["fps"].c_str()) : 200.0);
      }
    }
    std::printf("ERROR producer: unknown --sizes '%s' (1080p or 4k)\n", args["sizes"].c_str());
    return 2;
  }
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
      "Latency: from the publish() call to the frame usable by the subscriber (p50/p99; cuda:\n"
      "its consumer stream synchronised); after pub: the same from publication (p50); wake:\n"
      "from publication (copy done) to the subscriber holding it, before that sync (wake>20:\n"
      "share of frames later than 20 us, i.e. a sleeping subscriber woken); publish: time in\n"
      "publish() (the copy into the ring), p50; pub late: the publisher's start behind its\n"
      "schedule; steal: the VM's CPU time taken by its host in the paced phase. Paced at\n"
      "200 fps; max fps flat out. Each subscriber's first 10 frames (warm-up) are left out.\n\n");
  std::printf("%-6s %-9s %4s | %8s %8s %9s | %8s %8s %7s | %8s %8s | %8s | %9s | %9s %9s | %5s\n",
              "size", "path", "subs", "p50 us", "p99 us", "after pub", "wake p50", "wake p99",
              "wake>20", "publish", "pub late", "sub fps", "sub CPU", "max pub", "max sub",
              "steal");
  std::printf("%-6s %-9s %4s | %8s %8s %9s | %8s %8s %7s | %8s %8s | %8s | %9s | %9s %9s | %5s\n",
              "", "", "", "", "", "p50 us", "us", "us", "%", "us", "p99 us", "", "us/frame", "fps",
              "fps", "%");
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
                "%-6s %-9s %4d | %8.1f %8.1f %9.1f | %8.1f %8.1f %7.2f | %8.1f %8.1f | %8.0f | "
                "%9.1f | %9.0f %9.0f | %5.2f\n",
                size->name, path_name(p), count, paced.p50_us, paced.p99_us, paced.after_p50_us,
                paced.wake_p50_us, paced.wake_p99_us, paced.slow_wake_pct, paced.publish_p50_us,
                paced.late_p99_us, paced.sub_fps, paced.cpu_us_per_frame, flat.pub_fps,
                flat.sub_fps, paced.steal_pct);
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
