// cuframes-service configuration parser: reading config files (special files, size, symlinks,
// the shipped configs) and the error string.
#include "config_test_util.h"

namespace cfsvc {
namespace {

using namespace config_test;  // NOLINT: the helpers above every test
namespace fs = std::filesystem;
using std::chrono::milliseconds;

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
  EXPECT_STREQ(to_string(DecoderChoice::kNvcuvid), "nvcuvid");
  EXPECT_STREQ(to_string(OutputFormat::kAuto), "auto");
  EXPECT_STREQ(to_string(OutputFormat::kNv12), "nv12");
  EXPECT_STREQ(to_string(OutputFormat::kP010), "p010");
  EXPECT_STREQ(to_string(RingPolicy::kDrop), "drop");
  EXPECT_STREQ(to_string(RingPolicy::kStrictWait), "strict_wait");
}

}  // namespace
}  // namespace cfsvc
