// The names of the memory, policy and mode enums (cuframes.h): the one place the CLI, the
// service (status file, MQTT) and the Python package take them from.
#include "cuframes/cuframes.h"

extern "C" const char* cuframes_memory_name(cuframes_memory_t memory) {
  switch (memory) {
    case CUFRAMES_MEMORY_HOST: return "host";
    case CUFRAMES_MEMORY_CUDA: return "cuda";
    case CUFRAMES_MEMORY_MAX_ENUM: break;
  }
  return "invalid";
}

extern "C" const char* cuframes_policy_name(cuframes_policy_t policy) {
  switch (policy) {
    case CUFRAMES_POLICY_DROP: return "drop";
    case CUFRAMES_POLICY_STRICT_WAIT: return "strict_wait";
    case CUFRAMES_POLICY_MAX_ENUM: break;
  }
  return "invalid";
}

extern "C" const char* cuframes_mode_name(cuframes_mode_t mode) {
  switch (mode) {
    case CUFRAMES_MODE_NEWEST_ONLY: return "newest_only";
    case CUFRAMES_MODE_STRICT_ORDER: return "strict_order";
    case CUFRAMES_MODE_MAX_ENUM: break;
  }
  return "invalid";
}
