// The names of the memory, policy, mode and codec enums (cuframes.h): the one place the CLI, the
// service (status file, MQTT) and the Python package take them from, and the one list of each
// enum's values (known_*, enums.h). Values are switched on as their bits (raw_enum): a C caller's
// out-of-range value is never loaded as the enum.
#include "cuframes/cuframes.h"
#include "enums.h"

namespace cuframes::detail {
namespace {

const char* memory_name(uint32_t v) {
  switch (v) {
    case CUFRAMES_MEMORY_HOST:
      return "host";
    case CUFRAMES_MEMORY_CUDA:
      return "cuda";
  }
  return nullptr;
}

const char* policy_name(uint32_t v) {
  switch (v) {
    case CUFRAMES_POLICY_DROP:
      return "drop";
    case CUFRAMES_POLICY_STRICT_WAIT:
      return "strict_wait";
  }
  return nullptr;
}

const char* mode_name(uint32_t v) {
  switch (v) {
    case CUFRAMES_MODE_NEWEST_ONLY:
      return "newest_only";
    case CUFRAMES_MODE_STRICT_ORDER:
      return "strict_order";
  }
  return nullptr;
}

const char* codec_name(uint32_t v) {
  switch (v) {
    case CUFRAMES_CODEC_UNKNOWN:
      return "unknown";
    case CUFRAMES_CODEC_H264:
      return "h264";
    case CUFRAMES_CODEC_HEVC:
      return "hevc";
    case CUFRAMES_CODEC_AV1:
      return "av1";
    case CUFRAMES_CODEC_VP9:
      return "vp9";
    case CUFRAMES_CODEC_MJPEG:
      return "mjpeg";
  }
  return nullptr;
}

}  // namespace

bool known_memory(uint32_t raw) {
  return memory_name(raw) != nullptr;
}
bool known_policy(uint32_t raw) {
  return policy_name(raw) != nullptr;
}
bool known_mode(uint32_t raw) {
  return mode_name(raw) != nullptr;
}
bool known_codec(uint32_t raw) {
  return codec_name(raw) != nullptr;
}

}  // namespace cuframes::detail

using cuframes::detail::raw_enum;

extern "C" const char* cuframes_memory_name(cuframes_memory_t memory) {
  const char* n = cuframes::detail::memory_name(raw_enum(memory));
  return n != nullptr ? n : "invalid";
}

extern "C" const char* cuframes_policy_name(cuframes_policy_t policy) {
  const char* n = cuframes::detail::policy_name(raw_enum(policy));
  return n != nullptr ? n : "invalid";
}

extern "C" const char* cuframes_mode_name(cuframes_mode_t mode) {
  const char* n = cuframes::detail::mode_name(raw_enum(mode));
  return n != nullptr ? n : "invalid";
}

extern "C" const char* cuframes_codec_name(cuframes_codec_t codec) {
  const char* n = cuframes::detail::codec_name(raw_enum(codec));
  return n != nullptr ? n : "unknown";
}
