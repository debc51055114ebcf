// cuframes-service configuration: YAML (yaml-cpp 0.7 and 0.8) -> Config, validating every key
// and stopping at the first problem with its file:line:column and dotted key.
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "cuframes/cuframes.h"
#include "ha_id.h"

namespace cfsvc {

// --- small helpers -------------------------------------------------------------------------------

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return r;
}

// A non-negative decimal "123" or "1.25": its digits as an integer and the power of ten that
// divides it. False for anything else (signs, exponents, empty parts, more than 18 digits).
bool parse_decimal(std::string_view s, uint64_t* mantissa, int* scale) {
  uint64_t m = 0;
  int digits = 0, frac = 0;
  bool dot = false, any_int = false, any_frac = false;
  for (char c : s) {
    if (c == '.') {
      if (dot) return false;
      dot = true;
    } else if (c >= '0' && c <= '9') {
      if (m == 0 && c == '0') {
        // leading zeros do not count towards the digit limit
      } else if (++digits > 18) {
        return false;
      }
      m = m * 10 + static_cast<uint64_t>(c - '0');
      if (dot) {
        ++frac;
        any_frac = true;
      } else {
        any_int = true;
      }
    } else {
      return false;
    }
  }
  if (!any_int && !any_frac) return false;
  if (dot && !any_frac) return false;  // "5." is not a number here
  *mantissa = m;
  *scale = frac;
  return true;
}

// mantissa / 10^scale * unit, exactly; false when it is not a whole number or overflows.
bool scale_exact(uint64_t mantissa, int scale, uint64_t unit, uint64_t* out) {
  uint64_t v = 0;
  if (__builtin_mul_overflow(mantissa, unit, &v)) return false;
  uint64_t div = 1;
  for (int i = 0; i < scale; ++i) div *= 10;  // scale <= 18: fits
  if (v % div != 0) return false;
  *out = v / div;
  return true;
}

// "5s", "1.5s", "250ms" for messages.
std::string format_duration(Duration d) {
  const int64_t ms = d.count();
  char buf[64];
  if (ms != 0 && ms % 3600000 == 0) {
    std::snprintf(buf, sizeof buf, "%lldh", static_cast<long long>(ms / 3600000));
  } else if (ms != 0 && ms % 60000 == 0) {
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(ms / 60000));
  } else if (ms >= 1000 && ms % 1000 == 0) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ms / 1000));
  } else if (ms >= 1000) {
    std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(ms) / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  }
  return buf;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

// The known word closest to `word` within edit distance 2 (case-insensitive), or "".
std::string closest(std::string_view word, const std::vector<std::string_view>& known) {
  const std::string w = lower(word);
  size_t best = 3;
  std::string_view found;
  for (std::string_view k : known) {
    const size_t d = edit_distance(w, k);
    if (d < best) {
      best = d;
      found = k;
    }
  }
  if (found.empty() && w.size() >= 3) {
    // "warning" for "warn", "stall" for "stall_timeout": one is the start of the other.
    for (std::string_view k : known) {
      if (k.size() >= 3 && (k.starts_with(w) || std::string_view(w).starts_with(k)))
        return std::string(k);
    }
  }
  return std::string(found);
}

std::string join(const std::vector<std::string_view>& words) {
  std::string r;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) r += ", ";
    r += words[i];
  }
  return r;
}

