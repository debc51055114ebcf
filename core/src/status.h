// Status: an error code plus a message, returned by value through the internals. The C ABI turns
// it into the per-thread last-error message (set_last_error). One place maps codes to names.
#pragma once

#include <string>
#include <utility>

#include "cuframes/cuframes.h"

namespace cuframes::detail {

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(cuframes_status_t code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == CUFRAMES_OK; }
  cuframes_status_t code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes the message with context ("subscribe 'cam-x': ...").
  Status context(const std::string& prefix) && {
    if (!ok()) message_ = prefix + ": " + message_;
    return std::move(*this);
  }

 private:
  cuframes_status_t code_ = CUFRAMES_OK;
  std::string message_;
};

inline Status Ok() {
  return {};
}
// printf-style error.
Status Err(cuframes_status_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// "<what>: <strerror(err)>".
Status ErrnoErr(cuframes_status_t code, int err, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
std::string strformat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Stores the message as the calling thread's last error and returns the code.
cuframes_status_t set_last_error(const Status& status);
void clear_last_error();

#define CUFRAMES_RETURN_IF_ERROR(expr)       \
  do {                                       \
    ::cuframes::detail::Status _st = (expr); \
    if (!_st.ok()) return _st;               \
  } while (0)

}  // namespace cuframes::detail
