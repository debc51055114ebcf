// The packet ring: codec parameters, packets in order with their metadata, lapped readers
// losing packets without tearing, readers finishing the ring after the publisher left.
#include <gtest/gtest.h>

#include <numeric>
#include <thread>

#include "common/test_util.h"

using cftest::RuntimeDir;

namespace {

cuframes::Publisher::Options packet_options(const RuntimeDir& dir, uint64_t bytes = 64 * 1024,
                                            uint32_t entries = 16) {
  auto o = cftest::host_pub_options(dir);
  o.packet_ring_bytes = bytes;
  o.packet_ring_entries = entries;
  return o;
}

std::vector<uint8_t> packet_bytes(uint64_t n, size_t size) {
  std::vector<uint8_t> v(size);
  for (size_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>(n * 31 + i * 7);
  return v;
}

void write(cuframes::Publisher& pub, uint64_t n, size_t size) {
  auto data = packet_bytes(n, size);
  cuframes_packet_t p{};
  p.data = data.data();
  p.size = static_cast<uint32_t>(size);
  p.pts = static_cast<int64_t>(n * 3000);
  p.dts = static_cast<int64_t>(n * 3000 - 1);
  p.flags = n % 10 == 1 ? CUFRAMES_PACKET_KEY : 0;
  pub.write_packet(p);
}

bool intact(const cuframes_packet_t& p, uint64_t n) {
  auto want = packet_bytes(n, p.size);
  return std::equal(want.begin(), want.end(), p.data);
}

TEST(PacketRing, CodecAndPacketsInOrder) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", packet_options(dir));
  cuframes::PacketReader::Options ro;
  ro.runtime_dir = dir.c_str();
  ro.connect_timeout_ms = 1000;
  cuframes::PacketReader reader("cam", ro);
  EXPECT_THROW(reader.codec(), cuframes::Error);  // none set yet
  std::vector<uint8_t> extradata = {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e};
  cuframes_codec_params_t cp{};
  cp.codec = CUFRAMES_CODEC_H264;
  cp.width = 1920;
  cp.height = 1080;
  cp.time_base_num = 1;
  cp.time_base_den = 90000;
  cp.extradata = extradata.data();
  cp.extradata_size = static_cast<uint32_t>(extradata.size());
  pub.set_codec(cp);
  cuframes_codec_params_t got = reader.codec();
  EXPECT_EQ(got.codec, CUFRAMES_CODEC_H264);
  EXPECT_EQ(got.width, 1920u);
  EXPECT_EQ(got.time_base_den, 90000);
  EXPECT_EQ(got.generation, 1u);
  ASSERT_EQ(got.extradata_size, extradata.size());
  EXPECT_TRUE(std::equal(extradata.begin(), extradata.end(), got.extradata));

  for (uint64_t n = 1; n <= 10; ++n) write(pub, n, 100 + n * 13);
  for (uint64_t n = 1; n <= 10; ++n) {
    cuframes_packet_t p = reader.next(1000);
    EXPECT_EQ(p.seq, n);
    EXPECT_EQ(p.size, 100 + n * 13);
    EXPECT_EQ(p.pts, static_cast<int64_t>(n * 3000));
    EXPECT_EQ(p.dts, static_cast<int64_t>(n * 3000 - 1));
    EXPECT_EQ(p.flags, n % 10 == 1 ? CUFRAMES_PACKET_KEY : 0u);
    EXPECT_EQ(p.params_generation, 1u);
    EXPECT_TRUE(intact(p, n));
  }
  EXPECT_THROW(reader.next(20), cuframes::Error);
  EXPECT_EQ(reader.stats().packets, 10u);
  EXPECT_EQ(reader.stats().gaps, 0u);
}

TEST(PacketRing, LappedReaderCountsGapsAndNeverSeesTornPackets) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", packet_options(dir, 64 * 1024, 16));
  cuframes::PacketReader::Options ro;
  ro.runtime_dir = dir.c_str();
  ro.connect_timeout_ms = 1000;
  cuframes::PacketReader reader("cam", ro);
  // 100 packets of ~3 KiB into 16 entries / 64 KiB: the reader, reading none meanwhile, keeps
  // only the newest ones.
  for (uint64_t n = 1; n <= 100; ++n) write(pub, n, 3000 + n);
  uint64_t read = 0, last = 0;
  for (;;) {
    cuframes_packet_t p{};
    if (cuframes_packet_reader_next(reader.get(), 0, &p) != CUFRAMES_OK) break;
    EXPECT_TRUE(intact(p, p.seq)) << "packet " << p.seq;
    EXPECT_GT(p.seq, last);
    last = p.seq;
    ++read;
  }
  EXPECT_EQ(last, 100u);
  EXPECT_LT(read, 16u);
  EXPECT_EQ(reader.stats().gaps + read, 100u);
}

