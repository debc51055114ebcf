// Stress: one publisher at full rate, 8 subscriber processes with random hold times, for at least
// 10 s (CUFRAMES_STRESS_SECONDS to change). Every delivered frame is verified twice (on receipt
// and just before release) against its embedded seq and checksum: zero torn or overwritten
// frames allowed. Prints the counts. Then 64 subscriber processes (the table's full size), every
// frame to every one of them, in order, each verified.
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/test_util.h"

using cftest::field;
using cftest::Peer;
using cftest::RuntimeDir;

TEST(Stress, EightSubscribersRandomHoldsFullRate) {
  const char* env = std::getenv("CUFRAMES_STRESS_SECONDS");
  const double seconds = env ? std::atof(env) : 10.0;
  RuntimeDir dir;
  auto pub = std::make_unique<cuframes::Publisher>("cam", cftest::pub_options(dir, 320, 240, 6));
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < 8; ++i) {
    // 6 NEWEST_ONLY detectors and 2 STRICT_ORDER recorders; holds up to 0.1 .. 3 ms.
    std::string mode = i < 6 ? "newest" : "strict";
    long long hold = 100 + i * 400;
    peers.push_back(std::make_unique<Peer>(std::vector<std::string>{
        "subscribe", "--dir", dir.path(), "--key", "cam", "--mode", mode, "--name",
        "stress-" + std::to_string(i), "--count", "-1", "--hold-max-us", std::to_string(hold),
        "--seed", std::to_string(1000 + i)}));
    ASSERT_EQ(peers.back()->expect("READY").rfind("READY", 0), 0u);
  }
  ASSERT_TRUE(cftest::wait_until([&] { return pub->stats().subscribers == 8; }, 5000));

  const int64_t end = cuframes::now_ns() + static_cast<int64_t>(seconds * 1e9);
  uint64_t attempts = 0;
  while (cuframes::now_ns() < end) {
    cftest::publish_pattern(*pub);
    ++attempts;
  }
  cuframes_publisher_stats_t ps = pub->stats();
  pub.reset();

  std::printf(
      "\nstress: %.0f s, %llu publish attempts, %llu published (%.0f/s), %llu dropped "
      "(every slot held)\n",
      seconds, static_cast<unsigned long long>(attempts),
      static_cast<unsigned long long>(ps.published), ps.published / seconds,
      static_cast<unsigned long long>(ps.dropped));
  std::printf("%-10s %-7s %10s %8s %10s %10s %5s\n", "subscriber", "mode", "frames", "bad",
              "overruns", "gaps", "end");
  long long total_frames = 0, total_bad = 0;
  for (size_t i = 0; i < peers.size(); ++i) {
    std::string r = peers[i]->expect("RESULT", 30000);
    ASSERT_FALSE(r.empty()) << "subscriber " << i << " gave no result";
    std::printf("stress-%-3zu %-7s %10lld %8lld %10lld %10lld %5s\n", i,
                i < 6 ? "newest" : "strict", field(r, "frames"), field(r, "bad"),
                field(r, "overruns"), field(r, "gaps"), r.substr(r.find("end=") + 4).c_str());
    EXPECT_EQ(field(r, "bad"), 0) << r;
    EXPECT_EQ(field(r, "disorder"), 0) << r;
    EXPECT_GT(field(r, "frames"), 0) << r;
    EXPECT_EQ(r.substr(r.find("end=")), "end=gone") << r;
    total_frames += field(r, "frames");
    total_bad += field(r, "bad");
    EXPECT_EQ(peers[i]->wait(), 0);
  }
  std::printf("stress: %lld frames delivered and verified twice each, %lld torn or overwritten\n",
              total_frames, total_bad);
  EXPECT_EQ(total_bad, 0);
}

// 64 subscriber processes on one ring (the table's full size, CUFRAMES_MAX_SUBSCRIBERS), every
// one in STRICT_ORDER under a STRICT_WAIT publisher: each of the kFrames frames reaches every
// subscriber, in order, and is verified twice (on receipt and before release); a quarter of them
// hold their frames for a random while, so the publisher keeps meeting held slots. They all
// connect at once. No timing: the counts are exact, and the waits are liveness limits (a loaded
// 2-core machine runs 65 processes here).
TEST(Stress, SixtyFourSubscribersEveryFrameChecked) {
  constexpr int kSubs = CUFRAMES_MAX_SUBSCRIBERS;
  constexpr long long kFrames = 200;
  RuntimeDir dir;
  // The subscribers first: they wait for the publisher, then all connect at once (as detectors
  // do when the service starts), more than the 32 handshakes a publisher keeps pending.
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < kSubs; ++i) {
    peers.push_back(std::make_unique<Peer>(std::vector<std::string>{
        "subscribe", "--dir", dir.path(), "--key", "cam", "--mode", "strict", "--name",
        "sub-" + std::to_string(i), "--count", std::to_string(kFrames), "--timeout", "120000",
        "--connect-timeout", "120000", "--hold-max-us", i % 4 == 0 ? "2000" : "0", "--seed",
        std::to_string(2000 + i)}));
  }
  cuframes::Publisher::Options o = cftest::pub_options(dir, 320, 240, 8);
  o.policy = CUFRAMES_POLICY_STRICT_WAIT;
  o.wait_timeout_ms = 60000;
  auto pub = std::make_unique<cuframes::Publisher>("cam", o);
  for (int i = 0; i < kSubs; ++i) {
    ASSERT_EQ(peers[static_cast<size_t>(i)]->expect("READY", 60000).rfind("READY", 0), 0u)
        << "subscriber " << i;
  }
  ASSERT_TRUE(cftest::wait_until([&] { return pub->stats().subscribers == kSubs; }, 60000));

  for (long long i = 0; i < kFrames; ++i) {
    ASSERT_NE(cftest::publish_pattern(*pub), 0u) << "frame " << i + 1 << " timed out";
  }
  const cuframes_publisher_stats_t ps = pub->stats();
  EXPECT_EQ(ps.published, static_cast<uint64_t>(kFrames));
  EXPECT_EQ(ps.dropped, 0u);

  long long total = 0;
  for (int i = 0; i < kSubs; ++i) {
    const std::string r = peers[static_cast<size_t>(i)]->expect("RESULT", 120000);
    ASSERT_FALSE(r.empty()) << "subscriber " << i << " gave no result";
    EXPECT_EQ(field(r, "frames"), kFrames) << r;
    EXPECT_EQ(field(r, "bad"), 0) << r;
    EXPECT_EQ(field(r, "disorder"), 0) << r;
    EXPECT_EQ(field(r, "overruns"), 0) << r;
    EXPECT_EQ(field(r, "first"), 1) << r;
    EXPECT_EQ(field(r, "last"), kFrames) << r;
    EXPECT_EQ(field(r, "gaps"), 0) << r;
    total += field(r, "frames");
    EXPECT_EQ(peers[static_cast<size_t>(i)]->wait(), 0);
  }
  pub.reset();
  std::printf("\n64 subscribers: %lld frames published, %lld deliveries verified twice each\n",
              kFrames, total);
}
