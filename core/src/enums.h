// The C ABI's enums as a caller hands them in. A C caller may put any 32-bit value in an enum
// field or argument, which C++ must not load as the enum type before it is checked (undefined
// behaviour: UBSan's enum check). So every enum read from a caller is first read as its bits
// (raw_enum) and checked with the known_* below; only then is it loaded as the enum.
#pragma once

#include <cstdint>
#include <cstring>

namespace cuframes::detail {

// The bits of an enum field or argument as the caller wrote them.
template <typename E>
uint32_t raw_enum(const E& e) {
  static_assert(sizeof(E) == sizeof(uint32_t), "the C ABI's enums are 32 bits");
  uint32_t v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

// Whether a raw value is one of the enum's values. Each answers from the one list of the enum's
// values, where its names are: geometry.cc (format), names.cc (memory, policy, mode, codec),
// preprocess.cc (dtype, layout, channels, resize), color.cc (matrix, range).
bool known_format(uint32_t raw);
bool known_memory(uint32_t raw);
bool known_policy(uint32_t raw);
bool known_mode(uint32_t raw);
bool known_codec(uint32_t raw);

}  // namespace cuframes::detail
