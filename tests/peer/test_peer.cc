// cuframes_test_peer: the other process in the cross-process tests. It talks to the test over
// stdout, one line per event ("READY ...", "RESULT key=value ...").
//
//   publish   --dir D --key K [--width W --height H --slots N --policy drop|wait
//             --wait-timeout MS --count N (-1 forever) --fps F (0 full rate)
//             --wait-subscribers N --linger]
//   subscribe --dir D --key K [--mode newest|strict --name NAME --count N --hold-max-us US
//             --seed S --timeout MS --connect-timeout MS]
//   hold      --dir D --key K --frames N     (holds N frames, then waits to be killed)
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/frame_check.h"
#include "cuframes/cuframes.hpp"

namespace {

std::map<std::string, std::string> g_args;

std::string arg(const std::string& k, const std::string& def = "") {
  auto it = g_args.find(k);
  return it == g_args.end() ? def : it->second;
}
long long num(const std::string& k, long long def) {
  auto it = g_args.find(k);
  return it == g_args.end() ? def : std::atoll(it->second.c_str());
}
bool flag(const std::string& k) {
  return g_args.count(k) != 0;
}

void say(const std::string& s) {
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

int run_publish() {
  if (flag("nofile")) {  // few fds: to check the publisher copes with running out
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = static_cast<rlim_t>(num("nofile", 64));
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  cuframes::Publisher::Options o;
  std::string dir = arg("dir");
  o.runtime_dir = dir.c_str();
  o.width = static_cast<uint32_t>(num("width", 64));
  o.height = static_cast<uint32_t>(num("height", 32));
  o.slots = static_cast<uint32_t>(num("slots", 4));
  o.policy = arg("policy", "drop") == "wait" ? CUFRAMES_POLICY_STRICT_WAIT : CUFRAMES_POLICY_DROP;
  o.wait_timeout_ms = static_cast<int32_t>(num("wait-timeout", 5000));
  const char* mem = std::getenv("CUFRAMES_TEST_MEMORY");
  o.memory =
      mem != nullptr && std::string(mem) == "cuda" ? CUFRAMES_MEMORY_CUDA : CUFRAMES_MEMORY_HOST;
  cuframes::Publisher pub(arg("key"), o);
  const long long count = num("count", 0);
  const double fps = static_cast<double>(num("fps", 0));
  const long long want_subs = num("wait-subscribers", 0);
  // Announce before waiting for subscribers: the test starts them once it sees this line.
  cuframes_ring_status_t status{};
  {
    cuframes::Observer self(arg("key"), 1000, dir.c_str());
    status = self.read().ring;
  }
  say("READY pid=" + std::to_string(getpid()) + " epoch=" + std::to_string(status.epoch));
  while (static_cast<long long>(pub.stats().subscribers) < want_subs) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int64_t period = fps > 0 ? static_cast<int64_t>(1e9 / fps) : 0;
  int64_t next = cuframes::now_ns();
  long long timeouts = 0;
  for (long long i = 0; count < 0 || i < count; ++i) {
    if (period > 0) {
      next += period;
      while (cuframes::now_ns() < next) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    cuframes::Loan loan;
    try {
      loan = pub.loan();
    } catch (const cuframes::Error& e) {
      if (e.status() != CUFRAMES_ERR_FRAME_TIMEOUT) throw;
      ++timeouts;
      continue;
    }
    cftest::fill_frame(loan.info(), pub.stats().published + 1);
    pub.commit(std::move(loan));
  }
  cuframes_publisher_stats_t s = pub.stats();
  say("DONE published=" + std::to_string(s.published) + " dropped=" + std::to_string(s.dropped) +
      " timeouts=" + std::to_string(timeouts));
  if (flag("linger")) {
    for (;;) pause();
  }
  return 0;
}

int run_subscribe() {
  cuframes::Subscriber::Options o;
  std::string dir = arg("dir"), name = arg("name");
  o.runtime_dir = dir.c_str();
  o.mode =
      arg("mode", "newest") == "strict" ? CUFRAMES_MODE_STRICT_ORDER : CUFRAMES_MODE_NEWEST_ONLY;
  if (!name.empty()) o.consumer_name = name.c_str();
  o.connect_timeout_ms = static_cast<int32_t>(num("connect-timeout", 10000));
  cuframes::Subscriber sub(arg("key"), o);
  say("READY name=" + sub.name());
  const long long count = num("count", -1);
  const long long hold_max_us = num("hold-max-us", 0);
  const int timeout = static_cast<int>(num("timeout", 10000));
  std::mt19937_64 rng(static_cast<uint64_t>(num("seed", getpid())));
  long long frames = 0, bad = 0, overruns = 0, timeouts = 0, disorder = 0;
  uint64_t first = 0, last = 0;
  std::string why;
  const char* end = "count";
  while (count < 0 || frames < count) {
    cuframes::Frame f;
    cuframes_status_t st = sub.try_next(timeout, &f);
    if (st == CUFRAMES_ERR_PUBLISHER_GONE) {
      end = "gone";
      break;
    }
    if (st == CUFRAMES_ERR_FRAME_TIMEOUT) {
      ++timeouts;
      end = "timeout";
      break;
    }
    if (st == CUFRAMES_ERR_OVERRUN) {
      ++overruns;
      last = 0;  // the next frame legitimately jumps
      continue;
    }
    cuframes::check(st);
    const cuframes_frame_info_t fi = f.info();
    if (!cftest::verify_frame(fi, fi.seq, &why)) {
      ++bad;
      std::fprintf(stderr, "peer %s: on acquire: %s\n", sub.name().c_str(), why.c_str());
    }
    if (first == 0) first = fi.seq;
    if (last != 0 && o.mode == CUFRAMES_MODE_STRICT_ORDER && fi.seq != last + 1) ++disorder;
    if (last != 0 && fi.seq <= last) ++disorder;
    last = fi.seq;
    if (hold_max_us > 0) {
      std::uniform_int_distribution<long long> d(0, hold_max_us);
      std::this_thread::sleep_for(std::chrono::microseconds(d(rng)));
    }
    // Still intact after the hold: the publisher did not write into a held slot.
    if (!cftest::verify_frame(fi, fi.seq, &why)) {
      ++bad;
      std::fprintf(stderr, "peer %s: before release: %s\n", sub.name().c_str(), why.c_str());
    }
    f.release();
    ++frames;
  }
  cuframes_subscriber_stats_t s = sub.stats();
  say("RESULT frames=" + std::to_string(frames) + " bad=" + std::to_string(bad) +
      " overruns=" + std::to_string(overruns) + " timeouts=" + std::to_string(timeouts) +
      " disorder=" + std::to_string(disorder) + " first=" + std::to_string(first) +
      " last=" + std::to_string(last) + " gaps=" + std::to_string(s.gaps) +
      " stat_frames=" + std::to_string(s.frames_received) + " end=" + end);
  return 0;
}

int run_hold() {
  cuframes::Subscriber::Options o;
  std::string dir = arg("dir");
  o.runtime_dir = dir.c_str();
  o.consumer_name = "holder";
  o.connect_timeout_ms = 10000;
  cuframes::Subscriber sub(arg("key"), o);
  say("READY name=" + sub.name());
  const long long n = num("frames", 1);
  std::vector<cuframes::Frame> held;
  std::string seqs;
  while (static_cast<long long>(held.size()) < n) {
    cuframes::Frame f = sub.next(10000);
    seqs += (seqs.empty() ? "" : ",") + std::to_string(f.info().seq);
    held.push_back(std::move(f));
  }
  say("HOLDING " + std::to_string(held.size()) + " seqs=" + seqs);
  for (;;) pause();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cuframes_test_peer publish|subscribe|hold --key K ...\n");
    return 2;
  }
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    std::string k = a.substr(2);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      g_args[k] = argv[++i];
    } else {
      g_args[k] = "1";
    }
  }
  std::string mode = argv[1];
  try {
    if (mode == "publish") return run_publish();
    if (mode == "subscribe") return run_subscribe();
    if (mode == "hold") return run_hold();
  } catch (const cuframes::Error& e) {
    say(std::string("ERROR ") + cuframes_status_name(e.status()) + " " + e.what());
    return 1;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
