// Bad input at the real publisher: garbage handshakes, fds it did not ask for, silent connections,
// running out of fds, and peers scribbling over whatever memory they were given. The publisher
// closes that peer, says why, and keeps serving everyone else.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fstream>

#include <functional>
#include <thread>

#include "client.h"
#include "common/test_util.h"
#include "geometry.h"
#include "layout.h"
#include "runtime_dir.h"
#include "shm.h"
#include "socket.h"
#include "wire.h"

namespace cd = cuframes::detail;
using cftest::RuntimeDir;

namespace {

size_t open_fds() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

// Garbage from peers at the real publisher: it closes that peer, says why, and keeps serving.

class PublisherUnderAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    cuframes_set_log_handler(
        [](void* self, cuframes_log_level_t, const char* m) {
          auto* t = static_cast<PublisherUnderAttack*>(self);
          std::lock_guard<std::mutex> lock(t->mu_);
          t->logs_.push_back(m);
        },
        this, CUFRAMES_LOG_WARN);
    pub_ = std::make_unique<cuframes::Publisher>("cam", cftest::host_pub_options(dir_));
  }
  void TearDown() override {
    pub_.reset();
    cuframes_set_log_handler(nullptr, nullptr, CUFRAMES_LOG_WARN);
  }
  cd::UniqueFd raw_connect() {
    cd::UniqueFd fd;
    bool no_listener = false;
    EXPECT_TRUE(cd::connect_unix(cd::socket_path(dir_.path(), "cam"), &fd, &no_listener).ok());
    return fd;
  }
  // Waits for the publisher's reply or hang-up; returns the reply bytes ("" on hang-up).
  std::string reply(int fd) {
    short rev = 0;
    EXPECT_TRUE(cd::poll_in(fd, 3000, &rev).ok());
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  bool logged(const std::string& part) {
    return cftest::wait_until(
        [&] {
          std::lock_guard<std::mutex> lock(mu_);
          for (auto& l : logs_)
            if (l.find(part) != std::string::npos) return true;
          return false;
        },
        2000);
  }
  void still_serves() {
    cuframes::Subscriber sub("cam", cftest::sub_options(dir_));
    ASSERT_NE(cftest::publish_pattern(*pub_), 0u);
    cuframes::Frame f = sub.next(1000);
    EXPECT_TRUE(cftest::verify_frame(f.info(), f.info().seq));
  }

  RuntimeDir dir_;
  std::unique_ptr<cuframes::Publisher> pub_;
  std::mutex mu_;
  std::vector<std::string> logs_;
};

TEST_F(PublisherUnderAttack, GarbageIsClosedAndLogged) {
  cd::UniqueFd fd = raw_connect();
  const char junk[] = "GET / HTTP/1.0\r\n\r\n";
  send(fd.get(), junk, sizeof junk, MSG_NOSIGNAL);
  EXPECT_EQ(reply(fd.get()), "");
  EXPECT_TRUE(logged("garbage handshake"));
  still_serves();
}

TEST_F(PublisherUnderAttack, TooShortHelloIsRefused) {
  cd::UniqueFd fd = raw_connect();
  cd::Preamble p{cd::kWireMagic, cd::kProtocolVersion, static_cast<uint32_t>(cd::MsgType::kHello)};
  send(fd.get(), &p, sizeof p, MSG_NOSIGNAL);
  std::string r = reply(fd.get());
  ASSERT_EQ(r.size(), sizeof(cd::Welcome));
  cd::Welcome w;
  std::memcpy(&w, r.data(), sizeof w);
  EXPECT_EQ(w.status, CUFRAMES_ERR_SHM);
  EXPECT_TRUE(logged("malformed hello"));
  still_serves();
}

TEST_F(PublisherUnderAttack, OtherVersionGetsProtocolMismatch) {
  cd::UniqueFd fd = raw_connect();
  cd::Hello h = cd::make_hello(cd::Role::kSubscriber);
  h.pre.version = 99;
  send(fd.get(), &h, sizeof h, MSG_NOSIGNAL);
  std::string r = reply(fd.get());
  ASSERT_EQ(r.size(), sizeof(cd::Welcome));
  cd::Welcome w;
  std::memcpy(&w, r.data(), sizeof w);
  EXPECT_EQ(w.status, CUFRAMES_ERR_PROTOCOL_MISMATCH);
  EXPECT_EQ(w.pre.version, cd::kProtocolVersion);
  EXPECT_NE(std::string(w.message).find("v99"), std::string::npos);
  still_serves();
}

