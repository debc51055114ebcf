// cuframes-service configuration parser: every key, defaults, the defaults: merge, durations and
// sizes, URL rules, and every class of error with its exact file:line:column and dotted key.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "config.h"

namespace cfsvc {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Raw strings start with a newline for readability; line 1 is the line after R"(.
std::string Y(const char* s) {
  return std::string(s[0] == '\n' ? s + 1 : s);
}

Config MustParse(const std::string& text, const std::string& path = "test.yaml") {
  Config cfg;
  ConfigError err;
  EXPECT_TRUE(parse_config(text, path, &cfg, &err)) << err.str();
  return cfg;
}

ConfigError MustFail(const std::string& text, const std::string& path = "test.yaml") {
  Config cfg;
  ConfigError err;
  EXPECT_FALSE(parse_config(text, path, &cfg, &err)) << "parsed:\n" << text;
  return err;
}

// Asserts the error's position, key and message (a substring unless `exact`).
#define EXPECT_CONFIG_ERROR(err, ln, col, k, msg)              \
  do {                                                         \
    const ConfigError& e_ = (err);                             \
    EXPECT_EQ(e_.line, ln) << e_.str();                        \
    EXPECT_EQ(e_.column, col) << e_.str();                     \
    EXPECT_EQ(e_.key, k) << e_.str();                          \
    EXPECT_NE(e_.message.find(msg), std::string::npos)         \
        << "message: " << e_.message << "\nwanted: " << (msg); \
  } while (0)

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cfsvc-config-test-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    path_ = d ? d : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// --- values --------------------------------------------------------------------------------------

TEST(ConfigValues, MinimalCameraGetsEveryDefault) {
  const Config cfg = MustParse(Y(R"(
cameras:
  demo:
    url: testsrc://
)"));
  EXPECT_EQ(cfg.path, "test.yaml");
  EXPECT_FALSE(cfg.runtime_dir.has_value());
  EXPECT_EQ(cfg.log.level, "info");
  EXPECT_EQ(cfg.status_interval, milliseconds(1000));
  EXPECT_FALSE(cfg.mqtt.has_value());  // no mqtt: section, no MQTT
  ASSERT_EQ(cfg.cameras.size(), 1u);
  const CameraConfig& c = cfg.cameras[0];
  const CameraConfig d;
  EXPECT_EQ(c.name, "demo");
  EXPECT_EQ(c.key(), "cam-demo");
  EXPECT_EQ(c.url, "testsrc://");
  EXPECT_EQ(c.memory, MemoryChoice::kAuto);
  EXPECT_EQ(c.cuda_device, 0);
  EXPECT_EQ(c.decoder, DecoderChoice::kAuto);
  EXPECT_EQ(c.output_format, OutputFormat::kAuto);
  EXPECT_EQ(c.slots, 8u);
  EXPECT_EQ(c.policy, RingPolicy::kDrop);
  EXPECT_EQ(c.wait_timeout, milliseconds(1000));
  EXPECT_EQ(c.packet_ring_bytes, 0u);  // testsrc has no packets (ConfigValues.PacketRing*)
  EXPECT_EQ(c.stall_timeout, milliseconds(5000));
  EXPECT_EQ(c.open_timeout, milliseconds(10000));
  EXPECT_EQ(c.reconnect.initial, milliseconds(1000));
  EXPECT_EQ(c.reconnect.max, milliseconds(30000));
  EXPECT_EQ(c.rtsp_transport, RtspTransport::kTcp);
  EXPECT_TRUE(c.loop);
  EXPECT_TRUE(c.realtime);
  EXPECT_EQ(c.test_width, 1280u);
  EXPECT_EQ(c.test_height, 720u);
  EXPECT_DOUBLE_EQ(c.fps, 30.0);
  // The struct's own defaults are the documented ones.
  EXPECT_EQ(c.slots, d.slots);
}

TEST(ConfigValues, EveryKeyParsed) {
  const Config cfg = MustParse(Y(R"(
runtime_dir: /run/cuframes-test
log:
  level: debug
status_interval: 250ms
cameras:
  gate:
    url: testsrc://
    memory: host
    cuda_device: 3
    decoder: software
    output_format: p010
    slots: 64
    policy: strict_wait
    wait_timeout: 0
    stall_timeout: 2.5s
    open_timeout: 1m
    reconnect:
      initial: 100ms
      max: 1h
    rtsp_transport: udp
    loop: false
    realtime: no
    width: 640
    height: 480
    fps: 30000/1001
)"));
  ASSERT_TRUE(cfg.runtime_dir.has_value());
  EXPECT_EQ(*cfg.runtime_dir, "/run/cuframes-test");
  EXPECT_EQ(cfg.log.level, "debug");
  EXPECT_EQ(cfg.status_interval, milliseconds(250));
  ASSERT_EQ(cfg.cameras.size(), 1u);
  const CameraConfig& c = cfg.cameras[0];
  EXPECT_EQ(c.memory, MemoryChoice::kHost);
  EXPECT_EQ(c.cuda_device, 3);
  EXPECT_EQ(c.decoder, DecoderChoice::kSoftware);
  EXPECT_EQ(c.output_format, OutputFormat::kP010);
  EXPECT_EQ(c.slots, 64u);
  EXPECT_EQ(c.policy, RingPolicy::kStrictWait);
  EXPECT_EQ(c.wait_timeout, milliseconds(0));
  EXPECT_EQ(c.stall_timeout, milliseconds(2500));
  EXPECT_EQ(c.open_timeout, milliseconds(60000));
  EXPECT_EQ(c.reconnect.initial, milliseconds(100));
  EXPECT_EQ(c.reconnect.max, milliseconds(3600000));
  EXPECT_EQ(c.rtsp_transport, RtspTransport::kUdp);
  EXPECT_FALSE(c.loop);
  EXPECT_FALSE(c.realtime);
  EXPECT_EQ(c.test_width, 640u);
  EXPECT_EQ(c.test_height, 480u);
  EXPECT_NEAR(c.fps, 29.97, 0.001);
}

TEST(ConfigValues, EnumsAndBooleans) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
    const Config cfg =
        MustParse(std::string("log: {level: ") + level + "}\ncameras: {a: {url: 'testsrc://'}}\n");
    EXPECT_EQ(cfg.log.level, level);
  }
  const Config cfg = MustParse(Y(R"(
cameras:
  a: {url: testsrc://, memory: cuda, decoder: nvdec, output_format: nv12, policy: drop,
      rtsp_transport: tcp, loop: yes, realtime: true}
  b: {url: testsrc://, memory: AUTO, decoder: Auto, loop: off, realtime: False}
)"));
  ASSERT_EQ(cfg.cameras.size(), 2u);
  EXPECT_EQ(cfg.cameras[0].memory, MemoryChoice::kCuda);
  EXPECT_EQ(cfg.cameras[0].decoder, DecoderChoice::kNvdec);
  EXPECT_EQ(cfg.cameras[0].output_format, OutputFormat::kNv12);
  EXPECT_TRUE(cfg.cameras[0].loop);
  EXPECT_EQ(cfg.cameras[1].memory, MemoryChoice::kAuto);
  EXPECT_FALSE(cfg.cameras[1].loop);
  EXPECT_FALSE(cfg.cameras[1].realtime);
}

TEST(ConfigValues, PacketRingOffAndZero) {
  const Config cfg = MustParse(Y(R"(
cameras:
  a: {url: /clips/a.mp4, packet_ring: off}
  b: {url: /clips/a.mp4, packet_ring: 0}
  c: {url: rtsp://cam.lan/s, packet_ring: 1GiB}
  d: {url: /clips/a.mp4, packet_ring: 512k}
  e: {url: /clips/a.mp4, packet_ring: 65536}
  f: {url: rtsp://cam.lan/s}
)"));
  ASSERT_EQ(cfg.cameras.size(), 6u);
  EXPECT_EQ(cfg.cameras[0].packet_ring_bytes, 0u);
  EXPECT_EQ(cfg.cameras[1].packet_ring_bytes, 0u);
  EXPECT_EQ(cfg.cameras[2].packet_ring_bytes, 1ull << 30);
  EXPECT_EQ(cfg.cameras[3].packet_ring_bytes, 512u << 10);
  EXPECT_EQ(cfg.cameras[4].packet_ring_bytes, 65536u);
  EXPECT_EQ(cfg.cameras[5].packet_ring_bytes, 8ull << 20);  // the default
  EXPECT_EQ(cfg.cameras[5].packet_ring_bytes, CameraConfig{}.packet_ring_bytes);
}

// testsrc draws its frames: no encoded packets, so no packet ring (an 8 MiB one would stay
// empty), whatever defaults: says; packet_ring on the camera itself is an error.
TEST(ConfigValues, PacketRingNeverOnTestsrc) {
  const Config cfg = MustParse(Y(R"(
defaults:
  packet_ring: 16MiB
cameras:
  t: {url: testsrc://}
  f: {url: /clips/a.mp4}
)"));
  ASSERT_EQ(cfg.cameras.size(), 2u);
  EXPECT_EQ(cfg.cameras[0].packet_ring_bytes, 0u);
  EXPECT_EQ(cfg.cameras[1].packet_ring_bytes, 16u << 20);
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://\n    packet_ring: 1MiB\n"),
                      4, 5, "cameras.a.packet_ring",
                      "'packet_ring' applies to decoded cameras only (testsrc:// draws its "
                      "frames: it has no encoded packets, and its ring no packet ring)");
}

TEST(ConfigValues, CamerasKeepFileOrder) {
  const Config cfg = MustParse(Y(R"(
cameras:
  zeta: {url: testsrc://}
  alpha: {url: testsrc://}
  mid.cam_1-x: {url: testsrc://}
)"));
  ASSERT_EQ(cfg.cameras.size(), 3u);
  EXPECT_EQ(cfg.cameras[0].name, "zeta");
  EXPECT_EQ(cfg.cameras[1].name, "alpha");
  EXPECT_EQ(cfg.cameras[2].name, "mid.cam_1-x");
  EXPECT_EQ(cfg.cameras[2].key(), "cam-mid.cam_1-x");
}

TEST(ConfigValues, CameraNameLengthLimit) {
  const std::string name59(59, 'n');
  const Config cfg = MustParse("cameras:\n  " + name59 + ": {url: testsrc://}\n");
  ASSERT_EQ(cfg.cameras.size(), 1u);
  EXPECT_EQ(cfg.cameras[0].name, name59);
  const ConfigError e = MustFail("cameras:\n  " + name59 + "x: {url: testsrc://}\n");
  EXPECT_CONFIG_ERROR(e, 2, 3, "cameras." + name59 + "x", "expected a camera name of 1..59");
}

TEST(ConfigValues, NullSectionsAreEmpty) {
  const Config cfg = MustParse(Y(R"(
log:
defaults:
cameras:
  a:
    url: testsrc://
    reconnect:
)"));
  EXPECT_EQ(cfg.log.level, "info");
  ASSERT_EQ(cfg.cameras.size(), 1u);
  EXPECT_EQ(cfg.cameras[0].reconnect.max, milliseconds(30000));
}

// --- defaults: -----------------------------------------------------------------------------------

TEST(ConfigDefaults, AppliedToEveryCameraThenOverridden) {
  const Config cfg = MustParse(Y(R"(
defaults:
  memory: host
  slots: 4
  policy: strict_wait
  packet_ring: off
  reconnect:
    initial: 2s
    max: 10s
cameras:
  a:
    url: /clips/a.mp4
  b:
    url: /clips/b.mp4
    slots: 16
    packet_ring: 1MiB
    reconnect:
      max: 20s
)"));
  ASSERT_EQ(cfg.cameras.size(), 2u);
  const CameraConfig& a = cfg.cameras[0];
  const CameraConfig& b = cfg.cameras[1];
  EXPECT_EQ(a.memory, MemoryChoice::kHost);
  EXPECT_EQ(a.slots, 4u);
  EXPECT_EQ(a.policy, RingPolicy::kStrictWait);
  EXPECT_EQ(a.packet_ring_bytes, 0u);
  EXPECT_EQ(a.reconnect.initial, milliseconds(2000));
  EXPECT_EQ(a.reconnect.max, milliseconds(10000));
  EXPECT_EQ(b.memory, MemoryChoice::kHost);
  EXPECT_EQ(b.slots, 16u);
  EXPECT_EQ(b.policy, RingPolicy::kStrictWait);
  EXPECT_EQ(b.packet_ring_bytes, 1u << 20);
  // reconnect merges key by key: initial from defaults, max from the camera.
  EXPECT_EQ(b.reconnect.initial, milliseconds(2000));
  EXPECT_EQ(b.reconnect.max, milliseconds(20000));
}

TEST(ConfigDefaults, ApplyWhereverTheBlockStands) {
  const Config cfg = MustParse(Y(R"(
cameras:
  a: {url: testsrc://}
defaults:
  slots: 3
)"));
  ASSERT_EQ(cfg.cameras.size(), 1u);
  EXPECT_EQ(cfg.cameras[0].slots, 3u);
}

TEST(ConfigDefaults, TestsrcSizeFromDefaultsOnlyForTestsrc) {
  const Config cfg = MustParse(Y(R"(
defaults:
  width: 640
  height: 360
  fps: 10
cameras:
  pattern: {url: testsrc://}
  cam: {url: "rtsp://10.0.0.1/stream"}
  file: {url: /clips/raw.h264}
  file2: {url: "file:///clips/raw.hevc"}
)"));
  ASSERT_EQ(cfg.cameras.size(), 4u);
  EXPECT_EQ(cfg.cameras[0].test_width, 640u);
  EXPECT_EQ(cfg.cameras[0].test_height, 360u);
  EXPECT_DOUBLE_EQ(cfg.cameras[0].fps, 10.0);
  // Decoded cameras keep the built-in values, so changing defaults.width never restarts them.
  EXPECT_EQ(cfg.cameras[1].test_width, 1280u);
  EXPECT_EQ(cfg.cameras[1].test_height, 720u);
  EXPECT_DOUBLE_EQ(cfg.cameras[1].fps, 30.0);
  // fps is also a file's rate when its stream has no timestamps (raw Annex B).
  for (size_t i : {2u, 3u}) {
    EXPECT_EQ(cfg.cameras[i].test_width, 1280u);
    EXPECT_DOUBLE_EQ(cfg.cameras[i].fps, 10.0);
  }
}

TEST(ConfigDefaults, UrlAndNameAreNotDefaults) {
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
defaults:
  url: testsrc://
cameras:
  a: {url: testsrc://}
)")),
                      2, 3, "defaults.url", "'url' is per camera");
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
defaults:
  name: x
cameras:
  a: {url: testsrc://}
)")),
                      2, 3, "defaults.name", "'name' is per camera");
}

TEST(ConfigDefaults, ErrorsInDefaultsNameTheDefaultsKey) {
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
defaults:
  slots: 100
cameras:
  a: {url: testsrc://}
)")),
                      2, 10, "defaults.slots", "expected an integer 2..64, got '100'");
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
defaults:
  slot: 4
cameras:
  a: {url: testsrc://}
)")),
                      2, 3, "defaults.slot", "unknown key 'slot' (did you mean 'slots'?)");
  EXPECT_CONFIG_ERROR(MustFail("defaults: [1, 2]\ncameras: {a: {url: testsrc://}}\n"), 1, 11,
                      "defaults", "expected a mapping of camera settings");
}

// --- durations and sizes -------------------------------------------------------------------------

TEST(ConfigDurations, Parse) {
  const std::pair<const char*, int64_t> good[] = {
      {"5s", 5000}, {"250ms", 250},   {"2m", 120000},  {"1.5s", 1500},     {"1h", 3600000},
      {"5", 5000},  {"0.25", 250},    {"0", 0},        {" 3s ", 3000},     {"10 ms", 10},
      {".5s", 500}, {"1.001s", 1001}, {"0.5m", 30000}, {"1.25h", 4500000}, {"007s", 7000}};
  for (const auto& [text, ms] : good) {
    Duration d{-1};
    EXPECT_TRUE(parse_duration(text, &d)) << text;
    EXPECT_EQ(d.count(), ms) << text;
  }
  for (const char* text : {"", "s", "abc", "-1s", "5x", "5sec", "1.5ms", "0.0001s", "1e3", "5.",
                           "1..2s", "5 s s", "5S", "+5s", "inf", "nan", "99999999999999999999h"}) {
    Duration d{-1};
    EXPECT_FALSE(parse_duration(text, &d)) << text;
    EXPECT_EQ(d.count(), -1) << text;
  }
}

TEST(ConfigSizes, Parse) {
  const std::pair<const char*, uint64_t> good[] = {{"8MiB", 8ull << 20},
                                                   {"64KiB", 64ull << 10},
                                                   {"1GiB", 1ull << 30},
                                                   {"512k", 512ull << 10},
                                                   {"1M", 1ull << 20},
                                                   {"2G", 2ull << 30},
                                                   {"123", 123},
                                                   {"0", 0},
                                                   {"1.5KiB", 1536},
                                                   {"4 MiB", 4ull << 20},
                                                   {"8mib", 8ull << 20},
                                                   {"2KB", 2048},
                                                   {"7B", 7},
                                                   {"1Ki", 1024},
                                                   {"1T", 1ull << 40}};
  for (const auto& [text, bytes] : good) {
    uint64_t n = 1;
    EXPECT_TRUE(parse_size(text, &n)) << text;
    EXPECT_EQ(n, bytes) << text;
  }
  for (const char* text :
       {"", "MiB", "abc", "-1", "8XiB", "8MiBs", "0.3KiB", "1.5", "1e6", "99999999999999999T"}) {
    uint64_t n = 1;
    EXPECT_FALSE(parse_size(text, &n)) << text;
    EXPECT_EQ(n, 1u) << text;
  }
}

TEST(ConfigDurations, RangesInTheFile) {
  EXPECT_CONFIG_ERROR(MustFail("status_interval: 0\ncameras: {a: {url: testsrc://}}\n"), 1, 18,
                      "status_interval", "expected a duration 1ms..24h");
  EXPECT_CONFIG_ERROR(MustFail("status_interval: 25h\ncameras: {a: {url: testsrc://}}\n"), 1, 18,
                      "status_interval", "got '25h'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, stall_timeout: 0s}}\n"), 1, 47,
                      "cameras.a.stall_timeout", "expected a duration 1ms..24h");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, open_timeout: soon}}\n"), 1, 46,
                      "cameras.a.open_timeout",
                      "expected a duration 1ms..24h (e.g. 5s, 250ms, 1.5s, 2m), got 'soon'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, wait_timeout: -1}}\n"), 1, 46,
                      "cameras.a.wait_timeout", "expected a duration 0ms..24h");
}

// --- testsrc URL parameters ----------------------------------------------------------------------

TEST(ConfigTestsrc, UrlParametersOverrideKeys) {
  const Config cfg = MustParse(Y(R"(
defaults:
  width: 320
cameras:
  a:
    url: "testsrc://?width=640&height=480&fps=25"
    width: 800
    height: 600
    fps: 60
  b:
    url: "testsrc://?fps=12.5"
    height: 200
  c:
    url: TestSrc:///?height=96
)"));
  ASSERT_EQ(cfg.cameras.size(), 3u);
  EXPECT_EQ(cfg.cameras[0].url, "testsrc://?width=640&height=480&fps=25");
  EXPECT_EQ(cfg.cameras[0].test_width, 640u);
  EXPECT_EQ(cfg.cameras[0].test_height, 480u);
  EXPECT_DOUBLE_EQ(cfg.cameras[0].fps, 25.0);
  EXPECT_EQ(cfg.cameras[1].test_width, 320u);
  EXPECT_EQ(cfg.cameras[1].test_height, 200u);
  EXPECT_DOUBLE_EQ(cfg.cameras[1].fps, 12.5);
  EXPECT_EQ(cfg.cameras[2].test_height, 96u);
  EXPECT_EQ(cfg.cameras[2].url, "testsrc:///?height=96");
}

TEST(ConfigTestsrc, BadUrlParameters) {
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://?width=641\n"), 3, 10,
                      "cameras.a.url",
                      "width in the URL: expected an even integer 16..16384, got '641'");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://?height=abc\n"), 3, 10,
                      "cameras.a.url", "height in the URL: expected an even integer 16..16384");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://?fps=0\n"), 3, 10,
                      "cameras.a.url", "fps in the URL: expected a frame rate 0 < fps <= 240");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://?with=640\n"), 3, 10,
                      "cameras.a.url", "unknown testsrc parameter 'with' (did you mean 'width'?)");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://?fps=5&fps=6\n"), 3, 10,
                      "cameras.a.url", "testsrc parameter 'fps' given twice");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://bars\n"), 3, 10, "cameras.a.url",
                      "expected testsrc:// or testsrc://?width=W&height=H&fps=F");
}

TEST(ConfigTestsrc, KeyRanges) {
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://\n    width: 8\n"), 4, 12,
                      "cameras.a.width", "expected an even integer 16..16384, got '8'");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://\n    height: 16386\n"), 4, 13,
                      "cameras.a.height", "got '16386'");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://\n    fps: 241\n"), 4, 10,
                      "cameras.a.fps", "expected a frame rate 0 < fps <= 240");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://\n    fps: 1/0\n"), 4, 10,
                      "cameras.a.fps", "got '1/0'");
  const Config cfg = MustParse(
      "cameras:\n  a:\n    url: testsrc://\n    fps: 240\n    width: "
      "16384\n    height: 16\n");
  EXPECT_DOUBLE_EQ(cfg.cameras[0].fps, 240.0);
  EXPECT_EQ(cfg.cameras[0].test_width, 16384u);
}

