#include "status.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "sized.h"

namespace cuframes::detail {
// The calling thread's last error message (cuframes_last_error).
thread_local std::string t_last_error;

namespace {

std::string vformat(const char* fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  char buf[512];
  int n = std::vsnprintf(buf, sizeof buf, fmt, copy);
  va_end(copy);
  if (n < 0) return fmt;
  if (static_cast<size_t>(n) < sizeof buf) return std::string(buf, n);
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(out.data(), out.size(), fmt, ap);
  out.resize(n);
  return out;
}

}  // namespace

std::string strformat(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vformat(fmt, ap);
  va_end(ap);
  return s;
}

Status Err(cuframes_status_t code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vformat(fmt, ap);
  va_end(ap);
  return Status(code, std::move(s));
}

Status ErrnoErr(cuframes_status_t code, int err, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vformat(fmt, ap);
  va_end(ap);
  s += ": ";
  s += std::strerror(err);
  return Status(code, std::move(s));
}

cuframes_status_t set_last_error(const Status& status) {
  t_last_error = status.message();
  return status.code();
}

void clear_last_error() {
  t_last_error.clear();
}

Status check_struct_size(size_t size, size_t known, const char* name) {
  if (size == 0) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
               "%s.struct_size is 0: fill the struct with its _init() (options) or set "
               "struct_size = sizeof(%s) (stats)",
               name, name);
  }
  if (size < sizeof(size_t)) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s.struct_size %zu is smaller than the field itself",
               name, size);
  }
  if (size > known) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
               "%s.struct_size %zu is larger than this libcuframes knows (%zu): built against a "
               "newer cuframes.h than the library",
               name, size, known);
  }
  return Ok();
}

}  // namespace cuframes::detail

extern "C" const char* cuframes_last_error(void) {
  return cuframes::detail::t_last_error.c_str();
}

extern "C" const char* cuframes_status_name(cuframes_status_t status) {
  switch (status) {
    case CUFRAMES_OK:
      return "OK";
    case CUFRAMES_ERR_PUBLISHER_GONE:
      return "PUBLISHER_GONE";
    case CUFRAMES_ERR_FRAME_TIMEOUT:
      return "FRAME_TIMEOUT";
    case CUFRAMES_ERR_DEVICE_LOST:
      return "DEVICE_LOST";
    case CUFRAMES_ERR_SHM:
      return "SHM";
    case CUFRAMES_ERR_PROTOCOL_MISMATCH:
      return "PROTOCOL_MISMATCH";
    case CUFRAMES_ERR_INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case CUFRAMES_ERR_OUT_OF_MEMORY:
      return "OUT_OF_MEMORY";
    case CUFRAMES_ERR_INTERNAL:
      return "INTERNAL";
    case CUFRAMES_ERR_OVERRUN:
      return "OVERRUN";
    case CUFRAMES_STATUS_MAX_ENUM:
      break;
  }
  return "UNKNOWN";
}