TEST_F(PublisherUnderAttack, BadHelloFieldsAreRefusedByName) {
  struct {
    std::function<void(cd::Hello&)> mutate;
    const char* part;
  } cases[] = {
      {[](cd::Hello& h) { h.role = 77; }, "unknown role 77"},
      {[](cd::Hello& h) { h.mode = 5; }, "unknown subscriber mode 5"},
      {[](cd::Hello& h) { std::memset(h.name, 'x', sizeof h.name); }, "invalid consumer name"},
      {[](cd::Hello& h) { std::strcpy(h.name, "bad/name"); }, "invalid consumer name"},
  };
  for (auto& c : cases) {
    cd::UniqueFd fd = raw_connect();
    cd::Hello h = cd::make_hello(cd::Role::kSubscriber);
    std::strcpy(h.name, "ok");
    c.mutate(h);
    send(fd.get(), &h, sizeof h, MSG_NOSIGNAL);
    std::string r = reply(fd.get());
    ASSERT_EQ(r.size(), sizeof(cd::Welcome)) << c.part;
    cd::Welcome w;
    std::memcpy(&w, r.data(), sizeof w);
    EXPECT_EQ(w.status, CUFRAMES_ERR_INVALID_ARGUMENT) << c.part;
    EXPECT_NE(std::string(w.message).find(c.part), std::string::npos) << w.message;
  }
  EXPECT_EQ(pub_->stats().subscribers, 0u);  // no table entry leaked
  still_serves();
}

TEST_F(PublisherUnderAttack, FdsSentByAPeerAreClosed) {
  size_t before = open_fds();
  for (int i = 0; i < 20; ++i) {
    cd::UniqueFd fd = raw_connect();
    cd::UniqueFd junk[4] = {
        cd::UniqueFd(eventfd(0, EFD_CLOEXEC)), cd::UniqueFd(eventfd(0, EFD_CLOEXEC)),
        cd::UniqueFd(eventfd(0, EFD_CLOEXEC)), cd::UniqueFd(eventfd(0, EFD_CLOEXEC))};
    int fds[4] = {junk[0].get(), junk[1].get(), junk[2].get(), junk[3].get()};
    const char garbage[] = "xxxxxxxxxxxxxxxxxxxxxxxxxx";
    ASSERT_TRUE(cd::send_message(fd.get(), garbage, sizeof garbage, fds, 4).ok());
    EXPECT_EQ(reply(fd.get()), "");
  }
  EXPECT_TRUE(cftest::wait_until([&] { return open_fds() <= before; }, 2000))
      << open_fds() << " fds open, " << before << " before";
  still_serves();
}

TEST_F(PublisherUnderAttack, SilentConnectionsDoNotLockOthersOut) {
  std::vector<cd::UniqueFd> silent;
  for (int i = 0; i < 40; ++i) silent.push_back(raw_connect());  // more than the 32 pending slots
  int64_t t0 = cuframes::now_ns();
  still_serves();
  EXPECT_LT(cftest::ms_since(t0), 1000);  // well before the 2 s handshake timeout
  EXPECT_TRUE(logged("dropping the oldest silent connection"));
}

TEST_F(PublisherUnderAttack, ObserversAreCapped) {
  std::vector<std::unique_ptr<cuframes::Observer>> observers;
  for (int i = 0; i < 64; ++i) {
    observers.push_back(std::make_unique<cuframes::Observer>("cam", 1000, dir_.c_str()));
  }
  try {
    cuframes::Observer extra("cam", 1000, dir_.c_str());
    ADD_FAILURE() << "the 65th observer was accepted";
  } catch (const cuframes::Error& e) {
    EXPECT_EQ(e.status(), CUFRAMES_ERR_SHM);
    EXPECT_NE(std::string(e.what()).find("observers"), std::string::npos) << e.what();
  }
  still_serves();
}

