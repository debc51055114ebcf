// Publish/subscribe in one process: the first frame, both modes, both policies, holds, loans,
// copy-in.
#include "pubsub_test_util.h"

namespace {

using cftest::kSettleMs;
using cftest::status_of;

TEST(PubSub, FirstFrameCarriesGeometryAndContent) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", cftest::host_pub_options(dir, 1366, 768, 4));
  cuframes::Subscriber sub("cam", sub_options(dir));
  ASSERT_EQ(publish_pattern(pub), 1u);
  cuframes::Frame f = sub.next(1000);
  cuframes_frame_info_t fi = f.info();
  EXPECT_EQ(fi.seq, 1u);
  EXPECT_EQ(fi.geometry.width, 1366u);
  EXPECT_EQ(fi.geometry.height, 768u);
  EXPECT_EQ(fi.geometry.pitch_y, 1408u);  // 1366 aligned to 64
  EXPECT_EQ(fi.geometry.format, CUFRAMES_FORMAT_NV12);
  EXPECT_EQ(fi.memory, CUFRAMES_MEMORY_HOST);
  EXPECT_EQ(fi.device, -1);
  EXPECT_EQ(fi.plane_uv, static_cast<uint8_t*>(fi.data) + fi.geometry.offset_uv);
  EXPECT_GT(fi.publish_ns, 0);
  std::string why;
  EXPECT_TRUE(cftest::verify_frame(fi, 1, &why)) << why;
  EXPECT_STREQ(sub.ring_status().transport, "memfd");
  cuframes_subscriber_stats_t s = sub.stats();
  EXPECT_EQ(s.frames_received, 1u);
  EXPECT_EQ(s.last_seq, 1u);
  EXPECT_EQ(s.held_frames, 1u);
  f.release();
  EXPECT_EQ(sub.stats().held_frames, 0u);
}

TEST(PubSub, ReadersCannotWriteFrames) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", cftest::host_pub_options(dir));
  cuframes::Subscriber sub("cam", sub_options(dir));
  publish_pattern(pub);
  cuframes::Frame f = sub.next(1000);
  auto* p = static_cast<volatile uint8_t*>(f.info().plane_y);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The threadsafe style runs this test again in a child, with a runtime directory of its own:
  // the child removes it before it dies, so no directory is left behind.
  EXPECT_DEATH(
      {
        std::filesystem::remove_all(dir.path());
        p[100] = 1;
      },
      "")
      << "subscriber mappings must be read-only";
}

TEST(PubSub, NewestOnlySkipsAndCountsGaps) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 8));
  cuframes::Subscriber sub("cam", sub_options(dir));
  publish_pattern(pub);
  EXPECT_EQ(sub.next(1000).info().seq, 1u);
  for (int i = 0; i < 5; ++i) publish_pattern(pub);  // 2..6
  cuframes::Frame f = sub.next(1000);
  EXPECT_EQ(f.info().seq, 6u);
  EXPECT_EQ(sub.stats().gaps, 4u);  // 2,3,4,5
  // Nothing newer: a timeout, counted.
  EXPECT_EQ(status_of([&] { sub.next(20); }), CUFRAMES_ERR_FRAME_TIMEOUT);
  EXPECT_EQ(sub.stats().timeouts, 1u);
  // A zero-timeout poll that finds nothing is not a timeout.
  cuframes::Frame none;
  EXPECT_EQ(sub.try_next(0, &none), CUFRAMES_ERR_FRAME_TIMEOUT);
  EXPECT_EQ(sub.stats().timeouts, 1u);
  EXPECT_STRNE(cuframes_last_error(), "");
  sub.note_timeout();  // a caller that waited on the fd itself
  EXPECT_EQ(sub.stats().timeouts, 2u);
  // A slice of a longer wait that ends without a frame is not counted either...
  EXPECT_EQ(sub.try_next_slice(20, &none), CUFRAMES_ERR_FRAME_TIMEOUT);
  EXPECT_EQ(sub.stats().timeouts, 2u);
  // ...and a slice hands out frames as next does.
  publish_pattern(pub);
  cuframes::Frame got;
  ASSERT_EQ(sub.try_next_slice(1000, &got), CUFRAMES_OK);
  EXPECT_EQ(got.info().seq, 7u);
}

TEST(PubSub, FirstFrameIsTheNewestAtSubscription) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 8));
  for (int i = 0; i < 3; ++i) publish_pattern(pub);
  for (auto mode : {CUFRAMES_MODE_NEWEST_ONLY, CUFRAMES_MODE_STRICT_ORDER}) {
    cuframes::Subscriber sub("cam", sub_options(dir, mode));
    EXPECT_EQ(sub.next(1000).info().seq, 3u);
    EXPECT_EQ(sub.stats().gaps, 0u);
  }
}