TEST(ConfigTestsrc, SizeKeysOnADecodedCameraAreErrors) {
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
cameras:
  a:
    width: 640
    url: rtsp://cam.lan/stream
)")),
                      3, 5, "cameras.a.width", "applies to testsrc:// cameras only");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: /clips/a.mp4\n    height: 360\n"), 4, 5,
                      "cameras.a.height", "applies to testsrc:// cameras only");
}

// fps: testsrc's rate, and a file's without timestamps; a network camera keeps its stream's.
TEST(ConfigTestsrc, FpsAppliesToTestsrcAndFiles) {
  const Config cfg = MustParse(Y(R"(
cameras:
  a: {url: /clips/raw.h264, fps: 12.5}
  b: {url: "file:///clips/raw.hevc", fps: 30000/1001}
  c: {url: clips/x.mp4}
)"));
  EXPECT_DOUBLE_EQ(cfg.cameras[0].fps, 12.5);
  EXPECT_NEAR(cfg.cameras[1].fps, 29.97, 0.001);
  EXPECT_DOUBLE_EQ(cfg.cameras[2].fps, 30.0);
  for (const char* url : {"rtsp://cam.lan/stream", "https://cam.lan/live.m3u8"}) {
    EXPECT_CONFIG_ERROR(
        MustFail(std::string("cameras:\n  a:\n    url: ") + url + "\n    fps: 10\n"), 4, 5,
        "cameras.a.fps",
        "'fps' applies to testsrc:// cameras and files (a network camera keeps its stream's "
        "rate)");
  }
}

// --- URLs ----------------------------------------------------------------------------------------

TEST(ConfigUrls, NetworkSchemes) {
  const Config cfg = MustParse(Y(R"(
cameras:
  a: {url: "rtsp://user:p%40ss@192.168.1.20:554/Streaming/Channels/101"}
  b: {url: "rtsps://cam.lan:322/live"}
  c: {url: "http://cam.lan/video.mjpg"}
  d: {url: "https://example.com/live/index.m3u8"}
  e: {url: "RTSP://CAM.LAN/x"}
)"));
  ASSERT_EQ(cfg.cameras.size(), 5u);
  EXPECT_EQ(cfg.cameras[0].url, "rtsp://user:p%40ss@192.168.1.20:554/Streaming/Channels/101");
  EXPECT_EQ(cfg.cameras[3].url, "https://example.com/live/index.m3u8");
  // The scheme is stored lower case; the rest as written.
  EXPECT_EQ(cfg.cameras[4].url, "rtsp://CAM.LAN/x");
}

TEST(ConfigUrls, UnknownSchemeIsNamed) {
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: ftp://host/x.mp4\n"), 3, 10,
                      "cameras.a.url", "unsupported URL scheme 'ftp'");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: rtmp://host/live\n"), 3, 10,
                      "cameras.a.url", "unsupported URL scheme 'rtmp'");
}

