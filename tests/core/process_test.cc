// Across processes (fork+exec of cuframes_test_peer): both modes, both policies, and SIGKILL in
// both directions.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/test_util.h"

using cftest::field;
using cftest::Peer;
using cftest::publish_pattern;
using cftest::RuntimeDir;

namespace {

std::vector<std::string> subscriber_args(const RuntimeDir& dir, const std::string& mode,
                                         long long count, long long hold_max_us, int seed) {
  return {"subscribe",
          "--dir",
          dir.path(),
          "--key",
          "cam",
          "--mode",
          mode,
          "--name",
          mode + "-" + std::to_string(seed),
          "--count",
          std::to_string(count),
          "--hold-max-us",
          std::to_string(hold_max_us),
          "--seed",
          std::to_string(seed)};
}

void wait_subscribers(cuframes::Publisher& pub, uint32_t n) {
  ASSERT_TRUE(cftest::wait_until([&] { return pub.stats().subscribers == n; }, 5000))
      << pub.stats().subscribers << " of " << n << " subscribers attached";
}

TEST(CrossProcess, NewestOnlySubscribersVerifyEveryFrame) {
  RuntimeDir dir;
  auto pub = std::make_unique<cuframes::Publisher>("cam", cftest::pub_options(dir, 320, 240, 6));
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < 3; ++i) {
    peers.push_back(std::make_unique<Peer>(subscriber_args(dir, "newest", -1, 500, i)));
    ASSERT_EQ(peers.back()->expect("READY").rfind("READY", 0), 0u);
  }
  wait_subscribers(*pub, 3);
  for (int i = 0; i < 300; ++i) {
    publish_pattern(*pub);
    std::this_thread::sleep_for(std::chrono::microseconds(500));  // pacing, ~2000 fps
  }
  pub.reset();  // subscribers end with PUBLISHER_GONE
  for (auto& p : peers) {
    std::string r = p->expect("RESULT");
    EXPECT_EQ(field(r, "bad"), 0) << r;
    EXPECT_EQ(field(r, "disorder"), 0) << r;
    EXPECT_GT(field(r, "frames"), 0) << r;
    EXPECT_EQ(field(r, "frames"), field(r, "stat_frames")) << r;
    EXPECT_EQ(r.substr(r.find("end=")), "end=gone") << r;
    EXPECT_EQ(p->wait(), 0);
  }
}

TEST(CrossProcess, StrictOrderWithStrictWaitDeliversEveryFrameOnce) {
  RuntimeDir dir;
  auto o = cftest::pub_options(dir, 160, 120, 4);
  o.policy = CUFRAMES_POLICY_STRICT_WAIT;
  o.wait_timeout_ms = 10000;
  cuframes::Publisher pub("cam", o);
  constexpr long long kFrames = 400;
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < 4; ++i) {
    peers.push_back(std::make_unique<Peer>(subscriber_args(dir, "strict", kFrames, 300, i)));
    peers.back()->expect("READY");
  }
  wait_subscribers(pub, 4);
  for (long long i = 0; i < kFrames; ++i) ASSERT_EQ(publish_pattern(pub), uint64_t(i + 1));
  for (auto& p : peers) {
    std::string r = p->expect("RESULT", 30000);
    EXPECT_EQ(field(r, "frames"), kFrames) << r;
    EXPECT_EQ(field(r, "first"), 1) << r;
    EXPECT_EQ(field(r, "last"), kFrames) << r;
    EXPECT_EQ(field(r, "disorder"), 0) << r;
    EXPECT_EQ(field(r, "overruns"), 0) << r;
    EXPECT_EQ(field(r, "gaps"), 0) << r;
    EXPECT_EQ(field(r, "bad"), 0) << r;
  }
  EXPECT_EQ(pub.stats().dropped, 0u);
  EXPECT_GT(pub.stats().blocked_ns, 0u);
}

TEST(CrossProcess, StrictOrderUnderDropOverrunsButNeverTears) {
  RuntimeDir dir;
  auto pub = std::make_unique<cuframes::Publisher>("cam", cftest::pub_options(dir, 160, 120, 4));
  Peer slow(subscriber_args(dir, "strict", -1, 3000, 7));
  slow.expect("READY");
  wait_subscribers(*pub, 1);
  // Flat out until the slow reader has been lapped a few times (publishing is much faster than
  // its 3 ms holds), then stop.
  const int64_t t0 = cuframes::now_ns();
  while (cftest::ms_since(t0) < 20000) {
    publish_pattern(*pub);
    auto subs = pub->subscribers();
    if (!subs.empty() && subs[0].overruns >= 3) break;
  }
  pub.reset();
  std::string r = slow.expect("RESULT", 20000);
  EXPECT_GT(field(r, "overruns"), 0) << r;
  EXPECT_EQ(field(r, "bad"), 0) << r;
  EXPECT_EQ(field(r, "disorder"), 0) << r;
}

TEST(CrossProcess, FramesWrittenByAnotherProcess) {
  RuntimeDir dir;
  Peer publisher({"publish", "--dir", dir.path(), "--key", "cam", "--width", "1366", "--height",
                  "768", "--slots", "4", "--count", "-1", "--fps", "500"});
  ASSERT_EQ(publisher.expect("READY").rfind("READY", 0), 0u);
  cuframes::Subscriber sub("cam", cftest::sub_options(dir));
  uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    cuframes::Frame f = sub.next(2000);
    cuframes_frame_info_t fi = f.info();
    std::string why;
    EXPECT_TRUE(cftest::verify_frame(fi, fi.seq, &why)) << why;
    EXPECT_EQ(fi.geometry.width, 1366u);
    EXPECT_GT(fi.seq, last);
    last = fi.seq;
  }
}

