// cuframes-service configuration: the YAML schema as plain structs, with defaults. Parsing
// (config.cc, driven by the tables of config_schema.cc) validates everything and reports the
// first problem as "file:line:column: key: message". docs/configuration.md documents every key;
// service_config_doc_test checks that its tables and the schema's list the same keys.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cfsvc {

using Duration = std::chrono::milliseconds;

enum class MemoryChoice { kAuto, kCuda, kHost };  // auto: cuda when a GPU is usable
// auto: into a cuda ring, nvcuvid for H.264 and HEVC, else (or where nvcuvid cannot start or
// refuses the stream) nvdec when it can; software otherwise and into host rings. cuvid: FFmpeg's
// *_cuvid decoders (NVIDIA's parser); nvcuvid: NVIDIA's parser and decoder called directly
// (nvcuvid_decoder.h)
enum class DecoderChoice { kAuto, kNvdec, kSoftware, kCuvid, kNvcuvid };
enum class OutputFormat { kAuto, kNv12, kP010 };  // auto: P010 for >8-bit sources
enum class RingPolicy { kDrop, kStrictWait };
enum class RtspTransport { kTcp, kUdp };

struct ReconnectConfig {
  Duration initial{1000};  // first wait after a failure
  Duration max{30000};     // the wait doubles up to this (with +-20% jitter)
  bool operator==(const ReconnectConfig&) const = default;
};

// One camera. Every field but name and url has a default (from `defaults:` when given).
struct CameraConfig {
  std::string name;  // [A-Za-z0-9._-]{1,59}; the ring key is "cam-<name>"
  std::string url;   // rtsp://, rtsps://, http(s)://, file:// or a path, testsrc://
  MemoryChoice memory = MemoryChoice::kAuto;
  int cuda_device = 0;
  DecoderChoice decoder = DecoderChoice::kAuto;
  OutputFormat output_format = OutputFormat::kAuto;
  uint32_t slots = 8;  // 2..64
  RingPolicy policy = RingPolicy::kDrop;
  Duration wait_timeout{1000};              // strict_wait: longest block per frame
  uint64_t packet_ring_bytes = 8ull << 20;  // 0 = no packet ring (testsrc); else 64 KiB..1 GiB
  Duration stall_timeout{5000};             // no video for this long: reconnect
  Duration open_timeout{10000};             // connect / open / probe, and socket I/O
  ReconnectConfig reconnect;
  RtspTransport rtsp_transport = RtspTransport::kTcp;
  bool loop = true;      // files: start over at the end
  bool realtime = true;  // files: pace at the stream's frame rate (false: flat out)
  // testsrc:// only (also settable in the URL: testsrc://?width=1280&height=720&fps=30)
  uint32_t test_width = 1280, test_height = 720;
  // testsrc's frame rate; a file's when its stream has no timestamps and states no rate of its
  // own (raw Annex B .h264/.hevc)
  double fps = 30;

  // The effective settings compared on reload: a camera restarts only when these differ.
  bool operator==(const CameraConfig&) const = default;
  std::string key() const { return "cam-" + name; }
};

// MQTT health reporting (docs/mqtt.md). Absent from the config: MQTT off.
struct MqttTlsConfig {
  std::string ca_file;    // CA to verify the broker with; empty: the system's store
  std::string cert_file;  // client certificate and key (both or neither)
  std::string key_file;
  bool insecure = false;  // skip the broker's hostname check
  bool operator==(const MqttTlsConfig&) const = default;
};

struct MqttConfig {
  std::string host;                // required
  int port = 1883;                 // default 1883, 8883 with tls
  std::string client_id;           // default "cuframes-<node_id>"
  std::string username, password;  // optional
  std::optional<MqttTlsConfig> tls;
  Duration keepalive{30000};
  std::string node_id;     // a-z 0-9 words joined by '_'; default: from the host name
  std::string base_topic;  // default "cuframes/<node_id>"
  Duration stats_interval{10000};
  bool discovery = true;
  std::string discovery_prefix = "homeassistant";
  int qos = 1;  // 0 or 1
  // Camera snapshots (issue 19): a retained JPEG at <base_topic>/<camera>/snapshot every
  // snapshot_interval (0: off), at most snapshot_width pixels wide.
  Duration snapshot_interval{10000};
  uint32_t snapshot_width = 640;  // 16..16384
  bool operator==(const MqttConfig&) const = default;
};

// The HTTP endpoint (docs/http.md): metrics, status, snapshots, a page. Absent: off.
struct HttpConfig {
  std::string listen;  // as written: "127.0.0.1:9900", "[::1]:9900"
  std::string host;    // the address part, brackets removed
  int port = 0;        // 1..65535
  bool operator==(const HttpConfig&) const = default;
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, off
};

struct Config {
  std::string path;                        // the file this came from (for messages)
  std::optional<std::string> runtime_dir;  // default: libcuframes' resolution
  LogConfig log;
  Duration status_interval{1000};     // how often the status file is rewritten
  std::optional<MqttConfig> mqtt;     // MQTT health reporting; none: off
  std::optional<HttpConfig> http;     // the HTTP endpoint; none: off
  std::vector<CameraConfig> cameras;  // in file order; names unique
};

// Parse errors carry the position of the offending node.
struct ConfigError {
  std::string file;
  int line = 0;     // 1-based; 0 when unknown
  int column = 0;   // 1-based
  std::string key;  // dotted path, e.g. "cameras.parking.slots"
  std::string message;
  // "file:line:column: key: message"
  std::string str() const;
};

// The largest config file load_config reads (docs/configuration.md, "The file"). Real configs
// are kilobytes; yaml-cpp holds about 150 bytes per byte of dense YAML (1 MiB: 150 MB, 3 s).
constexpr uint64_t kMaxConfigBytes = 1u << 20;

// Reads and validates a config file. Returns false with *error set on the first problem. Only a
// regular file of at most kMaxConfigBytes is read, opened without blocking: anything else (a
// FIFO, a device, a directory, a larger file) is an error naming it. Never throws (memory
// running out while reading or parsing is an error too).
bool load_config(const std::string& path, Config* out, ConfigError* error);
// The same from text (tests); `path` is used in messages only.
bool parse_config(const std::string& text, const std::string& path, Config* out,
                  ConfigError* error);

// Parses "5s", "250ms", "2m", "1.5s" or a bare number of seconds.
bool parse_duration(const std::string& s, Duration* out);
// Parses "8MiB", "64KiB", "1GiB", "512k", "1M" or a bare number of bytes.
bool parse_size(const std::string& s, uint64_t* out);

const char* to_string(MemoryChoice m);
const char* to_string(DecoderChoice d);
const char* to_string(OutputFormat f);
const char* to_string(RingPolicy p);
const char* to_string(RtspTransport t);

}  // namespace cfsvc
