// The MQTT monitor's pure parts (service/src/health.h, ha_id.h): names as Home Assistant ids and
// the subscriber tracker's topic names and report order.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "health.h"

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

}  // namespace
}  // namespace cfsvc
