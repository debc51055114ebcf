// Publish/subscribe in one process: both modes, both policies, holds, loans, copy-in, waiting
// on the fd, callbacks, observers, listing, lifecycle.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "common/test_util.h"
#include "memory.h"
#include "runtime_dir.h"

using cftest::publish_pattern;
using cftest::pub_options;
using cftest::RuntimeDir;
using cftest::sub_options;

namespace {

using cftest::status_of;

// How long a test waits for a state the publisher's service thread reaches by itself (a detach,
// a release): a deadline for a broken build, not a speed goal, so generous enough for a loaded
// machine. wait_until returns as soon as the state holds.
constexpr int kSettleMs = 10000;

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
    if (publish_pattern(pub) != 0) ++published;
    else ++dropped_seen;
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
            if (i == 0 && want % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
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
    for (size_t c = 0; c < src_pitch; ++c) uv[r * src_pitch + c] = c < row ? uint8_t(3 * r + c) : 0xEE;
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
    for (size_t c = 0; c < row; ++c) ASSERT_EQ(puv[r * fi.geometry.pitch_uv + c], uint8_t(3 * r + c));
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

TEST(PubSub, FdIsReadableWhenAFrameArrives) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir));
  cuframes::Subscriber sub("cam", sub_options(dir));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, sub.fd(), &ev), 0);
  EXPECT_EQ(epoll_wait(ep, &ev, 1, 0), 0);
  publish_pattern(pub);
  EXPECT_EQ(epoll_wait(ep, &ev, 1, 1000), 1);
  cuframes::Frame f;
  EXPECT_EQ(sub.try_next(0, &f), CUFRAMES_OK);
  EXPECT_EQ(f.info().seq, 1u);
  // Quiet again once next_frame(0) has found nothing more, until the next frame.
  cuframes::Frame none;
  EXPECT_EQ(sub.try_next(0, &none), CUFRAMES_ERR_FRAME_TIMEOUT);
  EXPECT_EQ(epoll_wait(ep, &ev, 1, 0), 0);
  publish_pattern(pub);
  EXPECT_EQ(epoll_wait(ep, &ev, 1, 1000), 1);
  ::close(ep);
}

// An fd-driven consumer (epoll, asyncio) must never be left with frames in the ring and no
// readiness: the fd stays readable until next_frame(0) has found nothing.
TEST(PubSub, FdStaysReadableWhileFramesAreWaiting) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 8));
  cuframes::Subscriber sub("cam", sub_options(dir, CUFRAMES_MODE_STRICT_ORDER));
  for (int i = 0; i < 3; ++i) publish_pattern(pub);
  for (uint64_t want = 1; want <= 3; ++want) {
    pollfd p{sub.fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 1000), 1) << "no readiness with frame " << want << " waiting";
    cuframes::Frame f;
    ASSERT_EQ(sub.try_next(0, &f), CUFRAMES_OK);
    EXPECT_EQ(f.info().seq, want);
  }
  cuframes::Frame none;
  EXPECT_EQ(sub.try_next(0, &none), CUFRAMES_ERR_FRAME_TIMEOUT);
  pollfd p{sub.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);  // drained: quiet until the next frame
}

// Notes go only to a subscriber that may sleep (docs/protocol.md 8): one busy taking frames costs
// the publisher no send() per frame. Counted as bytes queued on the subscriber's socket.
TEST(PubSub, NotesOnlyWhileTheSubscriberMayWait) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 8));
  cuframes::Subscriber sub("cam", sub_options(dir));
  auto queued = [&] {
    int n = -1;
    EXPECT_EQ(::ioctl(sub.fd(), FIONREAD, &n), 0);
    return n;
  };
  const int note = 16;
  EXPECT_EQ(queued(), 0);
  publish_pattern(pub);  // waiting = 1 since the attach: a Note
  EXPECT_EQ(queued(), note);
  EXPECT_EQ(sub.next(1000).info().seq, 1u);  // taken from the ring: no longer waiting
  for (int i = 0; i < 20; ++i) publish_pattern(pub);  // 2..21: no Notes
  EXPECT_EQ(queued(), note);
  EXPECT_EQ(sub.next(1000).info().seq, 21u);
  cuframes::Frame none;
  EXPECT_EQ(sub.try_next(0, &none), CUFRAMES_ERR_FRAME_TIMEOUT);  // drains; waiting again
  EXPECT_EQ(queued(), 0);
  publish_pattern(pub);  // 22: a Note wakes it
  EXPECT_EQ(queued(), note);
  pollfd p{sub.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 1);
  EXPECT_EQ(sub.next(1000).info().seq, 22u);
}

