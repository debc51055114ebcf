#include "config_values.h"

#include <cstring>
#include <limits>

#include "config_file.h"
#include "config_text.h"
#include "cuframes/cuframes.h"

namespace cfsvc {

// --- numbers -------------------------------------------------------------------------------------

namespace {

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

}  // namespace

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

bool valid_camera_name(std::string_view s) {
  if (s.empty() || s.size() > 59) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
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

// --- enum names: the core's where it has them ----------------------------------------------------

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
    case DecoderChoice::kCuvid:
      return "cuvid";
    case DecoderChoice::kNvcuvid:
      return "nvcuvid";
  }
  return "?";
}

const char* to_string(OutputFormat f) {
  switch (f) {
    case OutputFormat::kAuto:
      return "auto";
    case OutputFormat::kNv12: {  // the core's name ("NV12") in lower case, as config values are
      static const std::string name = lower(cuframes_format_name(CUFRAMES_FORMAT_NV12));
      return name.c_str();
    }
    case OutputFormat::kP010: {
      static const std::string name = lower(cuframes_format_name(CUFRAMES_FORMAT_P010));
      return name.c_str();
    }
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

const char* to_string(RtspTransport t) {
  switch (t) {
    case RtspTransport::kTcp:
      return "tcp";
    case RtspTransport::kUdp:
      return "udp";
  }
  return "?";
}

// --- Value ---------------------------------------------------------------------------------------

void Value::fail_at(const YAML::Node& at, const YAML::Node& fallback, const std::string& key,
                    const std::string& message) const {
  ConfigError e;
  e.file = src_->file;
  YAML::Mark m = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
  if ((!at.IsDefined() || at.IsNull() || m.is_null()) && fallback.IsDefined()) m = fallback.Mark();
  if (!m.is_null() && m.line >= 0) {
    e.line = m.line + 1;
    e.column = m.column + 1;
  }
  e.key = key;
  e.message = message;
  throw Failure{std::move(e)};
}

std::string Value::got(const YAML::Node& v) {
  if (!v.IsDefined() || v.IsNull()) return "nothing";
  if (v.IsSequence()) return "a list";
  if (v.IsMap()) return "a mapping";
  std::string s = v.Scalar();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return "'" + s + "'";
}

std::string Value::scalar(const std::string& what) const {
  if (!v_.IsScalar()) expected(what);
  return v_.Scalar();
}

std::string Value::text(const std::string& what) const {
  return std::string(trim(scalar(what)));
}

bool Value::mapping(const std::string& what) const {
  if (v_.IsNull()) return false;
  if (!v_.IsMap()) expected(what);
  return true;
}

int64_t Value::integer(int64_t lo, int64_t hi, const std::string& what) const {
  int64_t x = 0;
  if (!parse_int(scalar(what), &x) || x < lo || x > hi) expected(what);
  return x;
}

bool Value::boolean() const {
  const std::string s = lower(text("true or false"));
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  expected("true or false");
}

size_t Value::choice(const std::vector<std::string_view>& names) const {
  const std::string what = "one of " + join(names);
  const std::string s = lower(text(what));
  for (size_t i = 0; i < names.size(); ++i) {
    if (s == names[i]) return i;
  }
  std::string msg = "expected " + what + ", got " + got(v_);
  const std::string hint = closest(s, names);
  if (!hint.empty()) msg += " (did you mean '" + hint + "'?)";
  fail(msg);
}

Duration Value::duration(Duration lo, Duration hi) const {
  const std::string what = "a duration " + format_duration(lo) + ".." + format_duration(hi) +
                           " (e.g. 5s, 250ms, 1.5s, 2m)";
  Duration d{};
  if (!parse_duration(scalar(what), &d) || d < lo || d > hi) expected(what);
  return d;
}

uint64_t Value::packet_ring() const {
  const std::string what = "a size 64KiB..1GiB (e.g. 8MiB), or 0/off for none";
  const std::string s = lower(text(what));
  if (s == "off" || s == "false" || s == "no" || s == "none") return 0;
  uint64_t n = 0;
  if (!parse_size(s, &n) || (n != 0 && (n < (64u << 10) || n > (1u << 30)))) expected(what);
  return n;
}

uint32_t Value::dimension() const {
  int64_t x = 0;
  if (!parse_int(scalar(kDimension), &x) || !dimension_ok(x)) expected(kDimension);
  return static_cast<uint32_t>(x);
}

double Value::fps() const {
  double f = 0;
  if (!parse_fps(scalar(kFps), &f) || !(f > 0 && f <= 240)) expected(kFps);
  return f;
}

std::string Value::topic() const {
  const std::string what = "an MQTT topic without wildcards (e.g. cuframes/nvr)";
  const std::string s = text(what);
  bool ok = !s.empty() && s.front() != '/' && s.back() != '/' && s.find("//") == std::string::npos;
  for (char c : s) {
    // Printable ASCII, whether char is signed or not.
    const auto u = static_cast<unsigned char>(c);
    ok = ok && c != '+' && c != '#' && u > 0x20 && u < 0x7f;
  }
  if (!ok) expected(what);
  return s;
}

std::string Value::node_id() const {
  // It is part of every Home Assistant id, so it must be one: a-z 0-9, single '_' between words.
  const std::string s = text("a node id of a-z 0-9 _");
  bool ok = !s.empty() && s.size() <= 64 && s.front() != '_' && s.back() != '_' &&
            s.find("__") == std::string::npos;
  for (char c : s) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  if (!ok) {
    expected(
        "a node id of 1..64 lower-case a-z 0-9 words joined by single '_' (a Home Assistant id)");
  }
  return s;
}

std::string Value::file_path() const {
  std::string path = text("a file path");
  if (path.empty()) fail("expected a file path, got nothing");
  if (path.front() != '/' && !src_->base_dir.empty()) path = src_->base_dir + "/" + path;
  // A missing file is the reader's business at run time (a mount may come later); a FIFO or a
  // device is refused now, as for the config file itself.
  std::string why;
  if (!regular_or_missing(path, &why)) fail(path + ": " + why + ": a file path must name a file");
  return path;
}

}  // namespace cfsvc