TEST(PacketRing, ConcurrentWriterAndReadersNeverTear) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", packet_options(dir, 256 * 1024, 64));
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  std::atomic<uint64_t> torn{0}, total{0};
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      cuframes::PacketReader::Options ro;
      ro.runtime_dir = dir.c_str();
      ro.connect_timeout_ms = 1000;
      cuframes::PacketReader reader("cam", ro);
      while (!done.load()) {
        cuframes_packet_t p{};
        cuframes_status_t st = cuframes_packet_reader_next(reader.get(), 10, &p);
        if (st != CUFRAMES_OK) continue;
        if (!intact(p, p.seq)) ++torn;
        ++total;
        if (r == 0 && p.seq % 50 == 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
    });
  }
  for (uint64_t n = 1; n <= 20000; ++n) write(pub, n, 500 + (n * 37) % 9000);
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(total.load(), 0u);
}

TEST(PacketRing, StartAtOldestAndDrainAfterPublisherGone) {
  RuntimeDir dir;
  auto pub = std::make_unique<cuframes::Publisher>("cam", packet_options(dir));
  for (uint64_t n = 1; n <= 5; ++n) write(*pub, n, 200);
  cuframes::PacketReader::Options ro;
  ro.runtime_dir = dir.c_str();
  ro.connect_timeout_ms = 1000;
  ro.start_at_oldest = 1;
  cuframes::PacketReader reader("cam", ro);
  pub.reset();
  for (uint64_t n = 1; n <= 5; ++n) EXPECT_EQ(reader.next(1000).seq, n);
  try {
    reader.next(1000);
    ADD_FAILURE() << "expected PUBLISHER_GONE";
  } catch (const cuframes::Error& e) {
    EXPECT_EQ(e.status(), CUFRAMES_ERR_PUBLISHER_GONE);
  }
  EXPECT_EQ(reader.stats().gaps, 0u);
}

TEST(PacketRing, RefusedWhereItCannotWork) {
  RuntimeDir dir;
  cuframes::Publisher plain("plain", cftest::host_pub_options(dir));
  cuframes::PacketReader::Options ro;
  ro.runtime_dir = dir.c_str();
  ro.connect_timeout_ms = 1000;
  try {
    cuframes::PacketReader r("plain", ro);
    ADD_FAILURE();
  } catch (const cuframes::Error& e) {
    EXPECT_EQ(e.status(), CUFRAMES_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("no packet ring"), std::string::npos);
  }
  uint8_t b = 0;
  cuframes_packet_t p{};
  p.data = &b;
  p.size = 1;
  EXPECT_EQ(cuframes_publisher_write_packet(plain.get(), &p), CUFRAMES_ERR_INVALID_ARGUMENT);

  cuframes::Publisher pub("cam", packet_options(dir));
  std::vector<uint8_t> big(40 * 1024);
  p.data = big.data();
  p.size = static_cast<uint32_t>(big.size());
  EXPECT_EQ(cuframes_publisher_write_packet(pub.get(), &p), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("half"), std::string::npos);
  cuframes_codec_params_t cp{};
  cp.extradata_size = CUFRAMES_EXTRADATA_MAX + 1;
  cp.extradata = big.data();
  EXPECT_EQ(cuframes_publisher_set_codec(pub.get(), &cp), CUFRAMES_ERR_INVALID_ARGUMENT);
}

}  // namespace
