// JSON documents of the CLI (--json) and the service (status file, MQTT payloads, HTTP):
// nlohmann::json, with object keys in the order they are set (the documented order), and the two
// number formats they print. Not installed.
#ifndef CUFRAMES_COMMON_JSON_H_
#define CUFRAMES_COMMON_JSON_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace cfcommon {

using Json = nlohmann::ordered_json;

// Compact, one line; bytes that are not UTF-8 (a subscriber's name is any bytes) become U+FFFD
// rather than failing.
std::string dump(const Json& j);

// `v` rounded to `decimals` places, as the service prints rates and times (29.97, 3600.2; a
// whole number keeps one place: 30.0); with 0 decimals an integer (1234). Not finite: null.
Json fixed(double v, int decimals);

// `v` to `digits` significant digits, as the CLI prints measurements (1.70117, 37.3692; a whole
// number as 30.0). nullopt or not finite: null.
Json significant(std::optional<double> v, int digits = 6);

}  // namespace cfcommon

#endif  // CUFRAMES_COMMON_JSON_H_
