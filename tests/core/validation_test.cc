// Bad input from a publisher: garbage handshakes, corrupt or truncated control blocks from a fake
// publisher. Every case must end in a clear error naming what is wrong, never a crash.
// (publisher_attack_test.cc: bad peers at the real publisher.)
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

// ---------------------------------------------------------------------------------------------
// A fake publisher: a listening socket and a handler that answers one peer however it likes.

struct Regions {
  cd::SharedRegion header, table, entry, ring;
  cd::Welcome welcome{};
};

// A well-formed ring for a 64x32 NV12, 4-slot host publisher; tests break it before sending.
void make_regions(Regions* r) {
  cuframes_geometry_t g;
  ASSERT_TRUE(cd::compute_geometry(CUFRAMES_FORMAT_NV12, 64, 32, 0, 64, &g).ok());
  const uint64_t stride = cd::align_up(g.frame_bytes, cd::kSlotAlignment);
  ASSERT_TRUE(cd::create_shared_region("h", cd::header_region_bytes(), &r->header).ok());
  ASSERT_TRUE(cd::create_shared_region("t", cd::table_region_bytes(4), &r->table).ok());
  ASSERT_TRUE(cd::create_shared_region("e", cd::kEntryRegionBytes, &r->entry).ok());
  ASSERT_TRUE(cd::create_shared_region("r", stride * 4, &r->ring).ok());
  auto& h = *r->header.map.as<cd::RingHeader>();
  cd::wr(h.version, cd::kProtocolVersion);
  cd::wr(h.epoch, 42);
  cd::store_string(h.key, "fake");
  cd::write_geometry(h, g);
  cd::wr(h.slot_stride, stride);
  cd::wr(h.ring_bytes, stride * 4);
  cd::wr(h.slot_count, 4);
  cd::wr(h.max_subscribers, 4);
  cd::wr(h.memory_kind, CUFRAMES_MEMORY_HOST);
  cd::wr(h.handle_type, static_cast<uint32_t>(cd::HandleType::kMemfd));
  cd::wr(h.device, -1);
  cd::wr(h.magic, cd::kRingMagic);
  auto& t = *r->table.map.as<cd::TableHeader>();
  cd::wr(t.magic, cd::kTableMagic);
  cd::wr(t.version, cd::kProtocolVersion);
  cd::wr(t.entries, 4);
  cd::wr(t.epoch, 42);
  auto& v = *cd::table_view(&t, 0);
  cd::wr(v.state, cd::kEntryActive);
  cd::wr(v.generation, 1);
  auto& e = *r->entry.map.as<cd::SubscriberEntry>();
  cd::wr(e.magic, cd::kEntryMagic);
  cd::wr(e.version, cd::kProtocolVersion);
  cd::wr(e.index, 0);
  cd::wr(e.epoch, 42);
  cd::wr(e.generation, 1);
  cd::Welcome& w = r->welcome;
  w.pre = {cd::kWireMagic, cd::kProtocolVersion, static_cast<uint32_t>(cd::MsgType::kWelcome)};
  w.epoch = 42;
  w.entry_index = 0;
  w.entry_generation = 1;
  w.handle_type = static_cast<uint32_t>(cd::HandleType::kMemfd);
  w.header_bytes = r->header.map.size();
  w.table_bytes = r->table.map.size();
  w.entry_bytes = r->entry.map.size();
  w.ring_bytes = stride * 4;
  w.nfds = 4;
}

void seal_all(Regions* r) {
  ASSERT_TRUE(cd::seal_shared_region(r->header, true).ok());
  ASSERT_TRUE(cd::seal_shared_region(r->table, true).ok());
  ASSERT_TRUE(cd::seal_shared_region(r->entry, false).ok());
  ASSERT_TRUE(cd::seal_shared_region(r->ring, true).ok());
}

void send_regions(int fd, const Regions& r) {
  int fds[4] = {r.header.fd.get(), r.table.fd.get(), r.entry.fd.get(), r.ring.fd.get()};
  ASSERT_TRUE(cd::send_message(fd, &r.welcome, sizeof r.welcome, fds, r.welcome.nfds).ok());
}

