// cuframes-service configuration parser: every class of error with its exact file:line:column
// and dotted key.
#include "config_test_util.h"

namespace cfsvc {
namespace {

using namespace config_test;  // NOLINT: the helpers above every test
namespace fs = std::filesystem;
using std::chrono::milliseconds;

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
      "expected one of auto, nvdec, software, cuvid, nvcuvid, got 'nvdex' (did you mean 'nvdec'?)");
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

// decoder: nvcuvid has no download into a host ring: the error names both keys, at the key the
// camera gave (memory first), else at the camera.
TEST(ConfigErrors, NvcuvidNeedsCudaMemory) {
  const char* msg = "decoder: nvcuvid needs memory: cuda (or auto), got memory: host";
  EXPECT_CONFIG_ERROR(
      MustFail("cameras: {a: {url: /clips/a.mp4, decoder: nvcuvid, memory: host}}\n"), 1, 52,
      "cameras.a.memory", msg);
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
defaults:
  memory: host
cameras:
  a: {url: /clips/a.mp4, decoder: nvcuvid}
)")),
                      4, 26, "cameras.a.decoder", msg);
  EXPECT_CONFIG_ERROR(MustFail(Y(R"(
defaults: {memory: host, decoder: nvcuvid}
cameras:
  b: {url: rtsp://cam.lan/s}
)")),
                      3, 3, "cameras.b", msg);
  // A testsrc camera decodes nothing: its decoder does not matter.
  EXPECT_EQ(MustParse("cameras: {t: {url: testsrc://, decoder: nvcuvid, memory: host}}\n")
                .cameras[0]
                .memory,
            MemoryChoice::kHost);
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

}  // namespace
}  // namespace cfsvc