// A subscriber holding frames is SIGKILLed: its holds are reclaimed within a second.
TEST(Sigkill, DeadSubscribersHoldsAreReclaimed) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", cftest::pub_options(dir, 64, 32, 6));
  Peer holder({"hold", "--dir", dir.path(), "--key", "cam", "--frames", "3"});
  holder.expect("READY");
  wait_subscribers(pub, 1);
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    while (!stop) {
      publish_pattern(pub);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::string holding = holder.expect("HOLDING");
  stop = true;
  feeder.join();
  ASSERT_EQ(holding.rfind("HOLDING 3", 0), 0u) << holding;
  EXPECT_EQ(pub.stats().held_slots, 3u);
  holder.kill9();
  int64_t t0 = cuframes::now_ns();
  EXPECT_TRUE(cftest::wait_until(
      [&] { return pub.stats().held_slots == 0 && pub.stats().subscribers == 0; }, 1000));
  std::printf("holds reclaimed %.1f ms after SIGKILL\n", (cuframes::now_ns() - t0) / 1e6);
  for (int i = 0; i < 20; ++i) EXPECT_NE(publish_pattern(pub), 0u);
}

TEST(Sigkill, StrictWaitPublisherResumesWhenHolderDies) {
  RuntimeDir dir;
  auto o = cftest::pub_options(dir, 64, 32, 4);
  o.policy = CUFRAMES_POLICY_STRICT_WAIT;
  o.wait_timeout_ms = 10000;
  cuframes::Publisher pub("cam", o);
  Peer holder({"hold", "--dir", dir.path(), "--key", "cam", "--frames", "3"});
  holder.expect("READY");
  wait_subscribers(pub, 1);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> last_return{0};
  std::thread producer([&] {
    while (!stop) {
      publish_pattern(pub);  // blocks once the holder has its 3 frames (4 slots, 1 newest)
      last_return = cuframes::now_ns();
    }
  });
  holder.expect("HOLDING");
  ASSERT_TRUE(cftest::wait_until([&] { return pub.stats().waiting == 1; }, 5000))
      << "the publisher never blocked";
  const int64_t killed_at = cuframes::now_ns();
  holder.kill9();
  const bool resumed = cftest::wait_until([&] { return last_return.load() > killed_at; }, 2000);
  const int64_t resumed_at = last_return.load();
  stop = true;
  producer.join();
  ASSERT_TRUE(resumed) << "the blocked publish did not return";
  const double ms = (resumed_at - killed_at) / 1e6;
  std::printf("STRICT_WAIT publish resumed %.1f ms after the holder's SIGKILL\n", ms);
  EXPECT_LT(ms, 1000.0);
  EXPECT_EQ(pub.stats().dropped, 0u);
}

// The publisher is SIGKILLed while a subscriber waits: PUBLISHER_GONE within a second, the held
// frame stays readable, and a new publisher on the key is reached by subscribing again.
TEST(Sigkill, WaitingSubscriberLearnsPublisherGone) {
  RuntimeDir dir;
  auto publisher = std::make_unique<Peer>(std::vector<std::string>{
      "publish", "--dir", dir.path(), "--key", "cam", "--count", "1", "--linger"});
  std::string ready = publisher->expect("READY");
  const std::string epoch1 = cftest::field_str(ready, "epoch");
  cuframes::Subscriber sub("cam", cftest::sub_options(dir));
  cuframes::Frame held = sub.next(5000);
  ASSERT_EQ(held.info().seq, 1u);
  std::atomic<int64_t> returned_at{0};
  std::atomic<int> status{-1};
  std::thread waiter([&] {
    cuframes::Frame f;
    status = sub.try_next(-1, &f);
    returned_at = cuframes::now_ns();
  });
  publisher->expect("DONE");
  // The waiter is blocked in next_frame(-1): nothing new will come.
  const int64_t killed_at = cuframes::now_ns();
  publisher->kill9();
  waiter.join();
  EXPECT_EQ(status.load(), CUFRAMES_ERR_PUBLISHER_GONE);
  const double ms = (returned_at.load() - killed_at) / 1e6;
  std::printf("PUBLISHER_GONE %.1f ms after the publisher's SIGKILL\n", ms);
  EXPECT_LT(ms, 1000.0);
  std::string why;
  EXPECT_TRUE(cftest::verify_frame(held.info(), 1, &why)) << why;
  held.release();

  publisher = std::make_unique<Peer>(std::vector<std::string>{
      "publish", "--dir", dir.path(), "--key", "cam", "--count", "-1", "--fps", "200"});
  ready = publisher->expect("READY");
  EXPECT_NE(cftest::field_str(ready, "epoch"), epoch1);
  EXPECT_FALSE(epoch1.empty());
  cuframes::Subscriber again("cam", cftest::sub_options(dir));
  cuframes::Frame f = again.next(5000);
  EXPECT_TRUE(cftest::verify_frame(f.info(), f.info().seq, &why)) << why;
}

}  // namespace