// Serves one connection on key in dir with handler(fd), in a thread; keeps the socket open
// until destroyed so the subscriber does not see a hang-up first.
class FakePublisher {
 public:
  FakePublisher(const RuntimeDir& dir, const std::string& key, std::function<void(int)> handler) {
    EXPECT_TRUE(cd::listen_unix(cd::socket_path(dir.path(), key), &listen_).ok());
    thread_ = std::thread([this, handler] {
      short rev = 0;
      if (!cd::poll_in(listen_.get(), 5000, &rev).ok() || rev == 0) return;
      conn_.reset(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn_.valid()) return;
      char hello[512];
      if (!cd::poll_in(conn_.get(), 5000, &rev).ok() || rev == 0) return;
      if (recv(conn_.get(), hello, sizeof hello, 0) <= 0) return;
      handler(conn_.get());
    });
  }
  ~FakePublisher() { thread_.join(); }
  void hang_up() { conn_.reset(); }

 private:
  cd::UniqueFd listen_, conn_;
  std::thread thread_;
};

cuframes_status_t subscribe_status(const RuntimeDir& dir, std::string* message,
                                   std::unique_ptr<cuframes::Subscriber>* keep = nullptr) {
  auto o = cftest::sub_options(dir);
  o.connect_timeout_ms = 2000;
  try {
    auto s = std::make_unique<cuframes::Subscriber>("fake", o);
    if (keep) *keep = std::move(s);
  } catch (const cuframes::Error& e) {
    *message = e.what();
    return e.status();
  }
  return CUFRAMES_OK;
}

struct Case {
  const char* name;
  std::function<void(Regions*)> mutate;  // before sealing
  cuframes_status_t want;
  const char* message_part;
};

class CorruptBlock : public ::testing::TestWithParam<Case> {};

TEST_P(CorruptBlock, IsRefusedWithAClearError) {
  const Case& c = GetParam();
  RuntimeDir dir;
  Regions r;
  make_regions(&r);
  c.mutate(&r);
  bool sealed = std::string(c.name) != "unsealed";
  if (sealed) seal_all(&r);
  FakePublisher fake(dir, "fake", [&](int fd) { send_regions(fd, r); });
  std::string msg;
  EXPECT_EQ(subscribe_status(dir, &msg), c.want) << msg;
  EXPECT_NE(msg.find(c.message_part), std::string::npos) << msg;
}

auto header = [](Regions* r) -> cd::RingHeader& { return *r->header.map.as<cd::RingHeader>(); };
auto entry = [](Regions* r) -> cd::SubscriberEntry& {
  return *r->entry.map.as<cd::SubscriberEntry>();
};

