// Every enum a caller hands in is checked as its bits before it is loaded as the enum (enums.h):
// a C caller may write any 32-bit value into an enum field, and loading one outside the enum in
// C++ is undefined behaviour (the ASan/UBSan build, .ci/run, aborts on it). One test per field:
// all ones, written as C would (memcpy), is refused with INVALID_ARGUMENT naming the field. (Enum
// arguments cannot be passed so from C++ without that load: tests/c/enum_test.c.)
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/test_util.h"

using cftest::RuntimeDir;

namespace {

constexpr uint32_t kAllOnes = 0xFFFFFFFFu;  // not a value of any of the enums

template <class E>
void poke(E* field, uint32_t raw = kAllOnes) {
  static_assert(sizeof(E) == sizeof raw);
  std::memcpy(field, &raw, sizeof raw);
}

// The status of a C call and its message, which must contain `word`.
void expect_refused(cuframes_status_t st, const std::string& word) {
  EXPECT_EQ(st, CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find(word), std::string::npos)
      << cuframes_last_error();
}

cuframes_publisher_options_t c_options(const RuntimeDir& dir) {
  cuframes_publisher_options_t o;
  cuframes_publisher_options_init(&o);
  o.runtime_dir = dir.c_str();
  o.width = 64;
  o.height = 32;
  o.slots = 2;
  return o;
}

cuframes_status_t create(const cuframes_publisher_options_t& o) {
  cuframes_publisher_t* p = nullptr;
  const cuframes_status_t st = cuframes_publisher_create("cam-enum", &o, &p);
  cuframes_publisher_destroy(p);
  return st;
}

TEST(Enums, PublisherFormat) {
  RuntimeDir dir;
  auto o = c_options(dir);
  poke(&o.format);
  expect_refused(create(o), "unknown pixel format -1");
}

TEST(Enums, PublisherMemory) {
  RuntimeDir dir;
  auto o = c_options(dir);
  poke(&o.memory);
  expect_refused(create(o), "unknown memory -1");
}

TEST(Enums, PublisherPolicy) {
  RuntimeDir dir;
  auto o = c_options(dir);
  poke(&o.policy);
  expect_refused(create(o), "unknown policy -1");
}

TEST(Enums, SubscriberMode) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam-enum", cftest::host_pub_options(dir));
  cuframes_subscriber_options_t o;
  cuframes_subscriber_options_init(&o);
  o.runtime_dir = dir.c_str();
  poke(&o.mode);
  cuframes_subscriber_t* s = nullptr;
  expect_refused(cuframes_subscriber_create("cam-enum", &o, &s), "unknown mode -1");
  EXPECT_EQ(s, nullptr);
}

TEST(Enums, SourceMemory) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam-enum", cftest::host_pub_options(dir));
  std::vector<uint8_t> y(64 * 32), uv(64 * 16);
  cuframes_source_t s;
  cuframes_source_init(&s);
  s.planes[0] = y.data();
  s.planes[1] = uv.data();
  s.pitches[0] = s.pitches[1] = 64;
  poke(&s.memory);
  uint64_t seq = 0;
  expect_refused(cuframes_publisher_publish(pub.get(), &s, 0, &seq), "unknown source memory -1");
  EXPECT_EQ(pub.stats().published, 0u);
}

TEST(Enums, PreprocessOptions) {
  struct Field {
    const char* name;
    void (*poke)(cuframes_preprocess_options_t*);
  };
  const Field fields[] = {
      {"options.dtype", [](cuframes_preprocess_options_t* o) { poke(&o->dtype); }},
      {"options.layout", [](cuframes_preprocess_options_t* o) { poke(&o->layout); }},
      {"options.channels", [](cuframes_preprocess_options_t* o) { poke(&o->channels); }},
      {"options.resize", [](cuframes_preprocess_options_t* o) { poke(&o->resize); }},
  };
  RuntimeDir dir;
  cuframes::Publisher pub("cam-enum", cftest::host_pub_options(dir));
  cuframes::Subscriber sub("cam-enum", cftest::sub_options(dir));
  std::vector<uint8_t> y(64 * 32, 16), uv(64 * 16, 128);
  cuframes_source_t s;
  cuframes_source_init(&s);
  s.planes[0] = y.data();
  s.planes[1] = uv.data();
  s.pitches[0] = s.pitches[1] = 64;
  pub.publish(s);
  cuframes::Frame frame = sub.next(1000);
  cuframes_frame_t* f = frame.get();
  std::vector<float> out(3 * 16 * 16);
  for (const Field& field : fields) {
    SCOPED_TRACE(field.name);
    cuframes_preprocess_options_t o;
    cuframes_preprocess_options_init(&o);
    o.width = o.height = 16;
    o.dtype = CUFRAMES_DTYPE_FLOAT32;
    field.poke(&o);
    EXPECT_EQ(cuframes_preprocess_bytes(&o, 1), 0u);
    expect_refused(cuframes_preprocess(&f, 1, &o, out.data(), out.size() * sizeof(float), nullptr),
                   std::string(field.name) + " -1 is not one of");
  }
}

TEST(Enums, CodecParams) {
  RuntimeDir dir;
  auto o = c_options(dir);
  o.packet_ring_bytes = 64 * 1024;
  cuframes_publisher_t* p = nullptr;
  ASSERT_EQ(cuframes_publisher_create("cam-enum", &o, &p), CUFRAMES_OK) << cuframes_last_error();
  cuframes_codec_params_t c{};
  c.width = 64;
  c.height = 32;
  c.time_base_num = 1;
  c.time_base_den = 90000;
  poke(&c.codec);
  expect_refused(cuframes_publisher_set_codec(p, &c), "unknown codec -1");
  cuframes_publisher_destroy(p);
}

}  // namespace