TEST(ConfigUrls, NetworkUrlNeedsAHost) {
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: rtsp://\n"), 3, 10, "cameras.a.url",
                      "expected a host after rtsp://");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: rtsp://user:pw@/x\n"), 3, 10,
                      "cameras.a.url", "expected a host after rtsp://");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: \"rtsp://cam.lan/my stream\"\n"), 3, 10,
                      "cameras.a.url", "whitespace");
}

TEST(ConfigUrls, MissingFilesAreNotConfigErrors) {
  // A file that is not there (yet) is the camera's problem at run time (state error, retrying),
  // not the config's: a mount may come later, and the other cameras must run.
  Config cfg;
  ConfigError err;
  ASSERT_TRUE(parse_config("cameras:\n  a:\n    url: /nonexistent/cfsvc/video.mp4\n"
                           "  b:\n    url: file:///nonexistent/cfsvc/v.mp4\n",
                           "/etc/x/test.yaml", &cfg, &err))
      << err.str();
  EXPECT_EQ(cfg.cameras[0].url, "/nonexistent/cfsvc/video.mp4");
  EXPECT_EQ(cfg.cameras[1].url, "file:///nonexistent/cfsvc/v.mp4");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: file://relative/v.mp4\n"), 3, 10,
                      "cameras.a.url", "expected file:///absolute/path");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc\n"), 3, 10, "cameras.a.url",
                      "expected testsrc:// (with two slashes)");
}

TEST(ConfigUrls, FilesThatExist) {
  TempDir dir;
  const std::string video = dir.write("clip.mp4", "x");
  fs::create_directory(dir.path() + "/media");
  dir.write("media/rel.mkv", "x");
  const std::string yaml =
      dir.write("cams.yaml", "cameras:\n  a: {url: " + video + "}\n  b: {url: 'file://" + video +
                                 "'}\n  c: {url: media/rel.mkv}\n");
  Config cfg;
  ConfigError err;
  ASSERT_TRUE(load_config(yaml, &cfg, &err)) << err.str();
  ASSERT_EQ(cfg.cameras.size(), 3u);
  EXPECT_EQ(cfg.cameras[0].url, video);
  EXPECT_EQ(cfg.cameras[1].url, "file://" + video);
  // A relative path is resolved against the config file's directory.
  EXPECT_EQ(cfg.cameras[2].url, dir.path() + "/media/rel.mkv");
  EXPECT_EQ(cfg.path, yaml);
}

TEST(ConfigUrls, RelativeMissingFileIsResolved) {
  TempDir dir;
  const std::string yaml = dir.write("cams.yaml", "cameras:\n  a: {url: clips/none.mp4}\n");
  Config cfg;
  ConfigError err;
  ASSERT_TRUE(load_config(yaml, &cfg, &err)) << err.str();
  EXPECT_EQ(cfg.cameras[0].url, dir.path() + "/clips/none.mp4");
}

// --- structure and naming errors -----------------------------------------------------------------

