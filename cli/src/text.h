// Plain-text presentation: human units and aligned tables.
#ifndef CUFRAMES_CLI_TEXT_H_
#define CUFRAMES_CLI_TEXT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cli {

// printf into a std::string.
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// A duration: "850 ns", "12.3 us", "4.56 ms", "2.50 s", "3m05s", "2h07m".
std::string human_duration(int64_t ns);
// An fps value with one decimal, "-" when unknown.
std::string human_fps(std::optional<double> fps);

// Columns aligned on the widest cell; the first `left_columns` are left-aligned, the others
// right-aligned (numbers).
class Table {
 public:
  Table(std::vector<std::string> header, size_t left_columns);
  void add(std::vector<std::string> row);
  std::string render(const std::string& indent = "") const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  size_t left_;
};

}  // namespace cli

#endif  // CUFRAMES_CLI_TEXT_H_