bool valid_camera_name(std::string_view s) {
  if (s.empty() || s.size() > 59) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool parse_int(std::string_view s, int64_t* out) {
  s = trim(s);
  bool neg = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = neg ? -v : v;
  return true;
}

// "30", "29.97" or "30000/1001".
bool parse_fps(std::string_view s, double* out) {
  s = trim(s);
  const size_t slash = s.find('/');
  if (slash != std::string_view::npos) {
    int64_t num = 0, den = 0;
    if (!parse_int(s.substr(0, slash), &num) || !parse_int(s.substr(slash + 1), &den) || den <= 0) {
      return false;
    }
    *out = static_cast<double>(num) / static_cast<double>(den);
    return true;
  }
  uint64_t m = 0;
  int scale = 0;
  if (!parse_decimal(s, &m, &scale)) return false;
  double v = static_cast<double>(m);
  for (int i = 0; i < scale; ++i) v /= 10.0;
  *out = v;
  return true;
}

constexpr Duration kMaxDuration = std::chrono::hours(24);

const std::vector<std::string_view> kTopKeys = {"runtime_dir", "log", "status_interval", "defaults",
                                                "cameras", "mqtt", "http"};
const std::vector<std::string_view> kMqttKeys = {
    "host",     "port",         "client_id",      "username", "password",         "tls",
    "keepalive", "node_id",     "base_topic",     "stats_interval", "discovery", "discovery_prefix",
    "qos", "snapshot_interval", "snapshot_width"};
const std::vector<std::string_view> kHttpKeys = {"listen"};
const std::vector<std::string_view> kMqttTlsKeys = {"ca_file", "cert_file", "key_file", "insecure"};
const std::vector<std::string_view> kLogKeys = {"level"};
const std::vector<std::string_view> kReconnectKeys = {"initial", "max"};
const std::vector<std::string_view> kLogLevels = {"trace", "debug", "info", "warn", "error", "off"};
const std::vector<std::string_view> kUrlParams = {"width", "height", "fps"};

// --- the parser ----------------------------------------------------------------------------------

struct Failure {
  ConfigError error;
};

// Settings a testsrc:// URL carries in its query string.
struct UrlParams {
  std::optional<uint32_t> width, height;
  std::optional<double> fps;
};

// The kinds of camera, by their url; some camera keys apply to some kinds only.
enum UrlKind : unsigned { kNetwork = 1, kFile = 2, kTestsrc = 4, kAnyUrl = 7 };

// What a url is, as Parser::url() decides it (a valid one).
UrlKind url_kind(std::string_view url) {
  const std::string s = lower(trim(url));
  if (s.rfind("testsrc://", 0) == 0) return kTestsrc;
  const size_t sep = s.find("://");
  if (sep == std::string::npos || sep == 0 || s.compare(0, sep, "file") == 0) return kFile;
  for (size_t i = 0; i < sep; ++i) {  // not a scheme: a path with "://" in it
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') ||
                    (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
    if (!ok) return kFile;
  }
  return kNetwork;
}

class Parser;

// One camera setting (a key of cameras.<name> and of defaults:). The cameras it applies to;
// set on another kind it is an error (`elsewhere` says why), and from defaults: it leaves that
// camera at the built-in value (`builtin`), so a change of it never restarts such a camera.
struct CameraKey {
  std::string_view name;
  unsigned applies = kAnyUrl;  // UrlKind bits
  void (*set)(const Parser& p, CameraConfig* c, const YAML::Node& k, const YAML::Node& v,
              const std::string& key) = nullptr;
  std::string_view elsewhere = {};
  void (*builtin)(CameraConfig* c) = nullptr;
};

class Parser {
 public:
  Parser(std::string file, std::string base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  void parse(const YAML::Node& root, Config* cfg);

 private:
  // Throws the error, positioned at `at`, or at `fallback` (the key) when `at` has no usable
  // position (implicit nulls are marked at the next token, so they use their key too).
  [[noreturn]] void fail(const YAML::Node& at, const YAML::Node& fallback, const std::string& key,
                         const std::string& message) const {
    ConfigError e;
    e.file = file_;
    YAML::Mark m = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
    if ((!at.IsDefined() || at.IsNull() || m.is_null()) && fallback.IsDefined())
      m = fallback.Mark();
    if (!m.is_null() && m.line >= 0) {
      e.line = m.line + 1;
      e.column = m.column + 1;
    }
    e.key = key;
    e.message = message;
    throw Failure{std::move(e)};
  }

  // What a node holds, for "got ..." in messages.
  static std::string got(const YAML::Node& v) {
    if (!v.IsDefined() || v.IsNull()) return "nothing";
    if (v.IsSequence()) return "a list";
    if (v.IsMap()) return "a mapping";
    std::string s = v.Scalar();
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return "'" + s + "'";
  }

  // The scalar text of v, or an error "expected <what>, got ...".
  std::string scalar(const YAML::Node& k, const YAML::Node& v, const std::string& key,
                     const std::string& what) const {
    if (!v.IsScalar()) fail(v, k, key, "expected " + what + ", got " + got(v));
    return v.Scalar();
  }

  // Walks a mapping in order: keys must be scalars and unique. fn(name, key node, value node,
  // dotted key) returns false for an unknown key, which is an error suggesting the closest of
  // `known`.
  template <class Fn>
  void each(const YAML::Node& map, const std::string& prefix,
            const std::vector<std::string_view>& known, Fn&& fn) const {
    std::map<std::string, int> seen;  // key -> 1-based line of its first occurrence
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node k = it->first;
      const YAML::Node v = it->second;
      if (!k.IsScalar()) {
        fail(k, k, prefix, "expected a key name, got " + got(k));
      }
      const std::string name = k.Scalar();
      const std::string dotted = prefix.empty() ? name : prefix + "." + name;
      const auto [pos, fresh] = seen.emplace(name, k.Mark().line + 1);
      if (!fresh) {
        fail(k, k, dotted,
             "duplicate key '" + name + "' (first at line " + std::to_string(pos->second) + ")");
      }
      if (!fn(name, k, v, dotted)) {
        if (name == "<<") {
          fail(k, k, dotted, "YAML merge keys (<<) are not supported; use the defaults: block");
        }
        std::string msg = "unknown key '" + name + "'";
        const std::string hint = closest(name, known);
        if (!hint.empty()) {
          msg += " (did you mean '" + hint + "'?)";
        } else {
          msg += " (known keys: " + join(known) + ")";
        }
        fail(k, k, dotted, msg);
      }
    }
  }

  // A mapping section; null (all children commented out) counts as empty.
  void expect_map(const YAML::Node& k, const YAML::Node& v, const std::string& key,
                  const std::string& what) const {
    if (v.IsNull() || v.IsMap()) return;
    fail(v, k, key, "expected " + what + ", got " + got(v));
  }

  int64_t integer(const YAML::Node& k, const YAML::Node& v, const std::string& key, int64_t lo,
                  int64_t hi, const std::string& what) const {
    const std::string s = scalar(k, v, key, what);
    int64_t x = 0;
    if (!parse_int(s, &x) || x < lo || x > hi)
      fail(v, k, key, "expected " + what + ", got " + got(v));
    return x;
  }

  bool boolean(const YAML::Node& k, const YAML::Node& v, const std::string& key) const {
    const std::string what = "true or false";
    const std::string s = lower(trim(scalar(k, v, key, what)));
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    fail(v, k, key, "expected " + what + ", got " + got(v));
  }

  // One of `names` (case-insensitive); returns its index.
  size_t choice(const YAML::Node& k, const YAML::Node& v, const std::string& key,
                const std::vector<std::string_view>& names) const {
    const std::string what = "one of " + join(names);
    const std::string s = lower(trim(scalar(k, v, key, what)));
    for (size_t i = 0; i < names.size(); ++i) {
      if (s == names[i]) return i;
    }
    std::string msg = "expected " + what + ", got " + got(v);
    const std::string hint = closest(s, names);
    if (!hint.empty()) msg += " (did you mean '" + hint + "'?)";
    fail(v, k, key, msg);
  }

  // One of `values`, by the names to_string() gives them (the same names the service prints).
  template <typename E>
  E choice_of(const YAML::Node& k, const YAML::Node& v, const std::string& key,
              std::initializer_list<E> values) const {
    std::vector<std::string_view> names;
    for (E e : values) names.emplace_back(to_string(e));
    return values.begin()[choice(k, v, key, names)];
  }

  Duration duration(const YAML::Node& k, const YAML::Node& v, const std::string& key,
                    Duration lo, Duration hi = kMaxDuration) const {
    const std::string what = "a duration " + format_duration(lo) + ".." +
                             format_duration(hi) + " (e.g. 5s, 250ms, 1.5s, 2m)";
    const std::string s = scalar(k, v, key, what);
    Duration d{};
    if (!parse_duration(s, &d) || d < lo || d > hi) {
      fail(v, k, key, "expected " + what + ", got " + got(v));
    }
    return d;
  }

  uint64_t packet_ring(const YAML::Node& k, const YAML::Node& v, const std::string& key) const {
    const std::string what = "a size 64KiB..1GiB (e.g. 8MiB), or 0/off for none";
    const std::string s = lower(trim(scalar(k, v, key, what)));
    if (s == "off" || s == "false" || s == "no" || s == "none") return 0;
    uint64_t n = 0;
    if (!parse_size(s, &n) || (n != 0 && (n < (64u << 10) || n > (1u << 30)))) {
      fail(v, k, key, "expected " + what + ", got " + got(v));
    }
    return n;
  }

  static bool dimension_ok(int64_t x) { return x >= 16 && x <= 16384 && x % 2 == 0; }
  static constexpr const char* kDimension = "an even integer 16..16384";
  static constexpr const char* kFps = "a frame rate 0 < fps <= 240 (e.g. 30 or 30000/1001)";

  uint32_t dimension(const YAML::Node& k, const YAML::Node& v, const std::string& key) const {
    const std::string s = scalar(k, v, key, kDimension);
    int64_t x = 0;
    if (!parse_int(s, &x) || !dimension_ok(x)) {
      fail(v, k, key, std::string("expected ") + kDimension + ", got " + got(v));
    }
    return static_cast<uint32_t>(x);
  }

  double fps(const YAML::Node& k, const YAML::Node& v, const std::string& key) const {
    const std::string s = scalar(k, v, key, kFps);
    double f = 0;
    if (!parse_fps(s, &f) || !(f > 0 && f <= 240)) {
      fail(v, k, key, std::string("expected ") + kFps + ", got " + got(v));
    }
    return f;
  }

  void reconnect(ReconnectConfig* r, const YAML::Node& k, const YAML::Node& v,
                 const std::string& key) const {
    expect_map(k, v, key, "a mapping with initial and max");
    if (v.IsNull()) return;
    YAML::Node initial_node, max_node;
    bool have_initial = false;
    each(v, key, kReconnectKeys,
         [&](const std::string& name, const YAML::Node& kk, const YAML::Node& vv,
             const std::string& dotted) {
           if (name == "initial") {
             r->initial = duration(kk, vv, dotted, Duration{1});
             initial_node = kk;
             have_initial = true;
           } else if (name == "max") {
             r->max = duration(kk, vv, dotted, Duration{1});
             max_node = kk;
           } else {
             return false;
           }
           return true;
         });
    if (r->initial > r->max) {
      const bool at_initial = have_initial;
      fail(at_initial ? initial_node : max_node, k, key + (at_initial ? ".initial" : ".max"),
           "expected initial <= max, got initial " + format_duration(r->initial) + " and max " +
               format_duration(r->max));
    }
  }

  // Applies one camera setting (shared by defaults: and cameras:); false when `name` is not one.
  // The camera settings, one row per key (docs/configuration.md, Cameras, lists the same).
  static const std::vector<CameraKey>& camera_keys() {
    using N = YAML::Node;
    using S = std::string;
    static constexpr std::string_view kTestsrcOnly =
        "applies to testsrc:// cameras only (decoded cameras keep their stream's size)";
    static const std::vector<CameraKey> keys = {
        {"memory", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->memory = p.choice_of(
               k, v, key, {MemoryChoice::kAuto, MemoryChoice::kCuda, MemoryChoice::kHost});
         }},
        {"cuda_device", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->cuda_device = static_cast<int>(
               p.integer(k, v, key, 0, std::numeric_limits<int>::max(), "an integer >= 0"));
         }},
        {"decoder", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->decoder = p.choice_of(
               k, v, key, {DecoderChoice::kAuto, DecoderChoice::kNvdec, DecoderChoice::kSoftware});
         }},
        {"output_format", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->output_format = p.choice_of(
               k, v, key, {OutputFormat::kAuto, OutputFormat::kNv12, OutputFormat::kP010});
         }},
        {"slots", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->slots = static_cast<uint32_t>(p.integer(k, v, key, 2, 64, "an integer 2..64"));
         }},
        {"policy", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->policy = p.choice_of(k, v, key, {RingPolicy::kDrop, RingPolicy::kStrictWait});
         }},
        {"wait_timeout", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->wait_timeout = p.duration(k, v, key, Duration{0});
         }},
        {"packet_ring", kNetwork | kFile,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->packet_ring_bytes = p.packet_ring(k, v, key);
         },
         "applies to decoded cameras only (testsrc:// draws its frames: it has no encoded "
         "packets, and its ring no packet ring)",
         [](CameraConfig* c) { c->packet_ring_bytes = 0; }},
        {"stall_timeout", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->stall_timeout = p.duration(k, v, key, Duration{1});
         }},
        {"open_timeout", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->open_timeout = p.duration(k, v, key, Duration{1});
         }},
        {"reconnect", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           p.reconnect(&c->reconnect, k, v, key);
         }},
        {"rtsp_transport", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->rtsp_transport = static_cast<RtspTransport>(p.choice(k, v, key, {"tcp", "udp"}));
         }},
        {"loop", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->loop = p.boolean(k, v, key);
         }},
        {"realtime", kAnyUrl,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->realtime = p.boolean(k, v, key);
         }},
        {"width", kTestsrc,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->test_width = p.dimension(k, v, key);
         },
         kTestsrcOnly, [](CameraConfig* c) { c->test_width = CameraConfig{}.test_width; }},
        {"height", kTestsrc,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->test_height = p.dimension(k, v, key);
         },
         kTestsrcOnly, [](CameraConfig* c) { c->test_height = CameraConfig{}.test_height; }},
        {"fps", kTestsrc | kFile,
         [](const Parser& p, CameraConfig* c, const N& k, const N& v, const S& key) {
           c->fps = p.fps(k, v, key);
         },
         "applies to testsrc:// cameras and files (a network camera keeps its stream's rate)",
         [](CameraConfig* c) { c->fps = CameraConfig{}.fps; }},
    };
    return keys;
  }

  static const CameraKey* camera_key(std::string_view name) {
    for (const CameraKey& k : camera_keys()) {
      if (k.name == name) return &k;
    }
    return nullptr;
  }

  // The keys of a camera (with url) or of defaults: (without), for "did you mean".
  static std::vector<std::string_view> camera_key_names(bool with_url) {
    std::vector<std::string_view> names;
    if (with_url) names.push_back("url");
    for (const CameraKey& k : camera_keys()) names.push_back(k.name);
    return names;
  }

  // Validates a camera URL; returns the URL to store (bare relative paths made absolute) and
  // fills *params for testsrc://.
  std::string url(const YAML::Node& k, const YAML::Node& v, const std::string& key, bool* testsrc,
                  UrlParams* params) const;

  void camera(const std::string& name, const YAML::Node& k, const YAML::Node& v,
              const CameraConfig& base, Config* cfg) const;
  void mqtt(const YAML::Node& k, const YAML::Node& v, const std::string& key, Config* cfg) const;
  void http(const YAML::Node& k, const YAML::Node& v, const std::string& key, Config* cfg) const;
  // A topic level or prefix: no MQTT wildcards, no empty levels.
  std::string topic(const YAML::Node& k, const YAML::Node& v, const std::string& key) const;

  std::string file_;
  std::string base_dir_;
};

