// Library logging: routed to the handler set by cuframes_set_log_handler (stderr by default).
#pragma once

#include "cuframes/cuframes.h"

namespace cuframes::detail {

bool log_enabled(cuframes_log_level_t level);
void log(cuframes_log_level_t level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace cuframes::detail