TEST(ConfigErrors, FirstProblemWins) {
  const ConfigError e = MustFail(Y(R"(
cameras:
  a:
    url: testsrc://
    slots: abc
    policy: sometimes
)"));
  EXPECT_CONFIG_ERROR(e, 4, 12, "cameras.a.slots", "expected an integer 2..64, got 'abc'");
  EXPECT_EQ(e.message, "expected an integer 2..64, got 'abc'");
  EXPECT_EQ(e.str(), "test.yaml:4:12: cameras.a.slots: expected an integer 2..64, got 'abc'");
}

TEST(ConfigErrors, OutputUntouchedOnError) {
  Config cfg;
  cfg.log.level = "sentinel";
  ConfigError err;
  EXPECT_FALSE(parse_config("cameras: {a: {url: testsrc://, slots: 1}}\n", "x.yaml", &cfg, &err));
  EXPECT_EQ(cfg.log.level, "sentinel");
  EXPECT_TRUE(cfg.cameras.empty());
}

TEST(ConfigErrors, IntegerAndChoiceValues) {
  EXPECT_CONFIG_ERROR(MustFail("cameras: {parking: {url: testsrc://, slots: 1}}\n"), 1, 45,
                      "cameras.parking.slots", "expected an integer 2..64, got '1'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, slots: 8.0}}\n"), 1, 39,
                      "cameras.a.slots", "got '8.0'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, cuda_device: -1}}\n"), 1, 45,
                      "cameras.a.cuda_device", "expected an integer >= 0, got '-1'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, memory: gpu}}\n"), 1, 40,
                      "cameras.a.memory", "expected one of auto, cuda, host, got 'gpu'");
  EXPECT_CONFIG_ERROR(
      MustFail("cameras: {a: {url: testsrc://, decoder: nvdex}}\n"), 1, 41, "cameras.a.decoder",
      "expected one of auto, nvdec, software, cuvid, got 'nvdex' (did you mean 'nvdec'?)");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, output_format: yuv420p}}\n"), 1, 47,
                      "cameras.a.output_format", "expected one of auto, nv12, p010");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, policy: strict}}\n"), 1, 40,
                      "cameras.a.policy", "expected one of drop, strict_wait, got 'strict'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, rtsp_transport: http}}\n"), 1, 48,
                      "cameras.a.rtsp_transport", "expected one of tcp, udp, got 'http'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, loop: maybe}}\n"), 1, 38,
                      "cameras.a.loop", "expected true or false, got 'maybe'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, realtime: [1]}}\n"), 1, 42,
                      "cameras.a.realtime", "expected true or false, got a list");
  EXPECT_CONFIG_ERROR(MustFail("log: {level: warning}\ncameras: {a: {url: testsrc://}}\n"), 1, 14,
                      "log.level",
                      "expected one of trace, debug, info, warn, error, off, got 'warning' (did "
                      "you mean 'warn'?)");
}

TEST(ConfigErrors, PacketRingRange) {
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: /tmp/a.mp4, packet_ring: 32KiB}}\n"), 1, 45,
                      "cameras.a.packet_ring",
                      "expected a size 64KiB..1GiB (e.g. 8MiB), or 0/off for none, got '32KiB'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: /tmp/a.mp4, packet_ring: 2GiB}}\n"), 1, 45,
                      "cameras.a.packet_ring", "got '2GiB'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: /tmp/a.mp4, packet_ring: lots}}\n"), 1, 45,
                      "cameras.a.packet_ring", "got 'lots'");
}

TEST(ConfigErrors, ReconnectInitialAboveMax) {
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
cameras:
  a:
    url: testsrc://
    reconnect:
      initial: 40s
)")),
                      5, 7, "cameras.a.reconnect.initial",
                      "expected initial <= max, got initial 40s and max 30s");
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
defaults:
  reconnect: {max: 500ms}
cameras:
  a: {url: testsrc://}
)")),
                      2, 15, "defaults.reconnect.max",
                      "expected initial <= max, got initial 1s and max 500ms");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, reconnect: 5s}}\n"), 1, 43,
                      "cameras.a.reconnect", "expected a mapping with initial and max, got '5s'");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, reconnect: {min: 1s}}}\n"), 1, 44,
                      "cameras.a.reconnect.min", "unknown key 'min' (did you mean 'max'?)");
}

TEST(ConfigErrors, NullValueReportedAtItsKey) {
  // An empty value is marked by yaml-cpp at the next token; the error points at the key instead.
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
cameras:
  a:
    url: testsrc://
    slots:
    policy: drop
)")),
                      4, 5, "cameras.a.slots", "expected an integer 2..64, got nothing");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: ~\n"), 3, 5, "cameras.a.url",
                      "expected a URL");
}

TEST(ConfigErrors, UnknownKeysWithSuggestions) {
  EXPECT_CONFIG_ERROR(MustFail("camera:\n  a: {url: testsrc://}\n"), 1, 1, "camera",
                      "unknown key 'camera' (did you mean 'cameras'?)");
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
cameras:
  parking:
    url: testsrc://
    slot: 4
)")),
                      4, 5, "cameras.parking.slot", "unknown key 'slot' (did you mean 'slots'?)");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, stall_timout: 5s}}\n"), 1, 32,
                      "cameras.a.stall_timout", "(did you mean 'stall_timeout'?)");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, Policy: drop}}\n"), 1, 32,
                      "cameras.a.Policy", "(did you mean 'policy'?)");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {a: {url: testsrc://, polciy: drop}}\n"), 1, 32,
                      "cameras.a.polciy", "(did you mean 'policy'?)");
  // Nothing close: the known keys are listed instead.
  const ConfigError far = MustFail("metrics: {port: 9100}\ncameras: {a: {url: testsrc://}}\n");
  EXPECT_CONFIG_ERROR(far, 1, 1, "metrics",
                      "unknown key 'metrics' (known keys: runtime_dir, log, status_interval, "
                      "defaults, cameras, mqtt, http)");
  EXPECT_EQ(far.message.find("did you mean"), std::string::npos);
  EXPECT_CONFIG_ERROR(MustFail("log: {lvl: info}\ncameras: {a: {url: testsrc://}}\n"), 1, 7,
                      "log.lvl", "unknown key 'lvl' (did you mean 'level'?)");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://\n    name: a\n"), 4, 5,
                      "cameras.a.name", "a camera's name is its key under cameras:");
}

TEST(ConfigErrors, DuplicateCameraNames) {
  const ConfigError e = MustFail(Y(R"(
cameras:
  parking:
    url: testsrc://
  gate:
    url: testsrc://
  parking:
    url: testsrc://
)"));
  EXPECT_CONFIG_ERROR(e, 6, 3, "cameras.parking",
                      "duplicate camera name 'parking' (first defined at line 2)");
}

TEST(ConfigErrors, DuplicateKeys) {
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
cameras:
  a:
    url: testsrc://
    slots: 4
    slots: 5
)")),
                      5, 5, "cameras.a.slots", "duplicate key 'slots' (first at line 4)");
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
status_interval: 1s
cameras: {a: {url: testsrc://}}
status_interval: 2s
)")),
                      3, 1, "status_interval", "duplicate key 'status_interval' (first at line 1)");
}

TEST(ConfigErrors, InvalidCameraNames) {
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  \"front door\": {url: testsrc://}\n"), 2, 3,
                      "cameras.front door",
                      "expected a camera name of 1..59 characters A-Z a-z 0-9 . _ -, got 'front "
                      "door'");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  caméra: {url: testsrc://}\n"), 2, 3, "cameras.caméra",
                      "expected a camera name");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  \"\": {url: testsrc://}\n"), 2, 3, "cameras.",
                      "got ''");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  [a, b]: {url: testsrc://}\n"), 2, 3, "cameras",
                      "expected a camera name, got a list");
}

TEST(ConfigErrors, CamerasSection) {
  EXPECT_CONFIG_ERROR(MustFail("log: {level: info}\n"), 1, 1, "cameras",
                      "missing: at least one camera is required");
  EXPECT_CONFIG_ERROR(MustFail("log: {level: info}\ncameras:\n"), 2, 1, "cameras",
                      "expected at least one camera, got nothing");
  EXPECT_CONFIG_ERROR(MustFail("cameras: {}\n"), 1, 10, "cameras",
                      "expected at least one camera, got none");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  - url: testsrc://\n"), 2, 3, "cameras",
                      "expected a mapping of camera name to settings (parking: {url: ...}), got a "
                      "list");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a: testsrc://\n"), 2, 6, "cameras.a",
                      "expected a mapping of camera settings (url: ...), got 'testsrc://'");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    slots: 4\n"), 2, 3, "cameras.a.url",
                      "missing: every camera needs a url");
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n"), 2, 3, "cameras.a.url",
                      "missing: every camera needs a url");
}

TEST(ConfigErrors, TopLevelShapeAndRuntimeDir) {
  const ConfigError empty = MustFail("");
  EXPECT_EQ(empty.line, 0);
  EXPECT_EQ(empty.key, "");
  EXPECT_NE(empty.message.find("the file is empty"), std::string::npos);
  EXPECT_EQ(MustFail("# nothing but a comment\n").line, 0);
  EXPECT_CONFIG_ERROR(MustFail("- a\n- b\n"), 1, 1, "",
                      "expected a mapping of settings at the top level, got a list");
  EXPECT_CONFIG_ERROR(MustFail("runtime_dir: relative/dir\ncameras: {a: {url: testsrc://}}\n"), 1,
                      14, "runtime_dir", "expected an absolute directory path, got 'relative/dir'");
  EXPECT_CONFIG_ERROR(MustFail("log: debug\ncameras: {a: {url: testsrc://}}\n"), 1, 6, "log",
                      "expected a mapping (level: info), got 'debug'");
}

TEST(ConfigErrors, MergeKeys) {
  // yaml-cpp 0.7 keeps "<<" as a plain key; the message points to defaults:. (Should a yaml-cpp
  // resolve merge keys itself, the merged settings simply apply.)
  const std::string text = Y(R"(
cameras:
  a: &base
    url: testsrc://
    slots: 4
  b:
    <<: *base
)");
  Config cfg;
  ConfigError err;
  if (parse_config(text, "test.yaml", &cfg, &err)) {
    ASSERT_EQ(cfg.cameras.size(), 2u);
    EXPECT_EQ(cfg.cameras[1].slots, 4u);
  } else {
    EXPECT_CONFIG_ERROR(err, 6, 5, "cameras.b.<<", "merge keys (<<) are not supported");
  }
}