std::string Parser::url(const YAML::Node& k, const YAML::Node& v, const std::string& key,
                        bool* testsrc, UrlParams* params) const {
  const std::string what =
      "a URL (rtsp://, rtsps://, http://, https://, file:///path, testsrc://) or a file path";
  const std::string s(trim(scalar(k, v, key, what)));
  if (s.empty()) fail(v, k, key, "expected " + what + ", got ''");
  *testsrc = false;

  const size_t sep = s.find("://");
  bool has_scheme = sep != std::string::npos && sep > 0;
  if (has_scheme) {
    const char c0 = s[0];
    has_scheme = (c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z');
    for (size_t i = 1; has_scheme && i < sep; ++i) {
      const char c = s[i];
      has_scheme = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '+' || c == '-' || c == '.';
    }
  }
  if (!has_scheme) {
    // A bare path: a file, resolved against the config file's directory when relative.
    if (s == "testsrc" || s.rfind("testsrc:", 0) == 0) {
      fail(v, k, key, "expected testsrc:// (with two slashes), got " + got(v));
    }
    std::filesystem::path p(s);
    if (p.is_relative() && !base_dir_.empty()) p = std::filesystem::path(base_dir_) / p;
    // Whether it exists is the camera's business at run time (state error, retrying): a file
    // on a mount that comes later must not refuse the whole config.
    return p.lexically_normal().string();
  }

  // The scheme is matched case-insensitively and stored lower case, so the sources can test
  // for "rtsp://" and the like.
  const std::string scheme = lower(s.substr(0, sep));
  const std::string rest = s.substr(sep + 3);
  const std::string normalized = scheme + "://" + rest;
  if (scheme == "testsrc") {
    std::string_view q(rest);
    if (!q.empty() && q.front() == '/') q.remove_prefix(1);
    if (!q.empty() && q.front() != '?') {
      fail(v, k, key, "expected testsrc:// or testsrc://?width=W&height=H&fps=F, got " + got(v));
    }
    if (!q.empty()) q.remove_prefix(1);
    std::map<std::string, bool> seen;
    while (!q.empty()) {
      const size_t amp = q.find('&');
      const std::string_view part = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
      if (part.empty()) continue;
      const size_t eq = part.find('=');
      const std::string pname(part.substr(0, eq));
      const std::string pval(eq == std::string_view::npos ? "" : part.substr(eq + 1));
      if (pname != "width" && pname != "height" && pname != "fps") {
        std::string msg = "unknown testsrc parameter '" + pname + "'";
        const std::string hint = closest(pname, kUrlParams);
        msg += hint.empty() ? " (known: width, height, fps)" : " (did you mean '" + hint + "'?)";
        fail(v, k, key, msg);
      }
      if (!seen.emplace(pname, true).second) {
        fail(v, k, key, "testsrc parameter '" + pname + "' given twice");
      }
      if (pname == "fps") {
        double f = 0;
        if (!parse_fps(pval, &f) || !(f > 0 && f <= 240)) {
          fail(v, k, key, std::string("fps in the URL: expected ") + kFps + ", got '" + pval + "'");
        }
        params->fps = f;
      } else {
        int64_t x = 0;
        if (!parse_int(pval, &x) || !dimension_ok(x)) {
          fail(v, k, key, pname + " in the URL: expected " + kDimension + ", got '" + pval + "'");
        }
        (pname == "width" ? params->width : params->height) = static_cast<uint32_t>(x);
      }
    }
    *testsrc = true;
    return normalized;
  }
  if (scheme == "file") {
    if (rest.empty() || rest.front() != '/') {
      fail(v, k, key, "expected file:///absolute/path, got " + got(v));
    }
    return normalized;
  }
  if (scheme == "rtsp" || scheme == "rtsps" || scheme == "http" || scheme == "https") {
    for (char c : s) {
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
        fail(v, k, key, "the URL contains whitespace or control characters (percent-encode them)");
      }
    }
    std::string authority = rest.substr(0, rest.find_first_of("/?#"));
    const size_t at = authority.rfind('@');
    if (at != std::string::npos) authority = authority.substr(at + 1);
    if (authority.empty() || authority.front() == ':') {
      fail(v, k, key, "expected a host after " + scheme + "://, got " + got(v));
    }
    return normalized;
  }
  fail(v, k, key,
       "unsupported URL scheme '" + s.substr(0, sep) +
           "' (expected rtsp, rtsps, http, https, file, testsrc or a file path)");
}

