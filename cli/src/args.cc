#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "errors.h"

namespace cli {

std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

Args::Args(int argc, char** argv, int first, std::span<const OptionSpec> specs) {
  bool options_done = false;
  for (int i = first; i < argc; ++i) {
    std::string word = argv[i];
    if (options_done || word.size() < 2 || word[0] != '-') {
      positionals_.push_back(word);
      continue;
    }
    if (word == "--") {
      options_done = true;
      continue;
    }
    std::string name = word;
    std::optional<std::string> inline_value;
    if (size_t eq = word.find('='); eq != std::string::npos) {
      name = word.substr(0, eq);
      inline_value = word.substr(eq + 1);
    }
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& s : specs) {
      if (name == s.name) spec = &s;
    }
    if (spec == nullptr) throw UsageError("unknown option '" + name + "'");
    std::optional<std::string> value;
    switch (spec->kind) {
      case OptionSpec::kFlag:
        if (inline_value) throw UsageError("option " + name + " takes no value");
        break;
      case OptionSpec::kValue:
        if (inline_value) {
          value = inline_value;
        } else if (i + 1 < argc) {
          value = argv[++i];
        } else {
          throw UsageError("option " + name + " needs a value");
        }
        break;
      case OptionSpec::kOptionalNumber:
        if (inline_value) {
          value = inline_value;
        } else if (i + 1 < argc && parse_number(argv[i + 1])) {
          value = argv[++i];
        }
        break;
    }
    options_[name] = value;
  }
}

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = options_.find(name);
  return it == options_.end() ? std::nullopt : it->second;
}

double Args::number(const std::string& name, double fallback, double min, double max) const {
  std::optional<std::string> v = value(name);
  if (!v) return fallback;
  std::optional<double> d = parse_number(*v);
  if (!d || *d < min || *d > max) {
    char range[64];
    std::snprintf(range, sizeof range, "%g to %g", min, max);
    throw UsageError("option " + name + ": '" + *v + "' is not a number from " + range);
  }
  return *d;
}

long long Args::integer(const std::string& name, long long fallback, long long min,
                        long long max) const {
  std::optional<std::string> v = value(name);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || errno != 0 || end != v->c_str() + v->size() || n < min || n > max) {
    throw UsageError("option " + name + ": '" + *v + "' is not a whole number from " +
                     std::to_string(min) + " to " + std::to_string(max));
  }
  return n;
}

void Args::expect_positionals(size_t count, const char* what) const {
  if (positionals_.size() < count) throw UsageError(std::string("missing ") + what);
  if (positionals_.size() > count) {
    throw UsageError("unexpected argument '" + positionals_[count] + "'");
  }
}

}  // namespace cli
