// Text helpers of the config parser: trimming, case, durations for messages, and the
// "did you mean ...?" suggestions of unknown keys and choices.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config.h"

namespace cfsvc {

std::string_view trim(std::string_view s);                     // spaces and tabs at both ends
std::string lower(std::string_view s);                         // ASCII only
std::string join(const std::vector<std::string_view>& words);  // "a, b, c"

// "5s", "1.5s", "250ms", "2m", "1h" for messages.
std::string format_duration(Duration d);

// The known word closest to `word` within edit distance 2 (case-insensitive), or one that starts
// the same way (at least 3 characters); "" when none is close.
std::string closest(std::string_view word, const std::vector<std::string_view>& known);

// "unknown key 'x' (did you mean 'y'?)", or "... (known keys: a, b, c)" when nothing is close.
std::string unknown_key_message(const std::string& name,
                                const std::vector<std::string_view>& known);

}  // namespace cfsvc