// A call that ends in OVERRUN turns Notes back on: an fd-driven caller that goes back to poll
// after it must be woken by the next frame.
TEST(PubSub, OverrunTurnsNotesBackOn) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 4));
  cuframes::Subscriber sub("cam", sub_options(dir, CUFRAMES_MODE_STRICT_ORDER));
  auto queued = [&] {
    int n = -1;
    EXPECT_EQ(::ioctl(sub.fd(), FIONREAD, &n), 0);
    return n;
  };
  publish_pattern(pub);
  EXPECT_EQ(sub.next(1000).info().seq, 1u);  // no longer waiting
  for (int i = 0; i < 10; ++i) publish_pattern(pub);  // laps the 4 slots, no Notes
  const int before = queued();
  cuframes::Frame f;
  EXPECT_EQ(sub.try_next(0, &f), CUFRAMES_ERR_OVERRUN);
  publish_pattern(pub);
  EXPECT_EQ(queued(), before + 16) << "no Note after an OVERRUN";
}

TEST(PubSub, SpinningSubscriberReceivesEveryPacedFrame) {
  RuntimeDir dir;
  // STRICT_WAIT: a subscriber descheduled for longer than the ring lasts (a loaded machine) is
  // waited for, not lapped, so the test does not depend on being scheduled in time.
  auto po = pub_options(dir, 64, 32, 8);
  po.policy = CUFRAMES_POLICY_STRICT_WAIT;
  po.wait_timeout_ms = 60000;
  cuframes::Publisher pub("cam", po);
  auto o = sub_options(dir, CUFRAMES_MODE_STRICT_ORDER);
  o.spin_us = 200;
  cuframes::Subscriber sub("cam", o);
  std::jthread producer([&] {
    for (int i = 0; i < 60; ++i) {
      publish_pattern(pub);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a steady cadence to learn
    }
  });
  for (uint64_t want = 1; want <= 60; ++want) {
    cuframes::Frame f = sub.next(60000);
    EXPECT_EQ(f.info().seq, want);
    EXPECT_TRUE(cftest::verify_frame(f.info(), want));
  }
  producer.join();
  EXPECT_EQ(sub.stats().gaps, 0u);
  cuframes::Frame none;
  EXPECT_EQ(sub.try_next(50, &none), CUFRAMES_ERR_FRAME_TIMEOUT);  // and times out as usual
  o.spin_us = 20000;
  EXPECT_EQ(status_of([&] { cuframes::Subscriber bad("cam", o); }), CUFRAMES_ERR_INVALID_ARGUMENT);
}

TEST(PubSub, BlockingNextWakesOnPublish) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir));
  cuframes::Subscriber sub("cam", sub_options(dir));
  std::jthread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // publish while the reader waits
    publish_pattern(pub);
  });
  cuframes::Frame f = sub.next(5000);
  EXPECT_EQ(f.info().seq, 1u);
  t.join();
}

TEST(PubSub, ReleaseFromAnotherThreadAndAfterSubscriberDestroyed) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir, 64, 32, 3));
  cuframes::Frame kept;
  {
    cuframes::Subscriber sub("cam", sub_options(dir));
    publish_pattern(pub);
    cuframes::Frame f = sub.next(1000);
    std::thread([&] { f.release(); }).join();
    EXPECT_TRUE(cftest::wait_until([&] { return sub.stats().held_frames == 0; }, kSettleMs));
    publish_pattern(pub);
    kept = sub.next(1000);
  }
  // The subscriber is gone but its frame is still held and intact.
  EXPECT_EQ(pub.stats().subscribers, 1u);
  for (int i = 0; i < 20; ++i) publish_pattern(pub);
  EXPECT_TRUE(cftest::verify_frame(kept.info(), 2));
  kept.release();
  EXPECT_TRUE(cftest::wait_until([&] { return pub.stats().subscribers == 0; }, kSettleMs));
  EXPECT_EQ(pub.stats().held_slots, 0u);
}

