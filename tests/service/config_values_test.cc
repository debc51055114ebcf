// cuframes-service configuration parser: every key, defaults, the defaults: merge, durations and
// sizes, testsrc keys and URL rules.
#include "config_test_util.h"

namespace cfsvc {
namespace {

using namespace config_test;  // NOLINT: the helpers above every test
namespace fs = std::filesystem;
using std::chrono::milliseconds;

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
  c: {url: /clips/a.mp4, decoder: nvcuvid}
  d: {url: rtsp://cam.lan/s, decoder: NVCUVID, memory: cuda}
)"));
  ASSERT_EQ(cfg.cameras.size(), 4u);
  EXPECT_EQ(cfg.cameras[2].decoder, DecoderChoice::kNvcuvid);
  EXPECT_EQ(cfg.cameras[2].memory, MemoryChoice::kAuto);
  EXPECT_EQ(cfg.cameras[3].decoder, DecoderChoice::kNvcuvid);
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
  EXPECT_CONFIG_ERROR(MustFail("cameras:\n  a:\n    url: testsrc://\n    packet_ring: 1MiB\n"), 4,
                      5, "cameras.a.packet_ring",
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
  ASSERT_TRUE(
      parse_config("cameras:\n  a:\n    url: /nonexistent/cfsvc/video.mp4\n"
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

}  // namespace
}  // namespace cfsvc
