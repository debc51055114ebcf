#include "config_text.h"

#include <algorithm>
#include <cstdio>

namespace cfsvc {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return r;
}

std::string join(const std::vector<std::string_view>& words) {
  std::string r;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) r += ", ";
    r += words[i];
  }
  return r;
}

std::string format_duration(Duration d) {
  const int64_t ms = d.count();
  char buf[64];
  if (ms != 0 && ms % 3600000 == 0) {
    std::snprintf(buf, sizeof buf, "%lldh", static_cast<long long>(ms / 3600000));
  } else if (ms != 0 && ms % 60000 == 0) {
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(ms / 60000));
  } else if (ms >= 1000 && ms % 1000 == 0) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ms / 1000));
  } else if (ms >= 1000) {
    std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(ms) / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  }
  return buf;
}

namespace {

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

}  // namespace

std::string closest(std::string_view word, const std::vector<std::string_view>& known) {
  const std::string w = lower(word);
  size_t best = 3;
  std::string_view found;
  for (std::string_view k : known) {
    const size_t d = edit_distance(w, k);
    if (d < best) {
      best = d;
      found = k;
    }
  }
  if (found.empty() && w.size() >= 3) {
    // "warning" for "warn", "stall" for "stall_timeout": one is the start of the other.
    for (std::string_view k : known) {
      if (k.size() >= 3 && (k.starts_with(w) || std::string_view(w).starts_with(k)))
        return std::string(k);
    }
  }
  return std::string(found);
}

std::string unknown_key_message(const std::string& name,
                                const std::vector<std::string_view>& known) {
  std::string msg = "unknown key '" + name + "'";
  const std::string hint = closest(name, known);
  if (!hint.empty()) return msg + " (did you mean '" + hint + "'?)";
  return msg + " (known keys: " + join(known) + ")";
}

}  // namespace cfsvc