struct CallbackSink {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> seqs;
  std::vector<cuframes_status_t> errors;
};

void on_frame(void* user, cuframes_frame_t* frame, cuframes_status_t status) {
  auto* sink = static_cast<CallbackSink*>(user);
  std::lock_guard<std::mutex> lock(sink->mu);
  if (frame != nullptr) {
    cuframes_frame_info_t fi;
    cuframes_frame_get_info(frame, &fi);
    if (cftest::verify_frame(fi, fi.seq)) sink->seqs.push_back(fi.seq);
    cuframes_frame_release(frame, nullptr);
  } else {
    sink->errors.push_back(status);
  }
  sink->cv.notify_all();
}

TEST(PubSub, CallbackRunsOnItsOwnThread) {
  RuntimeDir dir;
  auto pub = std::make_unique<cuframes::Publisher>("cam", pub_options(dir, 64, 32, 8));
  cuframes::Subscriber sub("cam", sub_options(dir, CUFRAMES_MODE_STRICT_ORDER));
  CallbackSink sink;
  ASSERT_EQ(cuframes_subscriber_start_callback(sub.get(), on_frame, &sink), CUFRAMES_OK);
  cuframes::Frame f;
  EXPECT_EQ(sub.try_next(0, &f), CUFRAMES_ERR_INVALID_ARGUMENT);  // one consumer at a time
  EXPECT_EQ(cuframes_subscriber_start_callback(sub.get(), on_frame, &sink),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  for (int i = 0; i < 5; ++i) publish_pattern(*pub);
  {
    std::unique_lock<std::mutex> lock(sink.mu);
    ASSERT_TRUE(sink.cv.wait_for(lock, std::chrono::seconds(5), [&] { return sink.seqs.size() == 5; }));
    EXPECT_EQ(sink.seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  }
  pub.reset();  // the callback learns PUBLISHER_GONE and its thread ends
  {
    std::unique_lock<std::mutex> lock(sink.mu);
    ASSERT_TRUE(sink.cv.wait_for(lock, std::chrono::seconds(5), [&] { return !sink.errors.empty(); }));
    EXPECT_EQ(sink.errors.back(), CUFRAMES_ERR_PUBLISHER_GONE);
  }
  cuframes_subscriber_stop_callback(sub.get());
  EXPECT_EQ(sub.try_next(0, &f), CUFRAMES_ERR_PUBLISHER_GONE);
  EXPECT_EQ(sub.stats().timeouts, 0u);  // the callback's polling is not counted as timeouts
}

struct SelfDestroying {
  cuframes_subscriber_t* sub = nullptr;
  bool stop_only = false;
  std::atomic<int> calls{0};
  std::atomic<bool> done{false};
};

void destroy_from_callback(void* user, cuframes_frame_t* frame, cuframes_status_t) {
  auto* s = static_cast<SelfDestroying*>(user);
  cuframes_frame_release(frame, nullptr);
  ++s->calls;
  if (s->stop_only) {
    cuframes_subscriber_stop_callback(s->sub);  // from inside: ends the loop, no self-join
  } else {
    cuframes_subscriber_destroy(s->sub);  // from inside: completes after we return
  }
  s->done = true;
}

TEST(PubSub, CallbackMayStopOrDestroyItsSubscriber) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir));
  for (bool stop_only : {true, false}) {
    SelfDestroying state;
    state.stop_only = stop_only;
    cuframes::Subscriber owner;
    auto o = sub_options(dir);
    ASSERT_EQ(cuframes_subscriber_create("cam", &o, &state.sub), CUFRAMES_OK);
    ASSERT_EQ(cuframes_subscriber_start_callback(state.sub, destroy_from_callback, &state),
              CUFRAMES_OK);
    publish_pattern(pub);
    ASSERT_TRUE(cftest::wait_until([&] { return state.done.load(); }, 5000));
    publish_pattern(pub);  // no second call: the loop has ended
    if (stop_only) {
      cuframes_subscriber_stop_callback(state.sub);  // joins the ended thread
      EXPECT_EQ(state.calls.load(), 1);
      cuframes_frame_t* f = nullptr;
      EXPECT_EQ(cuframes_subscriber_next(state.sub, 1000, &f), CUFRAMES_OK);  // usable again
      cuframes_frame_release(f, nullptr);
      cuframes_subscriber_destroy(state.sub);
    }
    EXPECT_TRUE(cftest::wait_until([&] { return pub.stats().subscribers == 0; }, kSettleMs));
    EXPECT_EQ(state.calls.load(), 1);
  }
}