void Parser::camera(const std::string& name, const YAML::Node& k, const YAML::Node& v,
                    const CameraConfig& base, Config* cfg) const {
  const std::string prefix = "cameras." + name;
  if (!v.IsNull() && !v.IsMap()) {
    fail(v, k, prefix, "expected a mapping of camera settings (url: ...), got " + got(v));
  }
  CameraConfig c = base;
  c.name = name;

  // The kind of camera (its url) decides which keys may be given; look ahead.
  std::optional<UrlKind> kind;
  if (v.IsMap()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "url" && it->second.IsScalar()) {
        kind = url_kind(it->second.Scalar());
        break;
      }
    }
  }

  bool have_url = false, testsrc = false;
  UrlParams params;
  if (v.IsMap()) {
    each(v, prefix, camera_key_names(true),
         [&](const std::string& key, const YAML::Node& kk, const YAML::Node& vv,
             const std::string& dotted) {
           if (key == "url") {
             c.url = url(kk, vv, dotted, &testsrc, &params);
             have_url = true;
             return true;
           }
           if (key == "name") {
             fail(
                 kk, kk, dotted,
                 "a camera's name is its key under cameras:, not a setting (here: '" + name + "')");
           }
           const CameraKey* ck = camera_key(key);
           if (ck == nullptr) return false;
           if (kind && !(ck->applies & *kind)) {
             fail(kk, kk, dotted, "'" + key + "' " + std::string(ck->elsewhere));
           }
           ck->set(*this, &c, kk, vv, dotted);
           return true;
         });
  }
  if (!have_url) fail(k, k, prefix + ".url", "missing: every camera needs a url");

  if (testsrc) {
    if (params.width) c.test_width = *params.width;
    if (params.height) c.test_height = *params.height;
    if (params.fps) c.fps = *params.fps;
  }
  // Keys of other kinds of camera stay at their built-in values, so that a change of, say,
  // defaults.width never restarts a decoded camera on reload.
  const UrlKind final_kind = testsrc ? kTestsrc : url_kind(c.url);
  for (const CameraKey& ck : camera_keys()) {
    if (!(ck.applies & final_kind)) ck.builtin(&c);
  }
  cfg->cameras.push_back(std::move(c));
}