// The subscription starts at the newest frame at attach: frames published after it and never
// handed out count, also before the first read (issue 20).
TEST(PubSub, FramesMissedBeforeTheFirstReadCount) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 4));
  cuframes::Subscriber newest("cam", sub_options(dir));
  cuframes::Subscriber strict("cam", sub_options(dir, CUFRAMES_MODE_STRICT_ORDER));
  for (int i = 0; i < 10; ++i) publish_pattern(pub);  // 1..10 into 4 slots: 7..10 remain
  EXPECT_EQ(newest.next(1000).info().seq, 10u);
  EXPECT_EQ(newest.stats().gaps, 9u);  // 1..9
  EXPECT_EQ(status_of([&] { strict.next(1000); }), CUFRAMES_ERR_OVERRUN);
  EXPECT_EQ(strict.stats().gaps, 6u);  // 1..6
  EXPECT_EQ(strict.stats().overruns, 1u);
  for (uint64_t want = 7; want <= 10; ++want) EXPECT_EQ(strict.next(1000).info().seq, want);
  EXPECT_EQ(strict.stats().gaps, 6u);
}

TEST(PubSub, StrictOrderDeliversEveryFrameInOrder) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 8));
  cuframes::Subscriber sub("cam", sub_options(dir, CUFRAMES_MODE_STRICT_ORDER));
  for (int i = 0; i < 6; ++i) publish_pattern(pub);
  for (uint64_t want = 1; want <= 6; ++want) {
    cuframes::Frame f = sub.next(1000);
    EXPECT_EQ(f.info().seq, want);
    std::string why;
    EXPECT_TRUE(cftest::verify_frame(f.info(), want, &why)) << why;
  }
  EXPECT_EQ(sub.stats().gaps, 0u);
}

TEST(PubSub, StrictOrderLappedGetsOverrunOnceThenResumes) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 4));
  cuframes::Subscriber sub("cam", sub_options(dir, CUFRAMES_MODE_STRICT_ORDER));
  publish_pattern(pub);
  EXPECT_EQ(sub.next(1000).info().seq, 1u);
  for (int i = 0; i < 10; ++i) publish_pattern(pub);  // 2..11 into 4 slots: 2..7 are gone
  EXPECT_EQ(status_of([&] { sub.next(1000); }), CUFRAMES_ERR_OVERRUN);
  EXPECT_NE(std::string(cuframes_last_error()).find("overwrote"), std::string::npos);
  cuframes_subscriber_stats_t s = sub.stats();
  EXPECT_EQ(s.overruns, 1u);
  EXPECT_EQ(s.errors, 1u);
  uint64_t oldest = sub.next(1000).info().seq;
  EXPECT_GE(oldest, 8u);
  EXPECT_EQ(sub.stats().gaps, oldest - 2);
  for (uint64_t want = oldest + 1; want <= 11; ++want) EXPECT_EQ(sub.next(1000).info().seq, want);
}

TEST(PubSub, HeldFrameIsNeverOverwritten) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 3));
  cuframes::Subscriber sub("cam", sub_options(dir));
  publish_pattern(pub);
  cuframes::Frame held = sub.next(1000);
  uint64_t published = 0, dropped_seen = 0;
  for (int i = 0; i < 100; ++i) {
    if (publish_pattern(pub) != 0)
      ++published;
    else
      ++dropped_seen;
  }
  EXPECT_EQ(published, 100u);  // 3 slots, 1 held, newest excluded: one is always free
  std::string why;
  EXPECT_TRUE(cftest::verify_frame(held.info(), 1, &why)) << why;
  EXPECT_EQ(pub.stats().held_slots, 1u);
}

TEST(PubSub, DropPolicyCountsDroppedFrames) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 2));
  cuframes::Subscriber sub("cam", sub_options(dir));
  publish_pattern(pub);
  cuframes::Frame held = sub.next(1000);  // slot A held; slot B becomes newest after next publish
  EXPECT_EQ(publish_pattern(pub), 2u);
  // A is held, B is the newest: nowhere to write.
  std::vector<uint8_t> y(64 * 32, 7), uv(64 * 16, 9);
  cuframes_source_t src;
  cuframes_source_init(&src);
  src.planes[0] = y.data();
  src.planes[1] = uv.data();
  src.pitches[0] = src.pitches[1] = 64;
  EXPECT_EQ(pub.publish(src), 0u);
  EXPECT_EQ(status_of([&] { pub.loan(); }), CUFRAMES_ERR_FRAME_TIMEOUT);
  cuframes_publisher_stats_t s = pub.stats();
  EXPECT_EQ(s.dropped, 2u);
  EXPECT_EQ(s.published, 2u);
  EXPECT_EQ(s.held_slots, 1u);
  // Subscribers see the same counters through the shared header and table.
  cuframes_ring_status_t rs = sub.ring_status();
  EXPECT_EQ(rs.stats.dropped, 2u);
  EXPECT_EQ(rs.stats.published, 2u);
  EXPECT_EQ(rs.stats.held_slots, 1u);
  EXPECT_EQ(rs.stats.subscribers, 1u);
  EXPECT_STREQ(rs.key, "cam");
  held.release();  // on CUDA rings this takes effect once the consumer stream is done
  ASSERT_TRUE(cftest::wait_until([&] { return pub.stats().held_slots == 0; }, kSettleMs));
  EXPECT_EQ(pub.publish(src), 3u);
}