TEST(ConfigErrors, YamlSyntaxErrors) {
  const ConfigError e = MustFail("cameras:\n  a: {url: [testsrc://\n  b: 1\n", "bad.yaml");
  EXPECT_GT(e.line, 0);
  EXPECT_GT(e.column, 0);
  EXPECT_EQ(e.key, "");
  EXPECT_NE(e.message.find("invalid YAML: "), std::string::npos) << e.message;
  // yaml-cpp's own 0-based mark, made 1-based.
  const ConfigError tab = MustFail("cameras:\n  a:\n\turl: testsrc://\n");
  EXPECT_CONFIG_ERROR(tab, 3, 2, "", "invalid YAML: end of map not found");
  const ConfigError indent = MustFail("cameras: 1\n bad: 2\n", "x.yaml");
  EXPECT_CONFIG_ERROR(indent, 2, 5, "", "invalid YAML: illegal map value");
  EXPECT_EQ(indent.str(), "x.yaml:2:5: invalid YAML: illegal map value");
  const ConfigError quote = MustFail("cameras: {a: {url: \"testsrc://}}\n");
  EXPECT_GT(quote.line, 0);
  EXPECT_EQ(quote.key, "");
  EXPECT_EQ(quote.message.rfind("invalid YAML: ", 0), 0u) << quote.message;
}

TEST(ConfigErrors, MultipleDocuments) {
  EXPECT_CONFIG_ERROR(
      MustFail("cameras: {a: {url: testsrc://}}\n---\ncameras: {b: {url: testsrc://}}\n"), 3, 1, "",
      "expected one YAML document, found 2");
  // A trailing document marker alone is fine.
  MustParse("cameras: {a: {url: testsrc://}}\n---\n");
}

// --- mqtt: ---------------------------------------------------------------------------------------

// The node id the parser derives from this machine's host name: the name up to its first '.',
// lower case, every run of other characters one '_' between words, at most 64 characters.
std::string HostNodeId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "cuframes";
  std::string id;
  bool gap = false;
  for (const char* c = host; *c && *c != '.'; ++c) {
    const char l = (*c >= 'A' && *c <= 'Z') ? static_cast<char>(*c - 'A' + 'a') : *c;
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9')) {
      if (gap && !id.empty()) id += '_';
      gap = false;
      id += l;
    } else {
      gap = true;
    }
  }
  if (id.size() > 64) id.resize(64);
  while (!id.empty() && id.back() == '_') id.pop_back();
  return id.empty() ? "cuframes" : id;
}

// A Home Assistant id: lower-case a-z 0-9 words joined by single '_'.
bool IsHaId(const std::string& s) {
  return std::regex_match(s, std::regex("[a-z0-9]+(_[a-z0-9]+)*"));
}

const char* const kOneCamera = "cameras: {a: {url: testsrc://}}\n";

// "mqtt:" on line 1, then `body` (its keys indented by two) from line 2, then one camera.
std::string WithMqtt(const std::string& body) {
  return "mqtt:\n" + body + kOneCamera;
}

TEST(ConfigMqtt, HostOnlyGetsEveryDefault) {
  const Config cfg = MustParse(WithMqtt("  host: broker.lan\n"));
  ASSERT_TRUE(cfg.mqtt.has_value());
  const MqttConfig& m = *cfg.mqtt;
  const std::string node = HostNodeId();
  EXPECT_EQ(m.host, "broker.lan");
  EXPECT_EQ(m.port, 1883);
  EXPECT_EQ(m.client_id, "cuframes-" + node);
  EXPECT_EQ(m.username, "");
  EXPECT_EQ(m.password, "");
  EXPECT_FALSE(m.tls.has_value());
  EXPECT_EQ(m.keepalive, milliseconds(30000));
  EXPECT_EQ(m.node_id, node);
  EXPECT_EQ(m.base_topic, "cuframes/" + node);
  EXPECT_EQ(m.stats_interval, milliseconds(10000));
  EXPECT_TRUE(m.discovery);
  EXPECT_EQ(m.discovery_prefix, "homeassistant");
  EXPECT_EQ(m.qos, 1);
  // The struct's own defaults are the documented ones.
  const MqttConfig d;
  EXPECT_EQ(d.port, m.port);
  EXPECT_EQ(d.keepalive, m.keepalive);
  EXPECT_EQ(d.stats_interval, m.stats_interval);
  EXPECT_EQ(d.discovery, m.discovery);
  EXPECT_EQ(d.discovery_prefix, m.discovery_prefix);
  EXPECT_EQ(d.qos, m.qos);
  // The cameras are what they would be without MQTT.
  ASSERT_EQ(cfg.cameras.size(), 1u);
  EXPECT_EQ(cfg.cameras[0], MustParse(kOneCamera).cameras[0]);
}

TEST(ConfigMqtt, DefaultNodeIdIsTheHostName) {
  const Config cfg = MustParse(WithMqtt("  host: localhost\n"));
  ASSERT_TRUE(cfg.mqtt.has_value());
  const std::string id = cfg.mqtt->node_id;
  EXPECT_EQ(id, HostNodeId());
  EXPECT_TRUE(IsHaId(id)) << id;
  EXPECT_LE(id.size(), 64u);
  // The default is a node_id the config accepts, and gives the same settings when written out.
  const Config same = MustParse(WithMqtt("  host: localhost\n  node_id: " + id + "\n"));
  ASSERT_TRUE(same.mqtt.has_value());
  EXPECT_EQ(*same.mqtt, *cfg.mqtt);
}