std::string Parser::topic(const YAML::Node& k, const YAML::Node& v,
                          const std::string& key) const {
  const std::string what = "an MQTT topic without wildcards (e.g. cuframes/nvr)";
  const std::string s(trim(scalar(k, v, key, what)));
  bool ok = !s.empty() && s.front() != '/' && s.back() != '/' &&
            s.find("//") == std::string::npos;
  for (char c : s) {
    // Printable ASCII, whether char is signed or not.
    const auto u = static_cast<unsigned char>(c);
    ok = ok && c != '+' && c != '#' && u > 0x20 && u < 0x7f;
  }
  if (!ok) fail(v, k, key, "expected " + what + ", got " + got(v));
  return s;
}

// "cuframes-<node_id>", within the 64 characters a given client_id may have: a longer one keeps
// its first 46 characters of node_id and adds a hash of all of it, so two long node_ids that
// differ only at the end still get different ids (one id knocks the other off the broker).
std::string default_client_id(const std::string& node_id) {
  std::string id = "cuframes-" + node_id;
  if (id.size() <= 64) return id;
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : node_id) h = (h ^ c) * 16777619u;
  char tail[10];
  std::snprintf(tail, sizeof tail, "-%08x", h);
  return id.substr(0, 64 - 9) + tail;
}

// The host name (up to its first '.') as a node id: lower case, a-z 0-9 words joined by '_'.
std::string default_node_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "cuframes";
  const std::string_view name = std::string_view(host, std::strcspn(host, ".")).substr(0, 64);
  const std::string id = ha_id(name);
  return id == "x" && name != "x" ? "cuframes" : id;  // "x": nothing of the name was left
}