TEST(PubSub, StrictWaitBlocksUntilReleaseThenTimesOut) {
  RuntimeDir dir;
  auto o = pub_options(dir, 64, 32, 2);
  o.policy = CUFRAMES_POLICY_STRICT_WAIT;
  o.wait_timeout_ms = 5000;
  cuframes::Publisher pub("cam", o);
  cuframes::Subscriber sub("cam", sub_options(dir));
  publish_pattern(pub);
  cuframes::Frame held = sub.next(1000);
  publish_pattern(pub);  // 2 is newest, 1 held
  std::atomic<bool> released{false};
  std::jthread releaser([&] {
    // The release comes once the publisher says it is blocked (publisher_waiting).
    ASSERT_TRUE(cftest::wait_until([&] { return pub.stats().waiting == 1; }, kSettleMs));
    released = true;
    held.release();
  });
  EXPECT_EQ(publish_pattern(pub), 3u);  // 3, not 0: the release ended the wait, not the timeout
  EXPECT_TRUE(released.load());
  releaser.join();
  EXPECT_GT(pub.stats().blocked_ns, 0u);
  EXPECT_EQ(pub.stats().waiting, 0u);

  // Now hold again and let it time out.
  o.wait_timeout_ms = 50;
  RuntimeDir dir2;
  o.runtime_dir = dir2.c_str();
  cuframes::Publisher pub2("cam", o);
  cuframes::Subscriber sub2("cam", sub_options(dir2));
  publish_pattern(pub2);
  cuframes::Frame h2 = sub2.next(1000);
  publish_pattern(pub2);
  EXPECT_EQ(status_of([&] { pub2.loan(); }), CUFRAMES_ERR_FRAME_TIMEOUT);
  EXPECT_NE(std::string(cuframes_last_error()).find("STRICT_WAIT"), std::string::npos);
  EXPECT_EQ(pub2.stats().dropped, 1u);
}

TEST(PubSub, StrictWaitWithStrictOrderLosesNothing) {
  RuntimeDir dir;
  auto o = pub_options(dir, 64, 32, 3);
  o.policy = CUFRAMES_POLICY_STRICT_WAIT;
  o.wait_timeout_ms = 60000;  // never reached: a stall of the readers is waited out, not timed
  cuframes::Publisher pub("cam", o);
  constexpr int kSubs = 3;
  constexpr uint64_t kFrames = 300;
  std::vector<std::unique_ptr<cuframes::Subscriber>> subs;
  for (int i = 0; i < kSubs; ++i) {
    subs.push_back(std::make_unique<cuframes::Subscriber>(
        "cam", sub_options(dir, CUFRAMES_MODE_STRICT_ORDER)));
  }
  std::vector<uint64_t> last(kSubs, 0), bad(kSubs, 0);
  std::vector<std::string> failure(kSubs);
  {
    std::vector<std::jthread> readers;
    for (int i = 0; i < kSubs; ++i) {
      readers.emplace_back([&, i] {
        try {
          for (uint64_t want = 1; want <= kFrames; ++want) {
            cuframes::Frame f = subs[i]->next(60000);
            cuframes_frame_info_t fi = f.info();
            if (fi.seq != want || !cftest::verify_frame(fi, want)) ++bad[i];
            last[i] = fi.seq;
            if (i == 0 && want % 7 == 0)
              std::this_thread::sleep_for(std::chrono::microseconds(300));
          }
        } catch (const cuframes::Error& e) {
          failure[i] = e.what();
          subs[i].reset();  // detached: the publisher no longer waits for it
        }
      });
    }
    for (uint64_t i = 0; i < kFrames; ++i) EXPECT_EQ(publish_pattern(pub), i + 1);
  }  // the readers are joined here
  for (int i = 0; i < kSubs; ++i) {
    EXPECT_EQ(failure[i], "");
    if (!subs[i]) continue;
    EXPECT_EQ(bad[i], 0u);
    EXPECT_EQ(last[i], kFrames);
    EXPECT_EQ(subs[i]->stats().gaps, 0u);
    EXPECT_EQ(subs[i]->stats().overruns, 0u);
  }
  EXPECT_EQ(pub.stats().dropped, 0u);
}