TEST(ConfigMqtt, EveryKeyParsed) {
  const Config cfg = MustParse(Y(R"(
mqtt:
  host: 192.168.1.5
  port: 1884
  client_id: nvr-main
  username: cuframes
  password: "s3cret: #1"
  tls:
    ca_file: certs/ca.crt
    cert_file: /etc/ssl/client.crt
    key_file: client.key
    insecure: yes
  keepalive: 1m
  node_id: nvr_1
  base_topic: site/cuframes
  stats_interval: 2.5s
  discovery: off
  discovery_prefix: ha/discovery
  qos: 0
cameras:
  a: {url: testsrc://}
)"),
                               "/etc/cuframes/cuframes.yaml");
  ASSERT_TRUE(cfg.mqtt.has_value());
  const MqttConfig& m = *cfg.mqtt;
  EXPECT_EQ(m.host, "192.168.1.5");
  EXPECT_EQ(m.port, 1884);  // a port given wins over the TLS default
  EXPECT_EQ(m.client_id, "nvr-main");
  EXPECT_EQ(m.username, "cuframes");
  EXPECT_EQ(m.password, "s3cret: #1");
  ASSERT_TRUE(m.tls.has_value());
  // Relative files are resolved against the config file's directory.
  EXPECT_EQ(m.tls->ca_file, "/etc/cuframes/certs/ca.crt");
  EXPECT_EQ(m.tls->cert_file, "/etc/ssl/client.crt");
  EXPECT_EQ(m.tls->key_file, "/etc/cuframes/client.key");
  EXPECT_TRUE(m.tls->insecure);
  EXPECT_EQ(m.keepalive, milliseconds(60000));
  EXPECT_EQ(m.node_id, "nvr_1");
  EXPECT_EQ(m.base_topic, "site/cuframes");
  EXPECT_EQ(m.stats_interval, milliseconds(2500));
  EXPECT_FALSE(m.discovery);
  EXPECT_EQ(m.discovery_prefix, "ha/discovery");
  EXPECT_EQ(m.qos, 0);
}

TEST(ConfigMqtt, TlsAndItsPort) {
  // An empty tls: (or {}) is TLS with the system's CA store; the port becomes 8883.
  for (const char* tls : {"  tls:\n", "  tls: {}\n"}) {
    const Config cfg = MustParse(WithMqtt(std::string("  host: b\n") + tls));
    ASSERT_TRUE(cfg.mqtt.has_value()) << tls;
    EXPECT_EQ(cfg.mqtt->port, 8883) << tls;
    ASSERT_TRUE(cfg.mqtt->tls.has_value()) << tls;
    EXPECT_EQ(*cfg.mqtt->tls, MqttTlsConfig{}) << tls;
    EXPECT_EQ(cfg.mqtt->tls->ca_file, "");
    EXPECT_FALSE(cfg.mqtt->tls->insecure);
  }
  // A port given is kept, with or without TLS.
  EXPECT_EQ(MustParse(WithMqtt("  host: b\n  port: 1883\n  tls: {insecure: true}\n")).mqtt->port,
            1883);
  const Config plain = MustParse(WithMqtt("  host: b\n  port: 8883\n"));
  EXPECT_EQ(plain.mqtt->port, 8883);
  EXPECT_FALSE(plain.mqtt->tls.has_value());
  // tls: true is the same as tls: {}; tls: false is plain TCP.
  for (const char* on : {"true", "yes", "on", "True"}) {
    const Config cfg = MustParse(WithMqtt(std::string("  host: b\n  tls: ") + on + "\n"));
    ASSERT_TRUE(cfg.mqtt->tls.has_value()) << on;
    EXPECT_EQ(*cfg.mqtt->tls, MqttTlsConfig{}) << on;
    EXPECT_EQ(cfg.mqtt->port, 8883) << on;
  }
  for (const char* off : {"false", "no", "off"}) {
    const Config cfg = MustParse(WithMqtt(std::string("  host: b\n  tls: ") + off + "\n"));
    EXPECT_FALSE(cfg.mqtt->tls.has_value()) << off;
    EXPECT_EQ(cfg.mqtt->port, 1883) << off;
  }
  // The port default does not depend on where tls: stands.
  EXPECT_EQ(MustParse(WithMqtt("  tls: {}\n  host: b\n")).mqtt->port, 8883);
  // A client certificate with its key; absolute paths are kept.
  const Config cert = MustParse(
      WithMqtt("  host: b\n  tls: {cert_file: /c/client.crt, key_file: /c/client.key}\n"));
  EXPECT_EQ(cert.mqtt->tls->cert_file, "/c/client.crt");
  EXPECT_EQ(cert.mqtt->tls->key_file, "/c/client.key");
  EXPECT_EQ(cert.mqtt->tls->ca_file, "");
}

TEST(ConfigMqtt, DerivedDefaultsFollowNodeId) {
  const Config cfg = MustParse(WithMqtt("  host: b\n  node_id: garage\n"));
  EXPECT_EQ(cfg.mqtt->node_id, "garage");
  EXPECT_EQ(cfg.mqtt->client_id, "cuframes-garage");
  EXPECT_EQ(cfg.mqtt->base_topic, "cuframes/garage");
  // Given ones are kept as they are, wherever node_id stands.
  const Config given = MustParse(
      WithMqtt("  base_topic: home/nvr\n  client_id: my-client\n  host: b\n  node_id: garage\n"));
  EXPECT_EQ(given.mqtt->client_id, "my-client");
  EXPECT_EQ(given.mqtt->base_topic, "home/nvr");
}

TEST(ConfigMqtt, DefaultClientIdStaysWithin64Characters) {
  // node_id may have 64 characters; "cuframes-" + it would have 73, more than a given client_id
  // may have. Two such node_ids differing only at their end still get different ids.
  const std::string a(64, 'a');
  const std::string b = std::string(63, 'a') + "b";
  const Config ca = MustParse(WithMqtt("  host: b\n  node_id: " + a + "\n"));
  const Config cb = MustParse(WithMqtt("  host: b\n  node_id: " + b + "\n"));
  EXPECT_EQ(ca.mqtt->client_id.size(), 64u) << ca.mqtt->client_id;
  EXPECT_EQ(cb.mqtt->client_id.size(), 64u) << cb.mqtt->client_id;
  EXPECT_EQ(ca.mqtt->client_id.rfind("cuframes-aaaa", 0), 0u) << ca.mqtt->client_id;
  EXPECT_NE(ca.mqtt->client_id, cb.mqtt->client_id);
  // One that fits is kept whole.
  const std::string fits(55, 'c');
  const Config cf = MustParse(WithMqtt("  host: b\n  node_id: " + fits + "\n"));
  EXPECT_EQ(cf.mqtt->client_id, "cuframes-" + fits);
}

TEST(ConfigMqtt, ValueRanges) {
  auto mqtt = [](const std::string& body) {
    const Config cfg = MustParse(WithMqtt("  host: b\n" + body));
    EXPECT_TRUE(cfg.mqtt.has_value()) << body;
    return cfg.mqtt.value_or(MqttConfig{});
  };
  EXPECT_EQ(mqtt("  port: 1\n").port, 1);
  EXPECT_EQ(mqtt("  port: 65535\n").port, 65535);
  EXPECT_EQ(mqtt("  qos: 0\n").qos, 0);
  EXPECT_EQ(mqtt("  qos: 1\n").qos, 1);
  EXPECT_EQ(mqtt("  keepalive: 1s\n").keepalive, milliseconds(1000));
  EXPECT_EQ(mqtt("  keepalive: 65535s\n").keepalive, milliseconds(65535000));
  EXPECT_EQ(mqtt("  keepalive: 45\n").keepalive, milliseconds(45000));  // bare seconds
  EXPECT_EQ(mqtt("  stats_interval: 100ms\n").stats_interval, milliseconds(100));
  EXPECT_EQ(mqtt("  stats_interval: 24h\n").stats_interval, milliseconds(86400000));
  for (const char* yes : {"true", "yes", "on", "True"}) {
    EXPECT_TRUE(mqtt(std::string("  discovery: ") + yes + "\n").discovery) << yes;
  }
  for (const char* no : {"false", "no", "off", "NO"}) {
    EXPECT_FALSE(mqtt(std::string("  discovery: ") + no + "\n").discovery) << no;
  }
  const std::string id64 = "a" + std::string(62, '1') + "z";
  EXPECT_EQ(mqtt("  client_id: " + id64 + "\n").client_id, id64);
  EXPECT_EQ(mqtt("  client_id: ' spaced '\n").client_id, "spaced");  // trimmed
  for (const std::string& id : {std::string("1"), std::string("nvr2"), std::string("a_b_c"),
                                std::string("2nd_floor_nvr"), id64}) {
    EXPECT_EQ(mqtt("  node_id: " + id + "\n").node_id, id);
  }
  EXPECT_EQ(mqtt("  base_topic: a/b/c-d/e.f\n").base_topic, "a/b/c-d/e.f");
  EXPECT_EQ(mqtt("  base_topic: nvr\n").base_topic, "nvr");
  EXPECT_EQ(mqtt("  discovery_prefix: ha\n").discovery_prefix, "ha");
  // A user without a password, and an empty password.
  const MqttConfig user = mqtt("  username: cam\n");
  EXPECT_EQ(user.username, "cam");
  EXPECT_EQ(user.password, "");
  EXPECT_EQ(mqtt("  username: cam\n  password: ''\n").password, "");
  // The host is trimmed; an IPv6 address is a host.
  EXPECT_EQ(MustParse(WithMqtt("  host: ' broker '\n")).mqtt->host, "broker");
  EXPECT_EQ(MustParse(WithMqtt("  host: '::1'\n")).mqtt->host, "::1");
  // Flow style works like any mapping.
  const Config flow = MustParse(std::string("mqtt: {host: b, qos: 0}\n") + kOneCamera);
  EXPECT_EQ(flow.mqtt->host, "b");
  EXPECT_EQ(flow.mqtt->qos, 0);
}

// --- mqtt: errors --------------------------------------------------------------------------------

TEST(ConfigMqttErrors, SectionAndHost) {
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: 5\n") + kOneCamera), 1, 7, "mqtt",
                      "expected a mapping (host: ..., port: ...), got '5'");
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: [a]\n") + kOneCamera), 1, 7, "mqtt",
                      "expected a mapping (host: ..., port: ...), got a list");
  // A missing host is reported at mqtt:, whatever else the section holds.
  const std::string missing = "missing: the broker's host is required";
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  port: 1883\n  qos: 0\n")), 1, 1, "mqtt.host", missing);
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("")), 1, 1, "mqtt.host", missing);
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: {}\n") + kOneCamera), 1, 1, "mqtt.host", missing);
  EXPECT_CONFIG_ERROR(MustFail(std::string(kOneCamera) + "mqtt:\n  port: 1\n"), 2, 1, "mqtt.host",
                      missing);
  EXPECT_EQ(MustFail(WithMqtt("  port: 1883\n")).message, missing);
  // An empty host.
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host:\n  port: 1883\n")), 2, 3, "mqtt.host",
                      "expected a host name or address, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: \"\"\n")), 2, 9, "mqtt.host",
                      "expected a host name or address, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: '  '\n")), 2, 9, "mqtt.host",
                      "expected a host name or address, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: [a, b]\n")), 2, 9, "mqtt.host",
                      "expected a host name or address, got a list");
}

TEST(ConfigMqttErrors, Port) {
  for (const char* port : {"0", "65536", "70000", "-1", "abc", "1883.0", "0x75b"}) {
    const ConfigError e = MustFail(WithMqtt(std::string("  host: b\n  port: ") + port + "\n"));
    EXPECT_CONFIG_ERROR(e, 3, 9, "mqtt.port",
                        std::string("expected a port 1..65535, got '") + port + "'");
  }
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  port:\n")), 3, 3, "mqtt.port",
                      "expected a port 1..65535, got nothing");
}

TEST(ConfigMqttErrors, Credentials) {
  // A password needs a username: reported at the password.
  const ConfigError alone = MustFail(WithMqtt("  host: b\n  password: secret\n  qos: 0\n"));
  EXPECT_CONFIG_ERROR(alone, 3, 3, "mqtt.password", "a password needs a username");
  EXPECT_EQ(alone.message, "a password needs a username");
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: {host: b, password: x}\n") + kOneCamera), 1, 17,
                      "mqtt.password", "a password needs a username");
  // An empty username would send no credentials at all (and drop the password).
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  username: \"\"\n  password: x\n")), 3, 13,
                      "mqtt.username", "expected a user name, got ''");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  username:\n")), 3, 3, "mqtt.username",
                      "expected a user name, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  username: u\n  password:\n")), 4, 3,
                      "mqtt.password", "expected a password, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  username: {a: 1}\n")), 3, 13, "mqtt.username",
                      "expected a user name, got a mapping");
}

TEST(ConfigMqttErrors, Tls) {
  // A client certificate and its key go together: reported at tls:.
  EXPECT_CONFIG_ERROR(
      MustFail(WithMqtt("  host: b\n  tls:\n    ca_file: /ca.pem\n    cert_file: /c.pem\n")), 3, 3,
      "mqtt.tls", "cert_file and key_file go together");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls: {key_file: /k.pem}\n")), 3, 3,
                      "mqtt.tls", "cert_file and key_file go together");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls: maybe\n")), 3, 8, "mqtt.tls",
                      "expected true, false or a mapping (ca_file: ..., cert_file: ..., "
                      "key_file: ...), got 'maybe'");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls: [a]\n")), 3, 8, "mqtt.tls",
                      "expected true, false or a mapping (ca_file: ..., cert_file: ..., "
                      "key_file: ...), got");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    ca_file: \"\"\n")), 4, 14,
                      "mqtt.tls.ca_file", "expected a file path, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    key_file:\n")), 4, 5,
                      "mqtt.tls.key_file", "expected a file path, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    cert_file: [a]\n")), 4, 16,
                      "mqtt.tls.cert_file", "expected a file path, got a list");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    insecure: perhaps\n")), 4, 15,
                      "mqtt.tls.insecure", "expected true or false, got 'perhaps'");
  // An unknown key is reported as unknown, whatever its value holds.
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    cafile:\n")), 4, 5,
                      "mqtt.tls.cafile", "unknown key 'cafile' (did you mean 'ca_file'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    verify: {depth: 1}\n")), 4, 5,
                      "mqtt.tls.verify",
                      "unknown key 'verify' (known keys: ca_file, cert_file, key_file, insecure)");
}