// A frame waiting at subscription: the callback thread finds it at once and destroys its
// subscriber, possibly before start_callback has returned. That must wait for start_callback (it
// once detached a thread object not yet assigned: std::terminate, issue 22).
TEST(PubSub, CallbackThatDestroysItsSubscriberAtOnce) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir));
  publish_pattern(pub);
  for (int i = 0; i < 200; ++i) {
    SelfDestroying state;
    auto o = sub_options(dir);
    ASSERT_EQ(cuframes_subscriber_create("cam", &o, &state.sub), CUFRAMES_OK);
    ASSERT_EQ(cuframes_subscriber_start_callback(state.sub, destroy_from_callback, &state),
              CUFRAMES_OK);
    ASSERT_TRUE(cftest::wait_until([&] { return state.done.load(); }, 5000));
    EXPECT_EQ(state.calls.load(), 1);
  }
  EXPECT_TRUE(cftest::wait_until([&] { return pub.stats().subscribers == 0; }, kSettleMs));
}

TEST(PubSub, StopCallbackIsPromptAndRestartable) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir));
  cuframes::Subscriber sub("cam", sub_options(dir));
  CallbackSink sink;
  ASSERT_EQ(cuframes_subscriber_start_callback(sub.get(), on_frame, &sink), CUFRAMES_OK);
  // No frame will come and the callback thread waits without a timeout: only the stop itself
  // can end it (a stop that waited for a frame would hang here until ctest's timeout).
  cuframes_subscriber_stop_callback(sub.get());
  publish_pattern(pub);
  EXPECT_EQ(sub.next(1000).info().seq, 1u);  // usable directly again
  ASSERT_EQ(cuframes_subscriber_start_callback(sub.get(), on_frame, &sink), CUFRAMES_OK);
  publish_pattern(pub);
  std::unique_lock<std::mutex> lock(sink.mu);
  ASSERT_TRUE(sink.cv.wait_for(lock, std::chrono::seconds(5), [&] { return !sink.seqs.empty(); }));
  EXPECT_EQ(sink.seqs[0], 2u);
}

