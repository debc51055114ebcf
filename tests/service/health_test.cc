// The MQTT monitor's pure parts (service/src/health.h, ha_id.h): names as Home Assistant ids and
// the subscriber tracker's topic names and report order; and what keeps reports and logs honest:
// the frame rate computed when it is read (rate_meter.h) and throttled log lines (logging.h).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "health.h"
#include "logging.h"
#include "rate_meter.h"

namespace cfsvc {
namespace {

cuframes_subscriber_stats_t sub(const char* name, uint32_t slot, int64_t attached_ns,
                                uint64_t frames) {
  cuframes_subscriber_stats_t s{};
  std::strncpy(s.name, name, sizeof s.name - 1);
  s.slot_index = slot;
  s.attached_ns = attached_ns;
  s.frames_received = frames;
  return s;
}

TEST(HaId, NamesBecomeLowerCaseWordsJoinedByUnderscores) {
  EXPECT_EQ(ha_id("front_door"), "front_door");
  EXPECT_EQ(ha_id("Front.Door-2"), "front_door_2");
  EXPECT_EQ(ha_id("..a..b.."), "a_b");
  EXPECT_EQ(ha_id("det.v2"), "det_v2");
  EXPECT_EQ(ha_id("..."), "x");
  EXPECT_EQ(ha_id(""), "x");
}

TEST(SubscriberTracker, SameNamesGetTheSlotAndKeepTheirTopic) {
  SubscriberTracker t;
  auto r = t.update({sub("det", 0, 100, 1), sub("det", 3, 200, 1)}, 1'000'000'000);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].topic_name, "det");
  EXPECT_EQ(r[1].topic_name, "det_3");
  // The first leaves: the second keeps det_3 (its entities), the first is reported gone.
  r = t.update({sub("det", 3, 200, 31)}, 2'000'000'000);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].topic_name, "det_3");
  EXPECT_TRUE(r[0].connected);
  EXPECT_NEAR(r[0].fps, 30.0, 0.01);
  EXPECT_EQ(r[1].topic_name, "det");
  EXPECT_FALSE(r[1].connected);
  EXPECT_EQ(t.update({sub("det", 3, 200, 61)}, 3'000'000'000).size(), 1u);
}

// A detector restarting within one interval: the old attachment's last report comes before the
// new one's, so the topic's last (retained) state is the new, connected one.
TEST(SubscriberTracker, ARestartedSubscriberIsReportedLast) {
  SubscriberTracker t;
  t.update({sub("det", 0, 100, 500)}, 1'000'000'000);
  const auto r = t.update({sub("det", 1, 300, 5)}, 2'000'000'000);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].topic_name, "det");
  EXPECT_FALSE(r[0].connected);
  EXPECT_EQ(r[0].stats.frames_received, 500u);
  EXPECT_EQ(r[1].topic_name, "det");
  EXPECT_TRUE(r[1].connected);
  EXPECT_EQ(r[1].stats.frames_received, 5u);
}

constexpr int64_t kSec = 1'000'000'000;

TEST(RateMeter, SteadyFramesGiveTheirRate) {
  RateMeter m;
  EXPECT_EQ(m.rate(5 * kSec), 0);
  for (int i = 0; i <= 150; ++i) m.add(10 * kSec + i * kSec / 30);  // 30 fps for 5 s
  const int64_t last = 10 * kSec + 150 * kSec / 30;
  EXPECT_NEAR(m.rate(last), 30.0, 0.01);
  EXPECT_NEAR(m.rate(last + kSec / 60), 30.0, 0.3);  // between two frames
}

// The rate is computed when it is read: frames that stopped make it fall, to 0 once the last
// one is older than the window, whoever stopped them.
TEST(RateMeter, FallsToZeroWhenFramesStop) {
  RateMeter m;
  for (int i = 0; i <= 60; ++i) m.add(i * kSec / 30);
  const int64_t last = 2 * kSec;
  EXPECT_NEAR(m.rate(last), 30.0, 0.01);
  const double half = m.rate(last + kSec);
  EXPECT_GT(half, 10);
  EXPECT_LT(half, 20);
  EXPECT_EQ(m.rate(last + RateMeter::kWindowNs), 0);
  EXPECT_EQ(m.rate(last + 100 * kSec), 0);
  m.add(last + 100 * kSec);  // one frame is no rate yet
  EXPECT_EQ(m.rate(last + 100 * kSec), 0);
  m.add(last + 100 * kSec + kSec / 10);
  EXPECT_NEAR(m.rate(last + 100 * kSec + kSec / 10), 10.0, 0.01);
}

TEST(RateMeter, ClearForgetsAndBurstsStayBounded) {
  RateMeter m;
  for (int i = 0; i < 100000; ++i) m.add(kSec + i);  // a burst of 100000 frames in 0.1 ms
  EXPECT_GT(m.rate(kSec + 100000), 0);
  m.clear();
  EXPECT_EQ(m.rate(kSec + 100000), 0);
}

TEST(LogThrottle, RepeatsAreHeldBackAndCounted) {
  LogThrottle t(std::chrono::seconds(60));
  std::string suffix = "unset";
  ASSERT_TRUE(t.allow(kSec, &suffix));
  EXPECT_EQ(suffix, "");
  for (int i = 0; i < 312; ++i) EXPECT_FALSE(t.allow(kSec + i * kSec / 10, &suffix));
  ASSERT_TRUE(t.allow(61 * kSec, &suffix));
  EXPECT_EQ(suffix, " (repeated 312 times)");
  EXPECT_FALSE(t.allow(62 * kSec, &suffix));
  ASSERT_TRUE(t.allow(200 * kSec, &suffix));
  EXPECT_EQ(suffix, " (repeated 1 time)");
  ASSERT_TRUE(t.allow(300 * kSec, &suffix));
  EXPECT_EQ(suffix, "");
}

}  // namespace
}  // namespace cfsvc
