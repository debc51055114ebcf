// Publish/subscribe in one process: waiting on the fd, Notes, spinning, blocking next(), releases
// from other threads, callbacks.
#include "pubsub_test_util.h"

namespace {

using cftest::kSettleMs;
using cftest::status_of;

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
  EXPECT_EQ(sub.next(1000).info().seq, 1u);           // taken from the ring: no longer waiting
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
  EXPECT_EQ(sub.next(1000).info().seq, 1u);           // no longer waiting
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

namespace {

// spin_warm's calls, and how many of them came on another thread than the one waiting.
struct WarmCalls {
  std::atomic<int> calls{0}, elsewhere{0};
  std::thread::id waiter = std::this_thread::get_id();
  static void hook(void* arg) {
    auto* w = static_cast<WarmCalls*>(arg);
    if (std::this_thread::get_id() != w->waiter) ++w->elsewhere;
    ++w->calls;
  }
};

// 60 frames published every period_ms (a cadence to learn) on a STRICT_WAIT ring (a descheduled
// reader is waited for, not lapped): a subscriber with options `mine` reads them on this thread,
// each frame's pixels checked, one with `other` on another thread; both get every frame. Then
// after(mine's subscriber), the publisher still there.
void read_paced(const RuntimeDir& dir, const cuframes::Subscriber::Options& mine,
                const cuframes::Subscriber::Options& other, int period_ms,
                const std::function<void(cuframes::Subscriber&)>& after) {
  auto po = pub_options(dir, 64, 32, 8);
  po.policy = CUFRAMES_POLICY_STRICT_WAIT;
  po.wait_timeout_ms = 60000;
  cuframes::Publisher pub("cam", po);
  cuframes::Subscriber first("cam", mine);
  cuframes::Subscriber second("cam", other);
  std::jthread producer([&] {
    for (int i = 0; i < 60; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(period_ms));
      publish_pattern(pub);
    }
  });
  std::jthread reader([&] {
    for (uint64_t want = 1; want <= 60; ++want) EXPECT_EQ(second.next(60000).info().seq, want);
  });
  for (uint64_t want = 1; want <= 60; ++want) {
    cuframes::Frame f = first.next(60000);
    EXPECT_EQ(f.info().seq, want);
    EXPECT_TRUE(cftest::verify_frame(f.info(), want));
  }
  producer.join();
  reader.join();
  after(first);
}

}  // namespace

// options.spin_warm: called on the waiting thread when a spin window opens with no frame yet;
// never without spin_us. Frames come through as before.
TEST(PubSub, SpinWarmRunsOnTheWaitingThreadWhenAWindowOpens) {
  RuntimeDir dir;
  WarmCalls spin, sleep;
  auto o = sub_options(dir, CUFRAMES_MODE_STRICT_ORDER);
  o.spin_us = 300;
  o.spin_warm = &WarmCalls::hook;
  o.spin_warm_arg = &spin;
  auto sleeping = o;
  sleeping.spin_us = 0;
  sleeping.spin_warm_arg = &sleep;
  read_paced(dir, o, sleeping, 4, [](cuframes::Subscriber&) {});
  EXPECT_GT(spin.calls.load(), 0);  // the windows opened before frames (the cadence learned)
  EXPECT_EQ(spin.elsewhere.load(), 0);
  EXPECT_EQ(sleep.calls.load(), 0);  // no spin_us: no windows
}

// options.warm_us: a sleeping subscriber wakes before each frame, calls spin_warm on the waiting
// thread with no frame there yet, and sleeps again until the frame's note; every frame comes
// through, also to one without spin_warm. warm_us above 10000 is refused.
TEST(PubSub, WarmUsWakesBeforeTheFrameAndSleepsAgain) {
  RuntimeDir dir;
  WarmCalls warm;
  auto o = sub_options(dir, CUFRAMES_MODE_STRICT_ORDER);
  o.warm_us = 2000;
  o.spin_warm = &WarmCalls::hook;
  o.spin_warm_arg = &warm;
  auto hookless = o;
  hookless.spin_warm = nullptr;  // the early wake-up alone
  read_paced(dir, o, hookless, 5, [](cuframes::Subscriber& sub) {
    cuframes::Frame none;
    EXPECT_EQ(sub.try_next(50, &none), CUFRAMES_ERR_FRAME_TIMEOUT);  // and times out as usual
  });
  // once per next() call at most, and on most frames once the cadence is known
  EXPECT_GT(warm.calls.load(), 10);
  EXPECT_LE(warm.calls.load(), 61);
  EXPECT_EQ(warm.elsewhere.load(), 0);
  o.warm_us = 10001;
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
    ASSERT_TRUE(
        sink.cv.wait_for(lock, std::chrono::seconds(5), [&] { return sink.seqs.size() == 5; }));
    EXPECT_EQ(sink.seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  }
  pub.reset();  // the callback learns PUBLISHER_GONE and its thread ends
  {
    std::unique_lock<std::mutex> lock(sink.mu);
    ASSERT_TRUE(
        sink.cv.wait_for(lock, std::chrono::seconds(5), [&] { return !sink.errors.empty(); }));
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

}  // namespace
