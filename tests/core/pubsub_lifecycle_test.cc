// Publish/subscribe in one process: observers, names, listing, keys and lock files, a publisher
// gone and a new one, the subscriber table, invalid arguments, cuda rings.
#include "pubsub_test_util.h"

namespace {

using cftest::kSettleMs;
using cftest::status_of;

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
  EXPECT_EQ(status_of([&] { cuframes::Publisher b("cam", pub_options(dir)); }), CUFRAMES_ERR_SHM);
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
  EXPECT_EQ(status_of([&] { cuframes::Subscriber s("nobody", o); }), CUFRAMES_ERR_PUBLISHER_GONE);
  EXPECT_NE(std::string(cuframes_last_error()).find("no publisher for 'nobody'"),
            std::string::npos);
  o.connect_timeout_ms = 100;
  int64_t t0 = cuframes::now_ns();
  EXPECT_EQ(status_of([&] { cuframes::Subscriber s("nobody", o); }), CUFRAMES_ERR_PUBLISHER_GONE);
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
  EXPECT_EQ(status_of([&] { cuframes::Subscriber c("cam", sub_options(dir)); }), CUFRAMES_ERR_SHM);
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
  EXPECT_EQ(status_of([&] { cuframes::Publisher p("bad key", o); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("invalid key"), std::string::npos);
  o.width = 0;
  EXPECT_EQ(status_of([&] { cuframes::Publisher p("cam", o); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  o = pub_options(dir);
  o.packet_ring_bytes = 10;
  EXPECT_EQ(status_of([&] { cuframes::Publisher p("cam", o); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  auto so = sub_options(dir);
  so.consumer_name = "no spaces";
  EXPECT_EQ(status_of([&] { cuframes::Subscriber s("cam", so); }), CUFRAMES_ERR_INVALID_ARGUMENT);
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
