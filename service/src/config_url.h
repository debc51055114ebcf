// Camera URLs: rtsp://, rtsps://, http(s)://, file:///path or a bare path, testsrc://?... The
// checks of the config, and what kind of camera a URL makes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config_values.h"

namespace cfsvc {

// The kinds of camera, by their url; some camera keys apply to some kinds only.
enum UrlKind : unsigned { kNetwork = 1, kFile = 2, kTestsrc = 4, kAnyUrl = 7 };

// What a url is, as parse_url() decides it (for a valid one).
UrlKind url_kind(std::string_view url);

// Validates a camera URL; returns the URL to store: the scheme lower case, a bare relative path
// made absolute against the config file's directory.
std::string parse_url(const Value& v);

// Settings a testsrc:// URL carries in its query string.
struct UrlParams {
  std::optional<uint32_t> width, height;
  std::optional<double> fps;
};

// The parameters of a testsrc:// URL (as parse_url() stored it). False with *error (the
// message of the config error) for an unknown, repeated or bad one.
bool testsrc_params(std::string_view url, UrlParams* params, std::string* error);

}  // namespace cfsvc