void Parser::mqtt(const YAML::Node& k, const YAML::Node& v, const std::string& key,
                  Config* cfg) const {
  expect_map(k, v, key, "a mapping (host: ..., port: ...)");
  MqttConfig m;
  bool have_host = false, have_port = false, have_user = false, have_password = false;
  YAML::Node password_key;  // where a password without a username is reported
  if (v.IsMap()) {
    each(v, key, kMqttKeys, [&](const std::string& name, const YAML::Node& kk,
                                const YAML::Node& vv, const std::string& dotted) {
      if (name == "host") {
        m.host = std::string(trim(scalar(kk, vv, dotted, "a host name or address")));
        if (m.host.empty()) fail(vv, kk, dotted, "expected a host name or address, got nothing");
        have_host = true;
      } else if (name == "port") {
        m.port = static_cast<int>(integer(kk, vv, dotted, 1, 65535, "a port 1..65535"));
        have_port = true;
      } else if (name == "client_id") {
        m.client_id = std::string(trim(scalar(kk, vv, dotted, "a client id")));
        if (m.client_id.empty() || m.client_id.size() > 64) {
          fail(vv, kk, dotted, "expected a client id of 1..64 characters, got " + got(vv));
        }
      } else if (name == "username") {
        m.username = scalar(kk, vv, dotted, "a user name");
        // The client sends no credentials for an empty user name (and drops the password).
        if (m.username.empty()) fail(vv, kk, dotted, "expected a user name, got ''");
        have_user = true;
      } else if (name == "password") {
        m.password = scalar(kk, vv, dotted, "a password");
        password_key = kk;
        have_password = true;
      } else if (name == "tls") {
        if (vv.IsScalar()) {
          // tls: true is TLS verified against the system's CA store (as tls: {}); false is
          // plain TCP (as no tls at all).
          const std::string v = lower(trim(vv.Scalar()));
          if (v == "true" || v == "yes" || v == "on") {
            m.tls = MqttTlsConfig{};
            return true;
          }
          if (v == "false" || v == "no" || v == "off") {
            m.tls.reset();
            return true;
          }
        }
        expect_map(kk, vv, dotted,
                   "true, false or a mapping (ca_file: ..., cert_file: ..., key_file: ...)");
        MqttTlsConfig t;
        if (vv.IsMap()) {
          each(vv, dotted, kMqttTlsKeys, [&](const std::string& tn, const YAML::Node& tk,
                                             const YAML::Node& tv, const std::string& td) {
            if (tn == "insecure") {
              t.insecure = boolean(tk, tv, td);
              return true;
            }
            // An unknown key is reported as such, whatever its value.
            if (tn != "ca_file" && tn != "cert_file" && tn != "key_file") return false;
            std::string path(trim(scalar(tk, tv, td, "a file path")));
            if (path.empty()) fail(tv, tk, td, "expected a file path, got nothing");
            if (path.front() != '/' && !base_dir_.empty()) path = base_dir_ + "/" + path;
            if (tn == "ca_file") t.ca_file = path;
            else if (tn == "cert_file") t.cert_file = path;
            else t.key_file = path;
            return true;
          });
        }
        if (t.cert_file.empty() != t.key_file.empty()) {
          fail(kk, kk, dotted, "cert_file and key_file go together");
        }
        m.tls = t;
      } else if (name == "keepalive") {
        // MQTT carries it as a 16-bit count of seconds.
        m.keepalive = duration(kk, vv, dotted, Duration{1000}, Duration{65535 * 1000});
      } else if (name == "node_id") {
        // It is part of every Home Assistant id, so it must be one: a-z 0-9, single '_'
        // between words.
        const std::string s(trim(scalar(kk, vv, dotted, "a node id of a-z 0-9 _")));
        bool ok = !s.empty() && s.size() <= 64 && s.front() != '_' && s.back() != '_' &&
                  s.find("__") == std::string::npos;
        for (char c : s) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
        if (!ok) {
          fail(vv, kk, dotted,
               "expected a node id of 1..64 lower-case a-z 0-9 words joined by single '_' "
               "(a Home Assistant id), got " + got(vv));
        }
        m.node_id = s;
      } else if (name == "base_topic") {
        m.base_topic = topic(kk, vv, dotted);
      } else if (name == "stats_interval") {
        m.stats_interval = duration(kk, vv, dotted, Duration{100});
      } else if (name == "discovery") {
        m.discovery = boolean(kk, vv, dotted);
      } else if (name == "discovery_prefix") {
        m.discovery_prefix = topic(kk, vv, dotted);
      } else if (name == "qos") {
        m.qos = static_cast<int>(integer(kk, vv, dotted, 0, 1, "0 or 1"));
      } else if (name == "snapshot_interval") {
        m.snapshot_interval = duration(kk, vv, dotted, Duration{0});
        if (m.snapshot_interval.count() != 0 && m.snapshot_interval < Duration{100}) {
          fail(vv, kk, dotted, "expected 0 (off) or a duration of at least 100ms, got " + got(vv));
        }
      } else if (name == "snapshot_width") {
        m.snapshot_width =
            static_cast<uint32_t>(integer(kk, vv, dotted, 16, 16384, "a width 16..16384"));
      } else {
        return false;
      }
      return true;
    });
  }
  if (!have_host) fail(k, k, key + ".host", "missing: the broker's host is required");
  if (have_password && !have_user) {
    fail(password_key, password_key, key + ".password", "a password needs a username");
  }
  if (!have_port && m.tls) m.port = 8883;
  if (m.node_id.empty()) m.node_id = default_node_id();
  if (m.client_id.empty()) m.client_id = default_client_id(m.node_id);
  if (m.base_topic.empty()) m.base_topic = "cuframes/" + m.node_id;
  cfg->mqtt = m;
}

// http: {listen: "HOST:PORT"}; HOST an address or name, [v6] in brackets.
void Parser::http(const YAML::Node& k, const YAML::Node& v, const std::string& key,
                  Config* cfg) const {
  expect_map(k, v, key, "a mapping (listen: \"127.0.0.1:9900\")");
  HttpConfig h;
  bool have_listen = false;
  if (v.IsMap()) {
    each(v, key, kHttpKeys, [&](const std::string& name, const YAML::Node& kk,
                                const YAML::Node& vv, const std::string& dotted) {
      if (name != "listen") return false;
      const std::string what = "HOST:PORT (e.g. \"127.0.0.1:9900\", \"0.0.0.0:9900\", \"[::1]:9900\")";
      const std::string s(trim(scalar(kk, vv, dotted, what)));
      const size_t colon = s.rfind(':');
      std::string host = colon == std::string::npos ? std::string() : s.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      } else if (host.find(':') != std::string::npos) {
        host.clear();  // an IPv6 address needs its brackets
      }
      uint64_t port = 0;
      const std::string p = colon == std::string::npos ? std::string() : s.substr(colon + 1);
      bool ok = !host.empty() && !p.empty() && p.size() <= 5;
      for (char c : p) ok = ok && c >= '0' && c <= '9';
      if (ok) port = std::stoull(p);
      if (!ok || port < 1 || port > 65535) fail(vv, kk, dotted, "expected " + what + ", got " + got(vv));
      h.listen = s;
      h.host = host;
      h.port = static_cast<int>(port);
      have_listen = true;
      return true;
    });
  }
  if (!have_listen) fail(k, k, key + ".listen", "missing: the address to listen on is required");
  cfg->http = h;
}