INSTANTIATE_TEST_SUITE_P(
    Validation, CorruptBlock,
    ::testing::Values(
        Case{"valid", [](Regions*) {}, CUFRAMES_OK, ""},
        Case{"bad_magic", [](Regions* r) { cd::wr(header(r).magic, 7); }, CUFRAMES_ERR_SHM,
             "bad magic"},
        Case{"newer_version",
             [](Regions* r) { cd::wr(header(r).version, cd::kProtocolVersion + 1); },
             CUFRAMES_ERR_PROTOCOL_MISMATCH, "protocol v4"},
        Case{"epoch", [](Regions* r) { cd::wr(header(r).epoch, 43); }, CUFRAMES_ERR_SHM, "epoch"},
        Case{"geometry", [](Regions* r) { cd::wr(header(r).offset_uv, 5); }, CUFRAMES_ERR_SHM,
             "inconsistent geometry"},
        Case{"huge_width", [](Regions* r) { cd::wr(header(r).width, 1u << 30); }, CUFRAMES_ERR_SHM,
             "inconsistent geometry"},
        Case{"slot_count", [](Regions* r) { cd::wr(header(r).slot_count, 1000); }, CUFRAMES_ERR_SHM,
             "slot count 1000"},
        Case{"ring_bytes", [](Regions* r) { cd::wr(header(r).ring_bytes, 1ull << 40); },
             CUFRAMES_ERR_SHM, "do not fit"},
        Case{"stride", [](Regions* r) { cd::wr(header(r).slot_stride, 16); }, CUFRAMES_ERR_SHM,
             "do not fit"},
        Case{"memory_kind", [](Regions* r) { cd::wr(header(r).memory_kind, 9); }, CUFRAMES_ERR_SHM,
             "memory kind"},
        Case{"handle_type", [](Regions* r) { r->welcome.handle_type = 2; }, CUFRAMES_ERR_SHM,
             "handle type"},
        Case{"subscribers", [](Regions* r) { cd::wr(header(r).max_subscribers, 0); },
             CUFRAMES_ERR_SHM, "subscriber table of 0"},
        Case{"table_magic",
             [](Regions* r) { cd::wr(r->table.map.as<cd::TableHeader>()->magic, 1); },
             CUFRAMES_ERR_SHM, "subscriber table: bad magic"},
        Case{"table_version",
             [](Regions* r) { cd::wr(r->table.map.as<cd::TableHeader>()->version, 4); },
             CUFRAMES_ERR_PROTOCOL_MISMATCH, "subscriber table is protocol v4"},
        Case{"entry_magic", [](Regions* r) { cd::wr(entry(r).magic, 5); }, CUFRAMES_ERR_SHM,
             "subscriber entry: bad magic"},
        Case{"entry_version", [](Regions* r) { cd::wr(entry(r).version, 4); },
             CUFRAMES_ERR_PROTOCOL_MISMATCH, "subscriber entry is protocol v4"},
        Case{"entry_epoch", [](Regions* r) { cd::wr(entry(r).epoch, 43); }, CUFRAMES_ERR_SHM,
             "subscriber entry 0 was not set up for us"},
        Case{"entry_index_inside", [](Regions* r) { cd::wr(entry(r).index, 1); }, CUFRAMES_ERR_SHM,
             "subscriber entry 0 was not set up for us"},
        Case{"entry_bytes", [](Regions* r) { r->welcome.entry_bytes = 64; }, CUFRAMES_ERR_SHM,
             "subscriber entry of 64 bytes"},
        Case{"truncated_entry", [](Regions* r) { ASSERT_EQ(ftruncate(r->entry.fd.get(), 64), 0); },
             CUFRAMES_ERR_SHM, "the handshake promised"},
        Case{"view_free",
             [](Regions* r) {
               cd::wr(cd::table_view(r->table.map.as<cd::TableHeader>(), 0)->state, 0);
             },
             CUFRAMES_ERR_SHM, "table entry 0 was not set up for us"},
        Case{"entry_index", [](Regions* r) { r->welcome.entry_index = 4000; }, CUFRAMES_ERR_SHM,
             "out of range"},
        Case{"entry_generation", [](Regions* r) { r->welcome.entry_generation = 9; },
             CUFRAMES_ERR_SHM, "not set up for us"},
        Case{"header_too_small", [](Regions* r) { r->welcome.header_bytes = 64; }, CUFRAMES_ERR_SHM,
             "ring header of 64 bytes"},
        Case{"truncated_ring", [](Regions* r) { ASSERT_EQ(ftruncate(r->ring.fd.get(), 4096), 0); },
             CUFRAMES_ERR_SHM, "the handshake promised"},
        Case{"truncated_header",
             [](Regions* r) {
               r->welcome.header_bytes *= 2;  // claims more than the memfd has
             },
             CUFRAMES_ERR_SHM, "the handshake promised"},
        Case{"unsealed", [](Regions*) {}, CUFRAMES_ERR_SHM, "not sealed"},
        Case{"fd_count", [](Regions* r) { r->welcome.nfds = 3; }, CUFRAMES_ERR_SHM, "fds"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(Handshake, GarbageReplyIsProtocolMismatch) {
  RuntimeDir dir;
  FakePublisher fake(dir, "fake", [](int fd) {
    const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    send(fd, junk, sizeof junk, MSG_NOSIGNAL);
  });
  std::string msg;
  EXPECT_EQ(subscribe_status(dir, &msg), CUFRAMES_ERR_PROTOCOL_MISMATCH) << msg;
  EXPECT_NE(msg.find("not a cuframes publisher"), std::string::npos) << msg;
}

TEST(Handshake, OtherVersionIsProtocolMismatch) {
  RuntimeDir dir;
  FakePublisher fake(dir, "fake", [](int fd) {
    cd::Welcome w{};
    w.pre = {cd::kWireMagic, 7, static_cast<uint32_t>(cd::MsgType::kWelcome)};
    send(fd, &w, sizeof w, MSG_NOSIGNAL);
  });
  std::string msg;
  EXPECT_EQ(subscribe_status(dir, &msg), CUFRAMES_ERR_PROTOCOL_MISMATCH) << msg;
  EXPECT_NE(msg.find("protocol v7"), std::string::npos) << msg;
}

TEST(Handshake, ShortReplyIsShmError) {
  RuntimeDir dir;
  FakePublisher fake(dir, "fake", [](int fd) {
    cd::Preamble p{cd::kWireMagic, cd::kProtocolVersion,
                   static_cast<uint32_t>(cd::MsgType::kWelcome)};
    send(fd, &p, sizeof p, MSG_NOSIGNAL);
  });
  std::string msg;
  EXPECT_EQ(subscribe_status(dir, &msg), CUFRAMES_ERR_SHM) << msg;
  EXPECT_NE(msg.find("malformed"), std::string::npos) << msg;
}

TEST(Handshake, HangUpDuringHandshakeIsPublisherGone) {
  RuntimeDir dir;
  FakePublisher* fp = nullptr;
  FakePublisher fake(dir, "fake", [&](int) { fp->hang_up(); });
  fp = &fake;
  std::string msg;
  EXPECT_EQ(subscribe_status(dir, &msg), CUFRAMES_ERR_PUBLISHER_GONE) << msg;
}

TEST(Handshake, RefusalCarriesThePublishersReason) {
  RuntimeDir dir;
  FakePublisher fake(dir, "fake", [](int fd) {
    cd::Welcome w{};
    w.pre = {cd::kWireMagic, cd::kProtocolVersion, static_cast<uint32_t>(cd::MsgType::kWelcome)};
    w.status = 1234;  // not a status we know: reported as SHM, message kept (made printable)
    std::snprintf(w.message, sizeof w.message, "go away\x01");
    send(fd, &w, sizeof w, MSG_NOSIGNAL);
  });
  std::string msg;
  EXPECT_EQ(subscribe_status(dir, &msg), CUFRAMES_ERR_SHM) << msg;
  EXPECT_NE(msg.find("go away?"), std::string::npos) << msg;
}

TEST(Corruption, BadNewestSlotAfterAttachIsAnError) {
  RuntimeDir dir;
  Regions r;
  make_regions(&r);
  seal_all(&r);
  FakePublisher fake(dir, "fake", [&](int fd) { send_regions(fd, r); });
  std::string msg;
  std::unique_ptr<cuframes::Subscriber> sub;
  ASSERT_EQ(subscribe_status(dir, &msg, &sub), CUFRAMES_OK) << msg;
  // The (fake) publisher's mapping is still writable: corrupt the ring under the subscriber.
  auto& h = *r.header.map.as<cd::RingHeader>();
  h.newest.store(cd::pack_newest(5, 200));
  cuframes::Frame f;
  EXPECT_EQ(sub->try_next(0, &f), CUFRAMES_ERR_SHM);
  EXPECT_NE(std::string(cuframes_last_error()).find("slot 200"), std::string::npos);
  // A valid frame afterwards is delivered normally.
  h.slots[1].seq.store(6);
  h.newest.store(cd::pack_newest(6, 1));
  EXPECT_EQ(sub->try_next(0, &f), CUFRAMES_OK);
  EXPECT_EQ(f.info().seq, 6u);
  EXPECT_EQ(sub->stats().errors, 1u);
}

}  // namespace
