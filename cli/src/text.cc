#include "text.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace cli {

std::string strf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string s(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(s.data(), s.size() + 1, fmt, ap2);
  va_end(ap2);
  return s;
}

std::string human_duration(int64_t ns) {
  if (ns < 0) return "-" + human_duration(-ns);
  const double d = static_cast<double>(ns);
  if (ns < 1000) return strf("%lld ns", static_cast<long long>(ns));
  if (ns < 1000000) return strf("%.1f us", d / 1e3);
  if (ns < 1000000000) return strf("%.2f ms", d / 1e6);
  if (ns < 60 * 1000000000LL) return strf("%.2f s", d / 1e9);
  const long long s = ns / 1000000000LL;
  if (s < 3600) return strf("%lldm%02llds", s / 60, s % 60);
  if (s < 86400) return strf("%lldh%02lldm", s / 3600, s % 3600 / 60);
  return strf("%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

std::string human_fps(std::optional<double> fps) {
  return fps ? strf("%.1f", *fps) : "-";
}

Table::Table(std::vector<std::string> header, size_t left_columns)
    : header_(std::move(header)), left_(left_columns) {}

void Table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

std::string Table::render(const std::string& indent) const {
  std::vector<size_t> width(header_.size());
  for (size_t c = 0; c < header_.size(); ++c) {
    width[c] = header_[c].size();
    for (const auto& r : rows_) width[c] = std::max(width[c], r[c].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l = indent;
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string pad(width[c] - cells[c].size(), ' ');
      if (c > 0) l += "  ";
      l += c < left_ ? cells[c] + pad : pad + cells[c];
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + '\n';
  };
  line(header_);
  for (const auto& r : rows_) line(r);
  return out;
}

}  // namespace cli