void Parser::parse(const YAML::Node& root, Config* cfg) {
  const YAML::Node none;
  if (!root.IsDefined() || root.IsNull()) {
    fail(none, none, "",
         "the file is empty: expected a mapping with a cameras: section (see "
         "docs/configuration.md)");
  }
  if (!root.IsMap()) {
    fail(root, root, "", "expected a mapping of settings at the top level, got " + got(root));
  }

  // defaults: applies to cameras wherever it appears in the file; it is parsed when first
  // needed (at cameras:, or where it stands when that comes first).
  YAML::Node defaults_key, defaults_value;
  bool have_defaults = false;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "defaults") {
      have_defaults = true;
      defaults_key = it->first;
      defaults_value = it->second;
      break;
    }
  }
  CameraConfig base;
  bool defaults_done = false;
  auto parse_defaults = [&]() {
    if (defaults_done) return;
    defaults_done = true;
    if (!have_defaults) return;
    expect_map(defaults_key, defaults_value, "defaults",
               "a mapping of camera settings applied to every camera");
    if (defaults_value.IsNull()) return;
    each(defaults_value, "defaults", camera_key_names(false),
         [&](const std::string& key, const YAML::Node& kk, const YAML::Node& vv,
             const std::string& dotted) {
           if (key == "url" || key == "name") {
             fail(kk, kk, dotted, "'" + key + "' is per camera and cannot be set in defaults:");
           }
           const CameraKey* ck = camera_key(key);
           if (ck == nullptr) return false;
           ck->set(*this, &base, kk, vv, dotted);
           return true;
         });
  };

  bool have_cameras = false;
  each(root, "", kTopKeys,
       [&](const std::string& key, const YAML::Node& k, const YAML::Node& v,
           const std::string& dotted) {
         if (key == "runtime_dir") {
           const std::string s(trim(scalar(k, v, dotted, "an absolute directory path")));
           if (s.empty() || s.front() != '/') {
             fail(v, k, dotted, "expected an absolute directory path, got " + got(v));
           }
           cfg->runtime_dir = s;
         } else if (key == "log") {
           expect_map(k, v, dotted, "a mapping (level: info)");
           if (v.IsMap()) {
             each(v, dotted, kLogKeys,
                  [&](const std::string& lk, const YAML::Node& kk, const YAML::Node& vv,
                      const std::string& ld) {
                    if (lk != "level") return false;
                    cfg->log.level = std::string(kLogLevels[choice(kk, vv, ld, kLogLevels)]);
                    return true;
                  });
           }
         } else if (key == "status_interval") {
           cfg->status_interval = duration(k, v, dotted, Duration{1});
         } else if (key == "mqtt") {
           mqtt(k, v, dotted, cfg);
         } else if (key == "http") {
           http(k, v, dotted, cfg);
         } else if (key == "defaults") {
           parse_defaults();
         } else if (key == "cameras") {
           parse_defaults();
           have_cameras = true;
           if (v.IsNull()) fail(v, k, dotted, "expected at least one camera, got nothing");
           if (!v.IsMap()) {
             fail(v, k, dotted,
                  "expected a mapping of camera name to settings (parking: {url: ...}), got " +
                      got(v));
           }
           if (v.size() == 0) fail(v, k, dotted, "expected at least one camera, got none");
           std::map<std::string, int> seen;
           std::map<std::string, std::string> ids;  // ha_id -> the camera name that has it
           for (auto it = v.begin(); it != v.end(); ++it) {
             const YAML::Node ck = it->first;
             if (!ck.IsScalar()) fail(ck, ck, dotted, "expected a camera name, got " + got(ck));
             const std::string name = ck.Scalar();
             if (!valid_camera_name(name)) {
               fail(ck, ck, dotted + "." + name,
                    "expected a camera name of 1..59 characters A-Z a-z 0-9 . _ -, got " + got(ck));
             }
             const auto [pos, fresh] = seen.emplace(name, ck.Mark().line + 1);
             if (!fresh) {
               fail(ck, ck, dotted + "." + name,
                    "duplicate camera name '" + name + "' (first defined at line " +
                        std::to_string(pos->second) + ")");
             }
             // One id per camera in MQTT topics and Home Assistant (ha_id.h).
             const auto [other, unique] = ids.emplace(ha_id(name), name);
             if (!unique) {
               fail(ck, ck, dotted + "." + name,
                    "cameras '" + other->second + "' and '" + name + "' would share the id '" +
                        other->first + "' in MQTT topics and Home Assistant: rename one");
             }
             camera(name, ck, it->second, base, cfg);
           }
         } else {
           return false;
         }
         return true;
       });
  if (!have_cameras) {
    fail(root, root, "cameras",
         "missing: at least one camera is required (cameras: {name: {url: ...}})");
  }
}

}  // namespace

// --- public API ----------------------------------------------------------------------------------

std::string ConfigError::str() const {
  std::string s = file;
  if (line > 0) {
    s += ":" + std::to_string(line);
    if (column > 0) s += ":" + std::to_string(column);
  }
  if (!s.empty()) s += ": ";
  if (!key.empty()) s += key + ": ";
  s += message;
  return s;
}

bool parse_config(const std::string& text, const std::string& path, Config* out,
                  ConfigError* error) {
  ConfigError scratch;
  ConfigError* err = error ? error : &scratch;
  *err = ConfigError{};
  err->file = path;

  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    if (!e.mark.is_null()) {
      err->line = e.mark.line + 1;
      err->column = e.mark.column + 1;
    }
    err->message = "invalid YAML: " + e.msg;
    return false;
  } catch (const YAML::Exception& e) {
    err->message = std::string("invalid YAML: ") + e.what();
    return false;
  }
  // A trailing "---" makes an empty second document; only real ones count.
  while (docs.size() > 1 && docs.back().IsNull()) docs.pop_back();
  if (docs.size() > 1) {
    const YAML::Mark m = docs[1].Mark();
    if (!m.is_null()) {
      err->line = m.line + 1;
      err->column = m.column + 1;
    }
    err->message = "expected one YAML document, found " + std::to_string(docs.size());
    return false;
  }

  std::string base_dir;
  {
    std::error_code ec;
    const std::filesystem::path abs = std::filesystem::absolute(path.empty() ? "." : path, ec);
    base_dir = ec ? std::filesystem::path(path).parent_path().string()
                  : abs.parent_path().lexically_normal().string();
  }

  Config cfg;
  cfg.path = path;
  try {
    Parser parser(path, base_dir);
    parser.parse(docs.empty() ? YAML::Node() : docs[0], &cfg);
  } catch (const Failure& f) {
    *err = f.error;
    return false;
  } catch (const YAML::Exception& e) {  // not expected: every access is checked
    err->message = std::string("invalid configuration: ") + e.what();
    return false;
  }
  if (out) *out = std::move(cfg);
  return true;
}

