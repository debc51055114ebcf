// The value parsers of the config: one YAML value (a Value: its key node, value node and dotted
// key) read as an integer, a duration, a choice, ... or an error "expected <what>, got ...",
// positioned at the value (at the key when the value has no usable position).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config.h"

namespace cfsvc {

// Thrown by Value::fail; parse_config turns it into its result.
struct Failure {
  ConfigError error;
};

constexpr Duration kMaxDuration = std::chrono::hours(24);
constexpr const char* kDimension = "an even integer 16..16384";
constexpr const char* kFps = "a frame rate 0 < fps <= 240 (e.g. 30 or 30000/1001)";
inline bool dimension_ok(int64_t x) {
  return x >= 16 && x <= 16384 && x % 2 == 0;
}

bool parse_int(std::string_view s, int64_t* out);  // "-12", "+3"; no dots, exponents, hex
bool parse_fps(std::string_view s, double* out);   // "30", "29.97" or "30000/1001"
bool valid_camera_name(std::string_view s);        // [A-Za-z0-9._-]{1,59}

// The file being parsed: where errors are reported, and what relative paths are resolved against.
struct Source {
  std::string file;
  std::string base_dir;  // the config file's directory
};

// One value of the config, with its key. Every parser throws Failure on a bad value.
class Value {
 public:
  Value(const Source& src, YAML::Node key_node, YAML::Node value, std::string key)
      : src_(&src), k_(std::move(key_node)), v_(std::move(value)), key_(std::move(key)) {}

  const YAML::Node& key_node() const { return k_; }
  const YAML::Node& node() const { return v_; }
  const std::string& key() const { return key_; }  // dotted: "cameras.parking.slots"
  const Source& source() const { return *src_; }
  // A child of this mapping: `name` at `key_node`.
  Value child(const YAML::Node& key_node, const YAML::Node& value, const std::string& name) const {
    return Value(*src_, key_node, value, key_.empty() ? name : key_ + "." + name);
  }

  // Throws `message` positioned at `at`, or at `fallback` when `at` has no usable position
  // (implicit nulls are marked at the next token, so they use their key too).
  [[noreturn]] void fail_at(const YAML::Node& at, const YAML::Node& fallback,
                            const std::string& key, const std::string& message) const;
  [[noreturn]] void fail(const std::string& message) const { fail_at(v_, k_, key_, message); }
  [[noreturn]] void fail_at_key(const std::string& message) const {
    fail_at(k_, k_, key_, message);
  }
  [[noreturn]] void expected(const std::string& what) const {
    fail("expected " + what + ", got " + got(v_));
  }
  // What a node holds, for "got ..." in messages.
  static std::string got(const YAML::Node& v);

  std::string scalar(const std::string& what) const;  // the text as it is
  std::string text(const std::string& what) const;    // trimmed
  // A mapping section (null, all children commented out, counts as an empty one): false for
  // null, true for a mapping, an error otherwise.
  bool mapping(const std::string& what) const;

  int64_t integer(int64_t lo, int64_t hi, const std::string& what) const;
  bool boolean() const;
  // One of `names` (case-insensitive); its index.
  size_t choice(const std::vector<std::string_view>& names) const;
  // One of `values`, by the names to_string() gives them (the same names the service prints).
  template <typename E>
  E choice_of(std::initializer_list<E> values) const {
    std::vector<std::string_view> names;
    for (E e : values) names.emplace_back(to_string(e));
    return values.begin()[choice(names)];
  }
  Duration duration(Duration lo, Duration hi = kMaxDuration) const;
  uint64_t packet_ring() const;  // a size 64KiB..1GiB, or 0/off
  uint32_t dimension() const;
  double fps() const;
  std::string topic() const;    // an MQTT topic without wildcards
  std::string node_id() const;  // a Home Assistant id
  // A path; relative ones resolved against the config file's directory. One that exists must
  // be a regular file (a FIFO or a device would hang or never end the reader).
  std::string file_path() const;

 private:
  const Source* src_;
  YAML::Node k_, v_;
  std::string key_;
};

}  // namespace cfsvc