// A TLS file that is a FIFO or a device would hold up (or never end) the TLS library's read:
// refused when the config is loaded, as the config file itself is. A missing one is left to
// the connection (a mount may come later).
TEST(ConfigMqttErrors, TlsFilesMustBeRegularFiles) {
  TempDir dir;
  const std::string fifo = dir.path() + "/ca.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    ca_file: " + fifo + "\n")), 4, 14,
                      "mqtt.tls.ca_file",
                      fifo + ": not a regular file (a FIFO): a file path must name a file");
  const std::string cert = dir.write("client.crt", "not checked here\n");
  EXPECT_CONFIG_ERROR(
      MustFail(WithMqtt("  host: b\n  tls:\n    cert_file: " + cert +
                        "\n    key_file: /dev/zero\n")),
      5, 15, "mqtt.tls.key_file",
      "/dev/zero: not a regular file (a character device): a file path must name a file");
  // Relative to the config file's directory: "." is that directory.
  const std::string cfg = dir.write("c.yaml", WithMqtt("  host: b\n  tls:\n    ca_file: .\n"));
  Config out;
  ConfigError err;
  EXPECT_FALSE(load_config(cfg, &out, &err));
  EXPECT_NE(err.message.find("not a regular file (a directory)"), std::string::npos) << err.str();
  // Regular and missing files pass.
  const Config ok = MustParse(WithMqtt("  host: b\n  tls:\n    ca_file: " + cert +
                                       "\n    cert_file: " + dir.path() + "/later.crt\n" +
                                       "    key_file: " + dir.path() + "/later.key\n"));
  ASSERT_TRUE(ok.mqtt && ok.mqtt->tls);
  EXPECT_EQ(ok.mqtt->tls->ca_file, cert);
}

TEST(ConfigMqttErrors, Qos) {
  for (const char* qos : {"2", "-1", "once", "1.0"}) {
    EXPECT_CONFIG_ERROR(MustFail(WithMqtt(std::string("  host: b\n  qos: ") + qos + "\n")), 3, 8,
                        "mqtt.qos", std::string("expected 0 or 1, got '") + qos + "'");
  }
}

TEST(ConfigMqttErrors, Durations) {
  const std::string e_g = " (e.g. 5s, 250ms, 1.5s, 2m), got '";
  for (const char* keepalive : {"500ms", "0", "0.5", "65536s", "24h", "forever"}) {
    EXPECT_CONFIG_ERROR(
        MustFail(WithMqtt(std::string("  host: b\n  keepalive: ") + keepalive + "\n")), 3, 14,
        "mqtt.keepalive", "expected a duration 1s..65535s" + e_g + keepalive + "'");
  }
  for (const char* interval : {"99ms", "0", "0.05s", "25h", "soon"}) {
    EXPECT_CONFIG_ERROR(
        MustFail(WithMqtt(std::string("  host: b\n  stats_interval: ") + interval + "\n")), 3, 19,
        "mqtt.stats_interval", "expected a duration 100ms..24h" + e_g + interval + "'");
  }
}

TEST(ConfigMqttErrors, Topics) {
  const std::string what = "expected an MQTT topic without wildcards (e.g. cuframes/nvr), got '";
  // Wildcards, empty levels, a '/' at either end, white space, control or non-ASCII characters.
  for (const std::string topic : {"cuframes/+", "cuframes/#", "+", "#", "a/+/b", "/cuframes",
                                  "cuframes/", "a//b", "a b", "a\tb", "a\x7f", "caméra", ""}) {
    std::string quoted = "\"";  // YAML escapes for the control characters
    for (char c : topic) quoted += c == '\t' ? "\\t" : c == '\x7f' ? "\\x7f" : std::string(1, c);
    quoted += "\"";
    EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  base_topic: " + quoted + "\n")), 3, 15,
                        "mqtt.base_topic", what + topic + "'");
    EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  discovery_prefix: " + quoted + "\n")), 3,
                        21, "mqtt.discovery_prefix", what + topic + "'");
  }
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  base_topic:\n")), 3, 3, "mqtt.base_topic",
                      "expected an MQTT topic without wildcards (e.g. cuframes/nvr), got nothing");
}

TEST(ConfigMqttErrors, ClientId) {
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  client_id: ''\n")), 3, 14, "mqtt.client_id",
                      "expected a client id of 1..64 characters, got ''");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  client_id: " + std::string(65, 'c') + "\n")),
                      3, 14, "mqtt.client_id",
                      "expected a client id of 1..64 characters, got 'ccc");
}

TEST(ConfigMqttErrors, NodeId) {
  const std::string what =
      "expected a node id of 1..64 lower-case a-z 0-9 words joined by single '_' (a Home "
      "Assistant id), got '";
  for (const char* id : {"NVR-1", "nvr-1", "Nvr", "nvr.local", "my node", "a/b", "_nvr", "nvr_",
                         "a__b", "nvré", ""}) {
    const ConfigError e = MustFail(WithMqtt(std::string("  host: b\n  node_id: \"") + id + "\"\n"));
    EXPECT_CONFIG_ERROR(e, 3, 12, "mqtt.node_id", what + id + "'");
  }
  EXPECT_EQ(MustFail(WithMqtt("  host: b\n  node_id: NVR-1\n")).str(),
            "test.yaml:3:12: mqtt.node_id: " + what + "NVR-1'");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  node_id: " + std::string(65, 'n') + "\n")), 3,
                      12, "mqtt.node_id", what);
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  node_id:\n")), 3, 3, "mqtt.node_id",
                      "expected a node id of a-z 0-9 _, got nothing");
}

TEST(ConfigMqttErrors, UnknownAndDuplicateKeys) {
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  usename: u\n")), 3, 3, "mqtt.usename",
                      "unknown key 'usename' (did you mean 'username'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  qso: 1\n")), 3, 3, "mqtt.qso",
                      "unknown key 'qso' (did you mean 'qos'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  Port: 1\n")), 3, 3, "mqtt.Port",
                      "unknown key 'Port' (did you mean 'port'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  discovery_topic: x\n")), 3, 3,
                      "mqtt.discovery_topic",
                      "unknown key 'discovery_topic' (did you mean 'discovery'?)");
  // Nothing close: the known keys are listed.
  const ConfigError far = MustFail(WithMqtt("  host: b\n  bogus: {a: 1}\n"));
  EXPECT_CONFIG_ERROR(far, 3, 3, "mqtt.bogus",
                      "unknown key 'bogus' (known keys: host, port, client_id, username, "
                      "password, tls, keepalive, node_id, base_topic, stats_interval, discovery, "
                      "discovery_prefix, qos, snapshot_interval, snapshot_width)");
  // Unknown keys are found before a missing host.
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  hots: b\n")), 2, 3, "mqtt.hots",
                      "unknown key 'hots' (did you mean 'host'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: a\n  port: 1\n  host: b\n")), 4, 3, "mqtt.host",
                      "duplicate key 'host' (first at line 2)");
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: {host: a}\n") + kOneCamera + "mqtt: {host: b}\n"),
                      3, 1, "mqtt", "duplicate key 'mqtt' (first at line 1)");
}

