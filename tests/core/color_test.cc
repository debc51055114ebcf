// A frame's colour description travels with it through the ring: set by publish (the source) or
// on a loan, read back from every frame the subscriber gets; values outside the enums refused.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/test_util.h"

using cftest::RuntimeDir;
using cftest::status_of;
using cftest::sub_options;

namespace {

struct Planes {
  std::vector<uint8_t> y = std::vector<uint8_t>(64 * 32, 16);
  std::vector<uint8_t> uv = std::vector<uint8_t>(64 * 16, 128);
  cuframes_source_t source() {
    cuframes_source_t s;
    cuframes_source_init(&s);
    s.planes[0] = y.data();
    s.planes[1] = uv.data();
    s.pitches[0] = s.pitches[1] = 64;
    return s;
  }
};

TEST(Color, NamesAndDefaults) {
  EXPECT_STREQ(cuframes_color_matrix_name(CUFRAMES_COLOR_MATRIX_UNKNOWN), "unknown");
  EXPECT_STREQ(cuframes_color_matrix_name(CUFRAMES_COLOR_MATRIX_BT601), "bt601");
  EXPECT_STREQ(cuframes_color_matrix_name(CUFRAMES_COLOR_MATRIX_BT709), "bt709");
  EXPECT_STREQ(cuframes_color_matrix_name(CUFRAMES_COLOR_MATRIX_BT2020), "bt2020");
  EXPECT_STREQ(cuframes_color_matrix_name(static_cast<cuframes_color_matrix_t>(4)), "invalid");
  EXPECT_STREQ(cuframes_color_range_name(CUFRAMES_COLOR_RANGE_LIMITED), "limited");
  EXPECT_STREQ(cuframes_color_range_name(CUFRAMES_COLOR_RANGE_FULL), "full");
  EXPECT_STREQ(cuframes_color_range_name(static_cast<cuframes_color_range_t>(3)), "invalid");
  cuframes_source_t s;
  std::memset(&s, 0x5a, sizeof s);
  cuframes_source_init(&s);
  EXPECT_EQ(s.color_matrix, CUFRAMES_COLOR_MATRIX_UNKNOWN);
  EXPECT_EQ(s.color_range, CUFRAMES_COLOR_RANGE_UNKNOWN);
}

TEST(Color, TravelsWithEachFrame) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", cftest::host_pub_options(dir, 64, 32, 4));
  cuframes::Subscriber sub("cam", sub_options(dir, CUFRAMES_MODE_STRICT_ORDER));
  Planes p;
  using Want = std::pair<cuframes_color_matrix_t, cuframes_color_range_t>;
  const auto expect_next = [&](uint64_t seq, Want want) {
    cuframes::Frame f = sub.next(1000);
    const cuframes_frame_info_t fi = f.info();
    ASSERT_EQ(fi.seq, seq);
    EXPECT_EQ(fi.color_matrix, want.first) << "seq " << seq;
    EXPECT_EQ(fi.color_range, want.second) << "seq " << seq;
  };
  cuframes_source_t s = p.source();
  s.color_matrix = CUFRAMES_COLOR_MATRIX_BT2020;
  s.color_range = CUFRAMES_COLOR_RANGE_FULL;
  ASSERT_EQ(pub.publish(s), 1u);
  cuframes::Loan loan = pub.loan();
  EXPECT_EQ(loan.info().color_matrix, CUFRAMES_COLOR_MATRIX_UNKNOWN);
  loan.set_color(CUFRAMES_COLOR_MATRIX_BT601, CUFRAMES_COLOR_RANGE_LIMITED);
  EXPECT_EQ(loan.info().color_matrix, CUFRAMES_COLOR_MATRIX_BT601);
  EXPECT_EQ(loan.info().color_range, CUFRAMES_COLOR_RANGE_LIMITED);
  ASSERT_EQ(pub.commit(std::move(loan)), 2u);
  s = p.source();  // says nothing: unknown
  ASSERT_EQ(pub.publish(s), 3u);
  expect_next(1, {CUFRAMES_COLOR_MATRIX_BT2020, CUFRAMES_COLOR_RANGE_FULL});
  expect_next(2, {CUFRAMES_COLOR_MATRIX_BT601, CUFRAMES_COLOR_RANGE_LIMITED});
  expect_next(3, {CUFRAMES_COLOR_MATRIX_UNKNOWN, CUFRAMES_COLOR_RANGE_UNKNOWN});
  // Frame 4 takes the empty slot, frame 5 the slot of frame 1 (the oldest): frame 5's
  // description replaces frame 1's there.
  s.color_matrix = CUFRAMES_COLOR_MATRIX_BT709;
  ASSERT_EQ(pub.publish(s), 4u);
  ASSERT_EQ(pub.publish(p.source()), 5u);
  expect_next(4, {CUFRAMES_COLOR_MATRIX_BT709, CUFRAMES_COLOR_RANGE_UNKNOWN});
  expect_next(5, {CUFRAMES_COLOR_MATRIX_UNKNOWN, CUFRAMES_COLOR_RANGE_UNKNOWN});
}

TEST(Color, ValuesOutsideTheEnumsAreRefused) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", cftest::host_pub_options(dir));
  Planes p;
  cuframes_source_t s = p.source();
  s.color_matrix = static_cast<cuframes_color_matrix_t>(9);
  EXPECT_EQ(status_of([&] { pub.publish(s); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("source: unknown color_matrix 9"),
            std::string::npos)
      << cuframes_last_error();
  s.color_matrix = CUFRAMES_COLOR_MATRIX_BT709;
  const uint32_t all_ones = 0xFFFFFFFFu;  // as a C caller may write it: not a value of the enum
  std::memcpy(&s.color_range, &all_ones, sizeof all_ones);
  EXPECT_EQ(status_of([&] { pub.publish(s); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(pub.stats().published, 0u);
  EXPECT_EQ(pub.stats().dropped, 0u);  // refused before a slot was taken

  cuframes::Loan loan = pub.loan();
  EXPECT_EQ(status_of([&] {
              loan.set_color(static_cast<cuframes_color_matrix_t>(4), CUFRAMES_COLOR_RANGE_FULL);
            }),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("loan: unknown color_matrix 4"),
            std::string::npos);
  EXPECT_EQ(loan.info().color_range, CUFRAMES_COLOR_RANGE_UNKNOWN);  // unchanged
  EXPECT_EQ(pub.commit(std::move(loan)), 1u);                        // still usable
  EXPECT_EQ(
      cuframes_loan_set_color(nullptr, CUFRAMES_COLOR_MATRIX_BT601, CUFRAMES_COLOR_RANGE_FULL),
      CUFRAMES_ERR_INVALID_ARGUMENT);
}

}  // namespace
