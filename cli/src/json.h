// A small JSON writer for --json output: values are appended in order, commas and escaping are
// handled here.
#ifndef CUFRAMES_CLI_JSON_H_
#define CUFRAMES_CLI_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cli {

class Json {
 public:
  Json& begin_object();
  Json& end_object();
  Json& begin_array();
  Json& end_array();
  // The key of the next value (inside an object).
  Json& key(std::string_view k);

  Json& str(std::string_view v);
  Json& num(int64_t v);
  Json& num(uint64_t v);
  Json& num(int32_t v) { return num(static_cast<int64_t>(v)); }
  Json& num(uint32_t v) { return num(static_cast<uint64_t>(v)); }
  Json& num(double v);  // non-finite values are written as null
  Json& num(std::optional<double> v) { return v ? num(*v) : null(); }
  Json& boolean(bool v);
  Json& null();

  const std::string& text() const { return out_; }

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

}  // namespace cli

#endif  // CUFRAMES_CLI_JSON_H_