TEST(PubSub, LoanCommitAndAbandon) {
  RuntimeDir dir;
  auto o = cftest::host_pub_options(dir, 64, 32, 4);
  o.format = CUFRAMES_FORMAT_GRAY8;
  cuframes::Publisher pub("cam", o);
  cuframes::Subscriber sub("cam", sub_options(dir));
  {
    cuframes::Loan abandoned = pub.loan();
    EXPECT_EQ(abandoned.info().seq, 0u);
    EXPECT_EQ(abandoned.info().plane_uv, nullptr);
  }  // destructor abandons
  cuframes::Loan a = pub.loan();
  cuframes::Loan b = pub.loan();  // several loans at once
  EXPECT_NE(a.info().slot, b.info().slot);
  std::memset(a.info().data, 0x11, a.info().geometry.frame_bytes);
  std::memset(b.info().data, 0x22, b.info().geometry.frame_bytes);
  EXPECT_EQ(pub.commit(std::move(b), 1234), 1u);
  b = cuframes::Loan();
  a.abandon();
  cuframes::Frame f = sub.next(1000);
  EXPECT_EQ(f.info().pts_ns, 1234);
  EXPECT_EQ(static_cast<uint8_t*>(f.info().data)[5], 0x22);
  EXPECT_EQ(pub.stats().published, 1u);
}

TEST(PubSub, LoansOutliveTheirPublisherSafely) {
  RuntimeDir dir;
  auto o = pub_options(dir);
  cuframes_publisher_t* pub = nullptr;
  ASSERT_EQ(cuframes_publisher_create("cam", &o, &pub), CUFRAMES_OK);
  cuframes_loan_t *a = nullptr, *b = nullptr;
  ASSERT_EQ(cuframes_publisher_loan(pub, &a), CUFRAMES_OK);
  ASSERT_EQ(cuframes_publisher_loan(pub, &b), CUFRAMES_OK);
  cuframes_publisher_destroy(pub);
  cuframes_publisher_abandon(nullptr, a);  // frees it, touches no publisher
  EXPECT_EQ(cuframes_publisher_commit(nullptr, b, 0, nullptr, nullptr),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("gone"), std::string::npos);
}

TEST(PubSub, CopyInHonoursSourcePitch) {
  RuntimeDir dir;
  auto o = cftest::host_pub_options(dir, 100, 50, 4);
  o.format = CUFRAMES_FORMAT_P010;
  cuframes::Publisher pub("cam", o);
  cuframes::Subscriber sub("cam", sub_options(dir));
  const size_t row = 200, src_pitch = 256;
  std::vector<uint8_t> y(src_pitch * 50), uv(src_pitch * 25);
  for (size_t r = 0; r < 50; ++r)
    for (size_t c = 0; c < src_pitch; ++c) y[r * src_pitch + c] = c < row ? uint8_t(r + c) : 0xEE;
  for (size_t r = 0; r < 25; ++r)
    for (size_t c = 0; c < src_pitch; ++c)
      uv[r * src_pitch + c] = c < row ? uint8_t(3 * r + c) : 0xEE;
  cuframes_source_t src;
  cuframes_source_init(&src);
  src.planes[0] = y.data();
  src.planes[1] = uv.data();
  src.pitches[0] = src.pitches[1] = src_pitch;
  EXPECT_EQ(pub.publish(src, 99), 1u);
  cuframes::Frame f = sub.next(1000);
  cuframes_frame_info_t fi = f.info();
  EXPECT_EQ(fi.geometry.pitch_y, 256u);  // 200 bytes aligned to 64
  auto* py = static_cast<const uint8_t*>(fi.plane_y);
  auto* puv = static_cast<const uint8_t*>(fi.plane_uv);
  for (size_t r = 0; r < 50; ++r)
    for (size_t c = 0; c < row; ++c) ASSERT_EQ(py[r * fi.geometry.pitch_y + c], uint8_t(r + c));
  for (size_t r = 0; r < 25; ++r)
    for (size_t c = 0; c < row; ++c)
      ASSERT_EQ(puv[r * fi.geometry.pitch_uv + c], uint8_t(3 * r + c));
  // Bad sources are refused, naming the problem.
  src.pitches[1] = 10;
  EXPECT_EQ(status_of([&] { pub.publish(src); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("pitch"), std::string::npos);
  src.pitches[1] = src_pitch;
  src.planes[1] = nullptr;
  EXPECT_EQ(status_of([&] { pub.publish(src); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  src.planes[1] = uv.data();
  src.memory = CUFRAMES_MEMORY_CUDA;
  EXPECT_EQ(status_of([&] { pub.publish(src); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(pub.stats().published, 1u);
}

}  // namespace