namespace {

// What a file that is not a regular one is, for messages.
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "neither a file nor a directory";
}

bool not_regular(mode_t mode, std::string* why) {
  if (S_ISREG(mode)) return false;
  *why = std::string("not a regular file (") + file_kind(mode) + "): a config must be one";
  return true;
}

const std::string kConfigLimit = std::to_string(kMaxConfigBytes >> 20) + " MiB";

bool too_large(uint64_t bytes, std::string* why) {
  if (bytes <= kMaxConfigBytes) return false;
  *why = "the file is " + std::to_string(bytes) + " bytes, larger than the " + kConfigLimit +
         " a config may have";
  return true;
}

// The text of a config file, read safely: a regular file of at most kMaxConfigBytes, opened
// without blocking (a FIFO, a device or a file that grows without end never holds the caller).
bool read_config_file(const std::string& path, std::string* text, std::string* why) {
  // stat before opening: opening a device can do something of its own.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    *why = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  if (not_regular(st.st_mode, why) || too_large(static_cast<uint64_t>(st.st_size), why)) {
    return false;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    *why = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  // What was opened is what counts (the path may have been replaced in between).
  if (::fstat(fd, &st) != 0) {
    *why = std::string("cannot read: ") + std::strerror(errno);
    ::close(fd);
    return false;
  }
  if (not_regular(st.st_mode, why) || too_large(static_cast<uint64_t>(st.st_size), why)) {
    ::close(fd);
    return false;
  }
  text->clear();
  text->reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = std::string("cannot read: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    if (text->size() + static_cast<size_t>(n) > kMaxConfigBytes) {
      *why = "the file grew past the " + kConfigLimit + " a config may have while it was read";
      ::close(fd);
      return false;
    }
    text->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

}  // namespace

bool load_config(const std::string& path, Config* out, ConfigError* error) {
  ConfigError scratch;
  ConfigError* err = error ? error : &scratch;
  try {
    *err = ConfigError{};
    err->file = path;
    std::string text;
    if (!read_config_file(path, &text, &err->message)) return false;
    return parse_config(text, path, out, error);
  } catch (const std::bad_alloc&) {
    *err = ConfigError{};
    err->file = path;
    err->message = "out of memory reading or parsing it";
  } catch (const std::exception& e) {  // not expected: parse_config reports its own errors
    *err = ConfigError{};
    err->file = path;
    err->message = std::string("cannot load it: ") + e.what();
  }
  return false;
}

bool parse_duration(const std::string& str, Duration* out) {
  std::string_view s = trim(str);
  size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  const std::string_view num = s.substr(0, i);
  const std::string_view unit = trim(s.substr(i));
  uint64_t ms_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "m") {
    ms_per_unit = 60000;
  } else if (unit == "h") {
    ms_per_unit = 3600000;
  } else {
    return false;
  }
  uint64_t mantissa = 0, ms = 0;
  int scale = 0;
  if (!parse_decimal(num, &mantissa, &scale) || !scale_exact(mantissa, scale, ms_per_unit, &ms) ||
      ms > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return false;
  }
  *out = Duration{static_cast<int64_t>(ms)};
  return true;
}

bool parse_size(const std::string& str, uint64_t* out) {
  std::string_view s = trim(str);
  size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  const std::string_view num = s.substr(0, i);
  const std::string u = lower(trim(s.substr(i)));
  uint64_t mult = 0;
  if (u.empty() || u == "b") {
    mult = 1;
  } else {
    static const char kPrefixes[] = "kmgt";
    const char* p = u.size() <= 3 ? std::strchr(kPrefixes, u[0]) : nullptr;
    const std::string_view tail = std::string_view(u).substr(1);
    if (!p || !(tail.empty() || tail == "b" || tail == "i" || tail == "ib")) return false;
    mult = uint64_t{1} << (10 * (p - kPrefixes + 1));
  }
  uint64_t mantissa = 0;
  int scale = 0;
  return parse_decimal(num, &mantissa, &scale) && scale_exact(mantissa, scale, mult, out);
}

const char* to_string(MemoryChoice m) {
  switch (m) {
    case MemoryChoice::kAuto:
      return "auto";
    case MemoryChoice::kCuda:
      return cuframes_memory_name(CUFRAMES_MEMORY_CUDA);
    case MemoryChoice::kHost:
      return cuframes_memory_name(CUFRAMES_MEMORY_HOST);
  }
  return "?";
}

const char* to_string(DecoderChoice d) {
  switch (d) {
    case DecoderChoice::kAuto:
      return "auto";
    case DecoderChoice::kNvdec:
      return "nvdec";
    case DecoderChoice::kSoftware:
      return "software";
  }
  return "?";
}

const char* to_string(OutputFormat f) {
  switch (f) {
    case OutputFormat::kAuto:
      return "auto";
    case OutputFormat::kNv12:
      return "nv12";
    case OutputFormat::kP010:
      return "p010";
  }
  return "?";
}

const char* to_string(RingPolicy p) {
  switch (p) {
    case RingPolicy::kDrop:
      return cuframes_policy_name(CUFRAMES_POLICY_DROP);
    case RingPolicy::kStrictWait:
      return cuframes_policy_name(CUFRAMES_POLICY_STRICT_WAIT);
  }
  return "?";
}

}  // namespace cfsvc