TEST(PubSub, ObserverSeesRingAndSubscribers) {
  RuntimeDir dir;
  auto o = pub_options(dir, 320, 240, 5);
  o.policy = CUFRAMES_POLICY_STRICT_WAIT;
  cuframes::Publisher pub("cam", o);
  cuframes::Subscriber a("cam", sub_options(dir, CUFRAMES_MODE_NEWEST_ONLY, "detector-a"));
  cuframes::Subscriber b("cam", sub_options(dir, CUFRAMES_MODE_STRICT_ORDER, "recorder"));
  cuframes::Observer obs("cam", 1000, dir.c_str());
  publish_pattern(pub);
  publish_pattern(pub);
  cuframes::Frame fa = a.next(1000);
  cuframes::Frame fb = b.next(1000);
  auto snap = obs.read();
  EXPECT_STREQ(snap.ring.key, "cam");
  EXPECT_EQ(snap.ring.geometry.width, 320u);
  EXPECT_EQ(snap.ring.policy, CUFRAMES_POLICY_STRICT_WAIT);
  EXPECT_EQ(snap.ring.stats.published, 2u);
  EXPECT_EQ(snap.ring.stats.last_seq, 2u);
  EXPECT_EQ(snap.ring.stats.slots, 5u);
  EXPECT_EQ(snap.ring.stats.subscribers, 2u);  // the observer is not a subscriber
  EXPECT_EQ(snap.ring.stats.held_slots, 2u);   // seq 2 (a) and seq 1 (b)
  EXPECT_EQ(snap.ring.publisher_pid, getpid());
  ASSERT_EQ(snap.subscribers.size(), 2u);
  std::set<std::string> names;
  for (auto& s : snap.subscribers) {
    names.insert(s.name);
    EXPECT_EQ(s.pid, getpid());
    EXPECT_EQ(s.frames_received, 1u);
    EXPECT_EQ(s.held_frames, 1u);
    if (std::string(s.name) == "recorder") {
      EXPECT_EQ(s.mode, CUFRAMES_MODE_STRICT_ORDER);
      EXPECT_EQ(s.last_seq, 1u);
      EXPECT_EQ(s.lag, 1u);
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"detector-a", "recorder"}));
  // The publisher's own view agrees.
  auto own = pub.subscribers();
  EXPECT_EQ(own.size(), 2u);
}

TEST(PubSub, DefaultConsumerNameIsProgramAndPid) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", pub_options(dir));
  cuframes::Subscriber sub("cam", sub_options(dir));
  std::string name = sub.name();
  EXPECT_NE(name.find("-" + std::to_string(getpid())), std::string::npos) << name;
  EXPECT_TRUE(cuframes::detail::valid_name(name));
}

TEST(PubSub, ListPublishersShowsLiveKeysOnly) {
  RuntimeDir dir;
  EXPECT_TRUE(cuframes::list_publishers(dir.c_str()).empty());
  auto a = std::make_unique<cuframes::Publisher>("cam-b", pub_options(dir));
  cuframes::Publisher b("cam-a", pub_options(dir));
  EXPECT_EQ(cuframes::list_publishers(dir.c_str()), (std::vector<std::string>{"cam-a", "cam-b"}));
  a.reset();
  EXPECT_EQ(cuframes::list_publishers(dir.c_str()), (std::vector<std::string>{"cam-a"}));
}

TEST(PubSub, KeyInUseIsRefusedAndFreedOnDestroy) {
  RuntimeDir dir;
  auto a = std::make_unique<cuframes::Publisher>("cam", pub_options(dir));
  EXPECT_EQ(status_of([&] { cuframes::Publisher b("cam", pub_options(dir)); }),
            CUFRAMES_ERR_SHM);
  EXPECT_NE(std::string(cuframes_last_error()).find("already published"), std::string::npos);
  a.reset();
  cuframes::Publisher c("cam", pub_options(dir));  // free again
}

// A clean stop leaves nothing in the runtime directory, and neither does a failed start (issue 20).
TEST(PubSub, CleanStopLeavesNothingBehind) {
  RuntimeDir dir;
  auto files = [&] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      names.push_back(e.path().filename().string());
    }
    return names;
  };
  {
    cuframes::Publisher pub("cam", pub_options(dir));
    cuframes::Subscriber sub("cam", sub_options(dir));
    cuframes::Observer obs("cam", 1000, dir.c_str());
    publish_pattern(pub);
    cuframes::Frame f = sub.next(1000);
    EXPECT_EQ(files().size(), 2u);  // cam.lock, cam.sock
  }
  EXPECT_EQ(files(), std::vector<std::string>{});
  auto bad = pub_options(dir);
  bad.memory = CUFRAMES_MEMORY_CUDA;
  bad.cuda_device = 999;  // with CUDA: refused once the key is locked (no such device, or no GPU)
  EXPECT_NE(status_of([&] { cuframes::Publisher p("cam", bad); }), CUFRAMES_OK);
  EXPECT_EQ(files(), std::vector<std::string>{});
}

