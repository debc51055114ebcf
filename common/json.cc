#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace cfcommon {

std::string dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json fixed(double v, int decimals) {
  if (!std::isfinite(v)) return nullptr;
  if (decimals <= 0) return static_cast<int64_t>(std::llround(v));
  const double scale = std::pow(10.0, decimals);
  return std::round(v * scale) / scale;
}

Json significant(std::optional<double> v, int digits) {
  if (!v || !std::isfinite(*v)) return nullptr;
  // Through the decimal text, so that the shortest form nlohmann prints has those digits only.
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", digits, *v);
  return std::strtod(buf, nullptr);
}

}  // namespace cfcommon