TEST_F(PublisherUnderAttack, RunningOutOfFdsDoesNotSpin) {
  // A publisher process allowed few fds, flooded with connections it cannot accept: it must back
  // off (not burn a CPU) and serve again once fds are free.
  RuntimeDir dir;
  cftest::Peer pub({"publish", "--dir", dir.path(), "--key", "cam", "--count", "-1", "--fps", "100",
                    "--nofile", "48"});
  ASSERT_EQ(pub.expect("READY").rfind("READY", 0), 0u);
  std::vector<cd::UniqueFd> conns;
  for (int i = 0; i < 80; ++i) {
    cd::UniqueFd fd;
    bool retry = false;
    if (cd::connect_unix(cd::socket_path(dir.path(), "cam"), &fd, &retry).ok()) {
      conns.push_back(std::move(fd));
    }
  }
  auto cpu_ticks = [&] {
    std::ifstream stat("/proc/" + std::to_string(pub.pid()) + "/stat");
    std::string tok;
    long long t = 0;
    for (int i = 1; i <= 15 && stat >> tok; ++i)
      if (i == 14 || i == 15) t += std::atoll(tok.c_str());
    return t;
  };
  long long before = cpu_ticks();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // the span we measure over
  long long used = cpu_ticks() - before;
  const long long hz = sysconf(_SC_CLK_TCK);
  std::printf("publisher out of fds used %lld of %lld ticks in 1 s\n", used, hz);
  EXPECT_LT(used, hz / 4) << "the publisher spins when it cannot accept";
  conns.clear();
  cuframes::Subscriber sub("cam", cftest::sub_options(dir));
  EXPECT_GT(sub.next(3000).info().seq, 0u);
}

