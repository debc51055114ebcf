#include "config_url.h"

#include <filesystem>
#include <map>
#include <vector>

#include "config_text.h"

namespace cfsvc {

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

bool testsrc_params(std::string_view url, UrlParams* params, std::string* error) {
  static const std::vector<std::string_view> kNames = {"width", "height", "fps"};
  std::string_view q = url.substr(std::min(url.size(), url.find("://") + 3));
  if (!q.empty() && q.front() == '/') q.remove_prefix(1);
  if (!q.empty() && q.front() != '?') {
    *error = "expected testsrc:// or testsrc://?width=W&height=H&fps=F";
    return false;
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
      *error = "unknown testsrc parameter '" + pname + "'";
      const std::string hint = closest(pname, kNames);
      *error += hint.empty() ? " (known: " + join(kNames) + ")" : " (did you mean '" + hint + "'?)";
      return false;
    }
    if (!seen.emplace(pname, true).second) {
      *error = "testsrc parameter '" + pname + "' given twice";
      return false;
    }
    if (pname == "fps") {
      double f = 0;
      if (!parse_fps(pval, &f) || !(f > 0 && f <= 240)) {
        *error = std::string("fps in the URL: expected ") + kFps + ", got '" + pval + "'";
        return false;
      }
      params->fps = f;
    } else {
      int64_t x = 0;
      if (!parse_int(pval, &x) || !dimension_ok(x)) {
        *error = pname + " in the URL: expected " + kDimension + ", got '" + pval + "'";
        return false;
      }
      (pname == "width" ? params->width : params->height) = static_cast<uint32_t>(x);
    }
  }
  return true;
}

std::string parse_url(const Value& v) {
  const std::string what =
      "a URL (rtsp://, rtsps://, http://, https://, file:///path, testsrc://) or a file path";
  const std::string s = v.text(what);
  if (s.empty()) v.fail("expected " + what + ", got ''");

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
      v.fail("expected testsrc:// (with two slashes), got " + Value::got(v.node()));
    }
    std::filesystem::path p(s);
    const std::string& base_dir = v.source().base_dir;
    if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
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
      v.fail("expected testsrc:// or testsrc://?width=W&height=H&fps=F, got " +
             Value::got(v.node()));
    }
    UrlParams params;
    std::string error;
    if (!testsrc_params(normalized, &params, &error)) v.fail(error);
    return normalized;
  }
  if (scheme == "file") {
    if (rest.empty() || rest.front() != '/') {
      v.fail("expected file:///absolute/path, got " + Value::got(v.node()));
    }
    return normalized;
  }
  if (scheme == "rtsp" || scheme == "rtsps" || scheme == "http" || scheme == "https") {
    for (char c : s) {
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
        v.fail("the URL contains whitespace or control characters (percent-encode them)");
      }
    }
    std::string authority = rest.substr(0, rest.find_first_of("/?#"));
    const size_t at = authority.rfind('@');
    if (at != std::string::npos) authority = authority.substr(at + 1);
    if (authority.empty() || authority.front() == ':') {
      v.fail("expected a host after " + scheme + "://, got " + Value::got(v.node()));
    }
    return normalized;
  }
  v.fail("unsupported URL scheme '" + s.substr(0, sep) +
         "' (expected rtsp, rtsps, http, https, file, testsrc or a file path)");
}

}  // namespace cfsvc