// Lock files come and go with their publishers: still one publisher per key at any time.
TEST(PubSub, OnePublisherPerKeyWhileLockFilesComeAndGo) {
  RuntimeDir dir;
  std::atomic<int> owners{0}, most{0}, created{0};
  {
    std::vector<std::jthread> racers;
    for (int t = 0; t < 4; ++t) {
      racers.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          cuframes_publisher_options_t o = pub_options(dir);
          cuframes_publisher_t* p = nullptr;
          if (cuframes_publisher_create("cam", &o, &p) != CUFRAMES_OK) continue;
          const int now = ++owners;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          ++created;
          --owners;
          cuframes_publisher_destroy(p);
        }
      });
    }
  }
  EXPECT_EQ(most.load(), 1);
  EXPECT_GT(created.load(), 0);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/cam.lock"));
}

TEST(PubSub, NoPublisherIsPublisherGone) {
  RuntimeDir dir;
  auto o = sub_options(dir);
  o.connect_timeout_ms = 0;
  EXPECT_EQ(status_of([&] { cuframes::Subscriber s("nobody", o); }),
            CUFRAMES_ERR_PUBLISHER_GONE);
  EXPECT_NE(std::string(cuframes_last_error()).find("no publisher for 'nobody'"),
            std::string::npos);
  o.connect_timeout_ms = 100;
  int64_t t0 = cuframes::now_ns();
  EXPECT_EQ(status_of([&] { cuframes::Subscriber s("nobody", o); }),
            CUFRAMES_ERR_PUBLISHER_GONE);
  EXPECT_GE(cftest::ms_since(t0), 95);
}

TEST(PubSub, SubscriberWaitsForAPublisherToAppear) {
  RuntimeDir dir;
  std::unique_ptr<cuframes::Publisher> pub;
  std::jthread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // appear while it waits
    pub = std::make_unique<cuframes::Publisher>("late", pub_options(dir));
  });
  auto o = sub_options(dir);
  o.connect_timeout_ms = -1;  // returns only once attached
  cuframes::Subscriber sub("late", o);
  t.join();
  publish_pattern(*pub);
  EXPECT_EQ(sub.next(kSettleMs).info().seq, 1u);  // to the publisher that appeared
}

TEST(PubSub, PublisherGoneIsImmediateAndHeldFramesStayReadable) {
  RuntimeDir dir;
  auto pub = std::make_unique<cuframes::Publisher>("cam", pub_options(dir));
  cuframes::Subscriber sub("cam", sub_options(dir));
  publish_pattern(*pub);
  cuframes::Frame held = sub.next(1000);
  pub.reset();
  // No timeout: only the hang-up can end the wait.
  EXPECT_EQ(status_of([&] { sub.next(-1); }), CUFRAMES_ERR_PUBLISHER_GONE);
  EXPECT_TRUE(cftest::verify_frame(held.info(), 1));
  held.release();
}

TEST(PubSub, NewPublisherHasNewEpoch) {
  RuntimeDir dir;
  auto pub = std::make_unique<cuframes::Publisher>("cam", pub_options(dir));
  uint64_t e1 = cuframes::Observer("cam", 1000, dir.c_str()).read().ring.epoch;
  cuframes::Subscriber old_sub("cam", sub_options(dir));
  pub.reset();
  pub = std::make_unique<cuframes::Publisher>("cam", pub_options(dir));
  publish_pattern(*pub);
  // The old subscriber never touches the new ring.
  EXPECT_EQ(status_of([&] { old_sub.next(1000); }), CUFRAMES_ERR_PUBLISHER_GONE);
  uint64_t e2 = cuframes::Observer("cam", 1000, dir.c_str()).read().ring.epoch;
  EXPECT_NE(e1, e2);
  cuframes::Subscriber new_sub("cam", sub_options(dir));
  EXPECT_EQ(new_sub.next(1000).info().seq, 1u);
}