TEST(Runtime, SymlinkedLockFileIsRefused) {
  RuntimeDir dir;
  std::string victim = dir.path() + "/victim";
  {
    std::ofstream f(victim);
    f << "precious";
  }
  ::chmod(victim.c_str(), 0600);
  ASSERT_EQ(::symlink(victim.c_str(), (dir.path() + "/cam.lock").c_str()), 0);
  try {
    cuframes::Publisher pub("cam", cftest::host_pub_options(dir));
    ADD_FAILURE() << "publisher followed a symlinked lock file";
  } catch (const cuframes::Error& e) {
    EXPECT_EQ(e.status(), CUFRAMES_ERR_SHM);
  }
  std::ifstream f(victim);
  std::string content;
  f >> content;
  EXPECT_EQ(content, "precious");
  struct stat st;
  ASSERT_EQ(::stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Runtime, FullBacklogHonoursConnectTimeout) {
  // A "publisher" that never accepts (frozen): once its backlog is full, connecting must still
  // give up at connect_timeout_ms.
  RuntimeDir dir;
  cd::UniqueFd listen(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = cd::socket_path(dir.path(), "frozen");
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(bind(listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listen.get(), 0), 0);
  std::vector<cd::UniqueFd> fill;
  for (int i = 0; i < 8; ++i) {
    cd::UniqueFd fd;
    bool retry = false;
    if (cd::connect_unix(path, &fd, &retry).ok()) fill.push_back(std::move(fd));
  }
  auto o = cftest::sub_options(dir);
  o.connect_timeout_ms = 300;
  int64_t t0 = cuframes::now_ns();
  try {
    cuframes::Subscriber s("frozen", o);
  } catch (const cuframes::Error&) {
  }
  const int64_t ms = cftest::ms_since(t0);
  EXPECT_GE(ms, 250);
  EXPECT_LT(ms, 2000);
}

// A raw peer attached with the role's Hello, keeping every fd the publisher gave it.
struct RawPeer {
  cd::Connection c;
  cd::Mapping header, table, entry;
  cd::RingInfo info;
  cd::SubscriberEntry* me = nullptr;  // subscribers: its own entry, read-write

  RawPeer(const std::string& dir, cd::Role role) {
    cd::Hello h = cd::make_hello(role);
    std::strcpy(h.name, "vandal");
    EXPECT_TRUE(cd::connect_to_publisher(dir, "cam", h, 1000, &c).ok());
    EXPECT_TRUE(cd::map_ring_header(c.fds[0].get(), c.welcome, &header, &info).ok());
    EXPECT_TRUE(cd::map_table(c.fds[1].get(), c.welcome, info, &table).ok());
    if (role == cd::Role::kSubscriber) {
      EXPECT_TRUE(
          cd::map_own_entry(c.fds[2].get(), c.welcome, info, *table.as<cd::TableHeader>(), &entry)
              .ok());
      me = entry.as<cd::SubscriberEntry>();
    }
  }

  // Tries every way to write through fd i: a writable shared mapping, write(), and the same
  // after re-opening the file read-write through /proc/self/fd. Whatever succeeds is used to
  // fill the memory with ones (every hold bit set, every magic broken). Returns how many ways
  // worked.
  int scribble(size_t i) {
    int worked = 0;
    const int fd = c.fds[i].get();
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) return 0;
    const auto size = static_cast<size_t>(st.st_size);
    std::vector<uint8_t> ones(size, 0xff);
    auto try_fd = [&](int f) {
      void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
      if (p != MAP_FAILED) {
        ++worked;
        std::memset(p, 0xff, size);
        munmap(p, size);
      }
      if (pwrite(f, ones.data(), size, 0) > 0) ++worked;
    };
    try_fd(fd);
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    cd::UniqueFd rw(open(proc.c_str(), O_RDWR | O_CLOEXEC));
    if (rw.valid()) try_fd(rw.get());
    return worked;
  }
};

// The issue-14 fault: one observer overwrote the table's magic and locked every later peer out.
// Every fd an observer gets is sealed against writing, whatever it tries.
TEST_F(PublisherUnderAttack, AnObserverCanWriteNothing) {
  cuframes::Subscriber honest("cam",
                              cftest::sub_options(dir_, CUFRAMES_MODE_NEWEST_ONLY, "honest"));
  RawPeer vandal(dir_.path(), cd::Role::kObserver);
  ASSERT_EQ(vandal.c.fds.size(), 2u);
  for (size_t i = 0; i < vandal.c.fds.size(); ++i) EXPECT_EQ(vandal.scribble(i), 0) << "fd " << i;
  // Every later peer attaches, and the ring goes on.
  still_serves();
  cuframes::Observer obs("cam", 1000, dir_.c_str());
  EXPECT_EQ(obs.read().subscribers.size(), 1u);
  for (int i = 0; i < 10; ++i) ASSERT_NE(cftest::publish_pattern(*pub_), 0u);
  EXPECT_EQ(honest.next(1000).info().seq, pub_->stats().last_seq);
}

// The other issue-14 fault: a subscriber that set another entry's holds froze publication, even
// after it had gone. A subscriber can write its own entry and nothing else.
TEST_F(PublisherUnderAttack, ASubscriberCanWriteOnlyItsOwnEntry) {
  cuframes::Subscriber honest("cam",
                              cftest::sub_options(dir_, CUFRAMES_MODE_NEWEST_ONLY, "honest"));
  ASSERT_NE(cftest::publish_pattern(*pub_), 0u);
  cuframes::Frame kept = honest.next(1000);
  auto vandal = std::make_unique<RawPeer>(dir_.path(), cd::Role::kSubscriber);
  ASSERT_EQ(vandal->c.fds.size(), 4u);  // header, table, its entry, frames
  for (size_t i : {0u, 1u, 3u}) EXPECT_EQ(vandal->scribble(i), 0) << "fd " << i;
  EXPECT_GT(vandal->scribble(2), 0);  // its own entry: every hold set, every magic broken
  // While it lives it holds what it claims: frames are dropped (counted), the held one is safe.
  EXPECT_EQ(cftest::publish_pattern(*pub_), 0u);
  EXPECT_GT(pub_->stats().dropped, 0u);
  EXPECT_TRUE(cftest::verify_frame(kept.info(), 1));
  // Gone, it leaves nothing behind: full speed again, the honest subscriber reads on.
  vandal.reset();
  ASSERT_TRUE(cftest::wait_until([&] { return pub_->stats().subscribers == 1; }, 2000));
  kept.release();
  const uint64_t dropped = pub_->stats().dropped;
  for (int i = 0; i < 20; ++i) ASSERT_NE(cftest::publish_pattern(*pub_), 0u);
  EXPECT_EQ(pub_->stats().dropped, dropped);
  cuframes::Frame f = honest.next(1000);
  EXPECT_EQ(f.info().seq, pub_->stats().last_seq);
  EXPECT_TRUE(cftest::verify_frame(f.info(), f.info().seq));
  still_serves();
}

TEST_F(PublisherUnderAttack, ScribbledOwnEntryDoesNotBreakThePublisher) {
  cuframes::Subscriber honest("cam",
                              cftest::sub_options(dir_, CUFRAMES_MODE_NEWEST_ONLY, "honest"));
  RawPeer vandal(dir_.path(), cd::Role::kSubscriber);
  cd::SubscriberEntry& e = *vandal.me;
  cd::wr(e.magic, 0);
  cd::wr(e.version, 77);
  cd::wr(e.index, 12345);
  cd::wr(e.generation, 12345);
  cd::wr(e.waiting, 0xdeadbeef);
  cd::wr(e.holds, ~0xfull);  // every bit but the ring's 4 slots: masked away
  cd::wr(e.cursor, 0);
  for (auto& c : e.counters.v) cd::wr(c, ~0ull);
  for (int i = 0; i < 10; ++i) ASSERT_NE(cftest::publish_pattern(*pub_), 0u);
  cuframes::Frame f = honest.next(1000);
  EXPECT_EQ(f.info().seq, 10u);
  EXPECT_TRUE(cftest::verify_frame(f.info(), f.info().seq));
  f.release();
  EXPECT_EQ(pub_->stats().held_slots, 0u);
  // Its identity is the publisher's record, not what it wrote; its counters are its own lies.
  cuframes::Observer obs("cam", 1000, dir_.c_str());
  std::vector<cuframes_subscriber_stats_t> subs = obs.read().subscribers;
  ASSERT_EQ(subs.size(), 2u);
  const auto& v = std::string(subs[0].name) == "vandal" ? subs[0] : subs[1];
  EXPECT_STREQ(v.name, "vandal");
  EXPECT_EQ(v.pid, ::getpid());
  EXPECT_EQ(v.frames_received, ~0ull);
  EXPECT_EQ(v.held_frames, 0u);  // bits beyond the ring's slots are not holds
  // The vandal claims every slot: the publisher drops (and counts) rather than overwrite.
  cd::wr(e.holds, ~0ull);
  EXPECT_EQ(cftest::publish_pattern(*pub_), 0u);
  EXPECT_GT(pub_->stats().dropped, 0u);
  // It leaves: everything it claimed is reclaimed and the entry is free again.
  vandal.c.sock.reset();
  EXPECT_TRUE(cftest::wait_until([&] { return pub_->stats().subscribers == 1; }, 1000));
  EXPECT_EQ(pub_->stats().held_slots, 0u);
  still_serves();
}

// Observers read the counters as the publisher copied them: at attach, and again before each
// read, which first asks the publisher for a refresh (docs/protocol.md 3.7, 4.3).
TEST_F(PublisherUnderAttack, ObserversSeeCountersCopiedByThePublisher) {
  cuframes::Subscriber sub("cam", cftest::sub_options(dir_, CUFRAMES_MODE_NEWEST_ONLY, "reader"));
  cuframes::Observer obs("cam", 1000, dir_.c_str());
  ASSERT_EQ(obs.read().subscribers.size(), 1u);
  EXPECT_EQ(obs.read().subscribers[0].frames_received, 0u);
  ASSERT_NE(cftest::publish_pattern(*pub_), 0u);
  cuframes::Frame f = sub.next(1000);
  EXPECT_TRUE(cftest::wait_until(
      [&] {
        auto r = obs.read();
        return r.subscribers.size() == 1 && r.subscribers[0].frames_received == 1 &&
               r.subscribers[0].held_frames == 1 && r.ring.stats.held_slots == 1;
      },
      2000));
  f.release();
  EXPECT_TRUE(cftest::wait_until([&] { return obs.read().subscribers[0].held_frames == 0; }, 2000));
}

}  // namespace
