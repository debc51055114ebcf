// cuframes-service configuration: YAML (yaml-cpp 0.7 and 0.8) -> Config, validating every key
// and stopping at the first problem with its file:line:column and dotted key. The schema is in
// config_schema.cc (one table per section), the value parsers in config_values.cc, the URL
// checks in config_url.cc, the did-you-mean in config_text.cc, the safe file reader in
// config_file.cc.
#include "config.h"

#include <filesystem>
#include <new>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config_file.h"
#include "config_schema.h"

namespace cfsvc {

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

  Source src;
  src.file = path;
  {
    std::error_code ec;
    const std::filesystem::path abs = std::filesystem::absolute(path.empty() ? "." : path, ec);
    src.base_dir = ec ? std::filesystem::path(path).parent_path().string()
                      : abs.parent_path().lexically_normal().string();
  }

  Config cfg;
  cfg.path = path;
  try {
    parse_document(docs.empty() ? YAML::Node() : docs[0], src, &cfg);
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

}  // namespace cfsvc