TEST(ConfigErrors, CameraNamesSharingAnId) {
  // Names become Home Assistant ids (lower case, each run of other characters one '_'); two
  // cameras with one id are refused at the second, naming both.
  const ConfigError e = MustFail(Y(R"(
cameras:
  front.door: {url: testsrc://}
  gate: {url: testsrc://}
  Front_Door: {url: testsrc://, slots: 1}
)"));
  EXPECT_CONFIG_ERROR(e, 4, 3, "cameras.Front_Door", "");
  EXPECT_EQ(e.message,
            "cameras 'front.door' and 'Front_Door' would share the id 'front_door' in MQTT topics "
            "and Home Assistant: rename one");
  struct Clash {
    const char *first, *second, *id;
  };
  for (const Clash& c : {Clash{"parking", "Parking", "parking"}, Clash{"a-b", "a.b", "a_b"},
                         Clash{"cam--1", "cam_1", "cam_1"}, Clash{"-x-", "x", "x"},
                         Clash{"_", "x", "x"}, Clash{"Gate2", "gate2", "gate2"}}) {
    const std::string text = std::string("cameras:\n  ") + c.first + ": {url: testsrc://}\n  " +
                             c.second + ": {url: testsrc://}\n";
    EXPECT_CONFIG_ERROR(MustFail(text), 3, 3, std::string("cameras.") + c.second,
                        std::string("cameras '") + c.first + "' and '" + c.second +
                            "' would share the id '" + c.id + "'");
  }
  // With or without an mqtt: section.
  EXPECT_CONFIG_ERROR(
      MustFail("mqtt: {host: b}\ncameras:\n  a.b: {url: testsrc://}\n  A_B: {url: testsrc://}\n"),
      4, 3, "cameras.A_B", "cameras 'a.b' and 'A_B' would share the id 'a_b'");
  // Names whose ids differ are fine.
  const Config cfg = MustParse(Y(R"(
cameras:
  front.door: {url: testsrc://}
  front.door2: {url: testsrc://}
  frontdoor: {url: testsrc://}
  Back-Yard: {url: testsrc://}
)"));
  EXPECT_EQ(cfg.cameras.size(), 4u);
}

// --- files ---------------------------------------------------------------------------------------

TEST(ConfigFiles, MissingAndUnreadable) {
  Config cfg;
  ConfigError err;
  ASSERT_FALSE(load_config("/nonexistent/cfsvc/cuframes.yaml", &cfg, &err));
  EXPECT_EQ(err.file, "/nonexistent/cfsvc/cuframes.yaml");
  EXPECT_EQ(err.line, 0);
  EXPECT_EQ(err.column, 0);
  EXPECT_EQ(err.key, "");
  EXPECT_EQ(err.message, std::string("cannot open: ") + std::strerror(ENOENT));
  EXPECT_EQ(err.str(), "/nonexistent/cfsvc/cuframes.yaml: cannot open: No such file or directory");

  TempDir dir;
  ASSERT_FALSE(load_config(dir.path(), &cfg, &err));
  EXPECT_EQ(err.line, 0);
  EXPECT_EQ(err.str(), dir.path() + ": not a regular file (a directory): a config must be one");
}

// Only a regular file is read, opened without blocking: a FIFO with no writer would block an
// open or a read forever (--check-config hung, a reload wedged the service); /dev/zero never
// ends (bad_alloc).
TEST(ConfigFiles, SpecialFilesAreRefusedWithoutBlocking) {
  TempDir dir;
  const std::string fifo = dir.path() + "/fifo.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  Config cfg;
  ConfigError err;
  ASSERT_FALSE(load_config(fifo, &cfg, &err));
  EXPECT_EQ(err.str(), fifo + ": not a regular file (a FIFO): a config must be one");
  ASSERT_FALSE(load_config("/dev/zero", &cfg, &err));
  EXPECT_EQ(err.str(), "/dev/zero: not a regular file (a character device): a config must be one");
  const std::string link = dir.path() + "/zero.yaml";  // the path named, not its target
  ASSERT_EQ(::symlink("/dev/zero", link.c_str()), 0);
  ASSERT_FALSE(load_config(link, &cfg, &err));
  EXPECT_EQ(err.file, link);
  EXPECT_NE(err.message.find("(a character device)"), std::string::npos) << err.str();
}

TEST(ConfigFiles, AtMost1MiB) {
  TempDir dir;
  const std::string head = "cameras:\n  a: {url: testsrc://}\n";
  // Exactly the limit: read and parsed.
  std::string text = head;
  const std::string comment = "# " + std::string(61, 'x') + "\n";
  while (text.size() + comment.size() <= kMaxConfigBytes) text += comment;
  text += std::string(kMaxConfigBytes - text.size() - 1, '#') + "\n";
  ASSERT_EQ(text.size(), kMaxConfigBytes);
  const std::string at_limit = dir.write("limit.yaml", text);
  Config cfg;
  ConfigError err;
  EXPECT_TRUE(load_config(at_limit, &cfg, &err)) << err.str();
  // One byte more is refused before anything is read; so is a sparse 3 GiB file.
  const std::string over = dir.write("over.yaml", text + "\n");
  ASSERT_FALSE(load_config(over, &cfg, &err));
  EXPECT_EQ(err.str(),
            over + ": the file is 1048577 bytes, larger than the 1 MiB a config may have");
  const std::string huge = dir.path() + "/huge.yaml";
  ASSERT_EQ(::truncate(dir.write("huge.yaml", "").c_str(), 3ll << 30), 0) << std::strerror(errno);
  ASSERT_FALSE(load_config(huge, &cfg, &err));
  EXPECT_EQ(err.str(),
            huge + ": the file is 3221225472 bytes, larger than the 1 MiB a config may have");
}

TEST(ConfigFiles, ASymlinkToAConfigIsRead) {
  TempDir dir;
  const std::string real = dir.write("real.yaml", "cameras:\n  a: {url: testsrc://}\n");
  const std::string link = dir.path() + "/link.yaml";
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  Config cfg;
  ConfigError err;
  ASSERT_TRUE(load_config(link, &cfg, &err)) << err.str();
  EXPECT_EQ(cfg.cameras.size(), 1u);
}

TEST(ConfigFiles, LoadReportsTheFileInErrors) {
  TempDir dir;
  const std::string p = dir.write("c.yaml", "cameras:\n  a:\n    url: testsrc://\n    slots: 0\n");
  Config cfg;
  ConfigError err;
  ASSERT_FALSE(load_config(p, &cfg, &err));
  EXPECT_EQ(err.str(), p + ":4:12: cameras.a.slots: expected an integer 2..64, got '0'");
}

TEST(ConfigFiles, ErrorStringFormat) {
  ConfigError e;
  e.message = "m";
  EXPECT_EQ(e.str(), "m");
  e.file = "f.yaml";
  EXPECT_EQ(e.str(), "f.yaml: m");
  e.key = "cameras.a";
  EXPECT_EQ(e.str(), "f.yaml: cameras.a: m");
  e.line = 3;
  EXPECT_EQ(e.str(), "f.yaml:3: cameras.a: m");
  e.column = 7;
  EXPECT_EQ(e.str(), "f.yaml:3:7: cameras.a: m");
}

TEST(ConfigFiles, ShippedDefaultConfigLoads) {
  const std::string p = std::string(CFSVC_SOURCE_DIR) + "/config/cuframes.yaml";
  Config cfg;
  ConfigError err;
  ASSERT_TRUE(load_config(p, &cfg, &err)) << err.str();
  ASSERT_EQ(cfg.cameras.size(), 1u);
  const CameraConfig& c = cfg.cameras[0];
  EXPECT_EQ(c.name, "demo");
  EXPECT_EQ(c.url.rfind("testsrc://", 0), 0u);
  EXPECT_EQ(c.memory, MemoryChoice::kAuto);
  EXPECT_EQ(c.test_width, 1280u);
  EXPECT_EQ(c.test_height, 720u);
  EXPECT_DOUBLE_EQ(c.fps, 30.0);
}

TEST(ConfigFiles, ShippedExampleLoads) {
  const std::string p = std::string(CFSVC_SOURCE_DIR) + "/config/cameras.example.yaml";
  const std::string text = ReadFile(p);
  ASSERT_FALSE(text.empty());
  const std::string replay = "/var/lib/cuframes/replay.mp4";
  const size_t at = text.find(replay);
  ASSERT_NE(at, std::string::npos);
  {
    Config cfg;
    ConfigError err;
    ASSERT_TRUE(load_config(p, &cfg, &err)) << err.str();  // as shipped
  }
  // With a file that exists, all of it loads.
  TempDir dir;
  const std::string video = dir.write("replay.mp4", "x");
  std::string fixed = text;
  fixed.replace(at, replay.size(), video);
  const Config cfg = MustParse(fixed, p);
  ASSERT_EQ(cfg.cameras.size(), 6u);
  EXPECT_FALSE(cfg.runtime_dir.has_value());
  EXPECT_EQ(cfg.status_interval, milliseconds(2000));
  auto find = [&](const std::string& name) -> const CameraConfig& {
    for (const CameraConfig& c : cfg.cameras) {
      if (c.name == name) return c;
    }
    ADD_FAILURE() << "no camera " << name;
    return cfg.cameras[0];
  };
  const CameraConfig& parking = find("parking");
  EXPECT_EQ(parking.decoder, DecoderChoice::kNvdec);
  EXPECT_EQ(parking.memory, MemoryChoice::kCuda);
  EXPECT_EQ(parking.slots, 12u);
  EXPECT_EQ(parking.packet_ring_bytes, 32u << 20);
  EXPECT_EQ(parking.url.find("rtsp://viewer:"), 0u);
  const CameraConfig& entrance = find("entrance");
  EXPECT_EQ(entrance.cuda_device, 1);
  EXPECT_EQ(entrance.policy, RingPolicy::kStrictWait);
  EXPECT_EQ(entrance.wait_timeout, milliseconds(500));
  EXPECT_EQ(entrance.packet_ring_bytes, 0u);
  EXPECT_EQ(entrance.stall_timeout, milliseconds(10000));
  EXPECT_EQ(entrance.reconnect.initial, milliseconds(2000));
  EXPECT_EQ(entrance.reconnect.max, milliseconds(60000));
  EXPECT_EQ(find("garden").rtsp_transport, RtspTransport::kUdp);
  EXPECT_EQ(find("lobby").decoder, DecoderChoice::kSoftware);
  EXPECT_EQ(find("lobby").memory, MemoryChoice::kHost);
  const CameraConfig& replay_cam = find("replay");
  EXPECT_EQ(replay_cam.url, video);
  EXPECT_TRUE(replay_cam.loop);
  EXPECT_TRUE(replay_cam.realtime);
  EXPECT_EQ(find("pattern").test_width, 1920u);
  EXPECT_DOUBLE_EQ(find("pattern").fps, 25.0);
}

TEST(ConfigFiles, ToString) {
  EXPECT_STREQ(to_string(MemoryChoice::kAuto), "auto");
  EXPECT_STREQ(to_string(MemoryChoice::kCuda), "cuda");
  EXPECT_STREQ(to_string(MemoryChoice::kHost), "host");
  EXPECT_STREQ(to_string(DecoderChoice::kAuto), "auto");
  EXPECT_STREQ(to_string(DecoderChoice::kNvdec), "nvdec");
  EXPECT_STREQ(to_string(DecoderChoice::kSoftware), "software");
  EXPECT_STREQ(to_string(DecoderChoice::kCuvid), "cuvid");
  EXPECT_STREQ(to_string(OutputFormat::kAuto), "auto");
  EXPECT_STREQ(to_string(OutputFormat::kNv12), "nv12");
  EXPECT_STREQ(to_string(OutputFormat::kP010), "p010");
  EXPECT_STREQ(to_string(RingPolicy::kDrop), "drop");
  EXPECT_STREQ(to_string(RingPolicy::kStrictWait), "strict_wait");
}

}  // namespace
}  // namespace cfsvc