TEST(PubSub, SubscriberTableFull) {
  RuntimeDir dir;
  auto o = pub_options(dir);
  o.max_subscribers = 2;
  cuframes::Publisher pub("cam", o);
  cuframes::Subscriber a("cam", sub_options(dir));
  auto b = std::make_unique<cuframes::Subscriber>("cam", sub_options(dir));
  EXPECT_EQ(status_of([&] { cuframes::Subscriber c("cam", sub_options(dir)); }),
            CUFRAMES_ERR_SHM);
  EXPECT_NE(std::string(cuframes_last_error()).find("full"), std::string::npos);
  b.reset();
  // The freed entry is reused once the publisher has seen the hang-up.
  EXPECT_TRUE(cftest::wait_until([&] { return pub.stats().subscribers == 1; }, kSettleMs));
  cuframes::Subscriber d("cam", sub_options(dir));
}

TEST(PubSub, InvalidArgumentsAreNamed) {
  RuntimeDir dir;
  auto o = pub_options(dir);
  o.slots = 1;
  EXPECT_EQ(status_of([&] { cuframes::Publisher p("cam", o); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("slots 1"), std::string::npos);
  o = pub_options(dir);
  EXPECT_EQ(status_of([&] { cuframes::Publisher p("bad key", o); }),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("invalid key"), std::string::npos);
  o.width = 0;
  EXPECT_EQ(status_of([&] { cuframes::Publisher p("cam", o); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  o = pub_options(dir);
  o.packet_ring_bytes = 10;
  EXPECT_EQ(status_of([&] { cuframes::Publisher p("cam", o); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  auto so = sub_options(dir);
  so.consumer_name = "no spaces";
  EXPECT_EQ(status_of([&] { cuframes::Subscriber s("cam", so); }),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("consumer_name"), std::string::npos);
  cuframes_publisher_t* p = nullptr;
  EXPECT_EQ(cuframes_publisher_create("cam", nullptr, &p), CUFRAMES_ERR_INVALID_ARGUMENT);
  {
    cuframes::Publisher pub("cam", pub_options(dir));
    cuframes::Subscriber sub("cam", sub_options(dir));
    cuframes::Frame f;
    EXPECT_EQ(sub.try_next(-2, &f), CUFRAMES_ERR_INVALID_ARGUMENT);
    cuframes_codec_params_t cp{};
    cp.codec = static_cast<cuframes_codec_t>(77);
    EXPECT_EQ(cuframes_publisher_set_codec(pub.get(), &cp), CUFRAMES_ERR_INVALID_ARGUMENT);
  }
  EXPECT_EQ(cuframes_subscriber_next(nullptr, 0, nullptr), CUFRAMES_ERR_INVALID_ARGUMENT);
}

// Where there is no usable CUDA, asking for a cuda ring is a clear DEVICE_LOST and host rings go
// on working; on the GPU machine (CUFRAMES_TEST_EXPECT_GPU=1) the same request succeeds.
TEST(PubSub, CudaRingWorksOrFailsClearly) {
  RuntimeDir dir;
  auto o = cftest::host_pub_options(dir);
  o.memory = CUFRAMES_MEMORY_CUDA;
  const char* expect_gpu = std::getenv("CUFRAMES_TEST_EXPECT_GPU");
  if (expect_gpu != nullptr && std::string(expect_gpu) == "1") {
    cuframes::Publisher pub("cuda", o);
    cuframes::Subscriber sub("cuda", sub_options(dir));
    ASSERT_NE(publish_pattern(pub), 0u);
    cuframes::Frame f = sub.next(1000);
    EXPECT_EQ(f.info().memory, CUFRAMES_MEMORY_CUDA);
    EXPECT_EQ(f.info().geometry.pitch_y % 256, 0u);
    EXPECT_TRUE(cftest::verify_frame(f.info(), f.info().seq));
  } else {
    EXPECT_EQ(status_of([&] { cuframes::Publisher p("cuda", o); }), CUFRAMES_ERR_DEVICE_LOST);
    std::string msg = cuframes_last_error();
    EXPECT_TRUE(msg.find("CUDA") != std::string::npos) << msg;
    // The host backend is unaffected.
    cuframes::Publisher host("host", cftest::host_pub_options(dir));
    cuframes::Subscriber sub("host", sub_options(dir));
    ASSERT_NE(publish_pattern(host), 0u);
    EXPECT_TRUE(cftest::verify_frame(sub.next(1000).info(), 1));
  }
}

}  // namespace
