// Shared by the config parser's tests (config_*_test.cc): parse-or-fail helpers, the error
// assertion, a temporary directory.
#pragma once
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

namespace cfsvc::config_test {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Raw strings start with a newline for readability; line 1 is the line after R"(.
inline std::string Y(const char* s) {
  return std::string(s[0] == '\n' ? s + 1 : s);
}

inline Config MustParse(const std::string& text, const std::string& path = "test.yaml") {
  Config cfg;
  ConfigError err;
  EXPECT_TRUE(parse_config(text, path, &cfg, &err)) << err.str();
  return cfg;
}

inline ConfigError MustFail(const std::string& text, const std::string& path = "test.yaml") {
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

inline std::string ReadFile(const std::string& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace cfsvc::config_test
