// UniqueFd: a move-only owner of a file descriptor, closed on destruction; and the two
// operations on the private nonblocking eventfds that wake the library's threads.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

namespace cuframes::detail {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Wakes the poller of an eventfd made with EFD_NONBLOCK (adds 1 to its counter). true when it is
// signalled, also when the counter was already at its maximum (EAGAIN); false on another error
// (errno set: a bad descriptor, a bug of the caller's).
inline bool eventfd_signal(int fd) {
  const uint64_t one = 1;
  for (;;) {
    if (::write(fd, &one, sizeof one) == static_cast<ssize_t>(sizeof one)) return true;
    if (errno != EINTR) return errno == EAGAIN;
  }
}

// Resets an EFD_NONBLOCK eventfd's counter to 0. true when it is 0 now, also when it was
// (EAGAIN); false on another error (errno set).
inline bool eventfd_drain(int fd) {
  uint64_t count = 0;
  for (;;) {
    if (::read(fd, &count, sizeof count) == static_cast<ssize_t>(sizeof count)) return true;
    if (errno != EINTR) return errno == EAGAIN;
  }
}

}  // namespace cuframes::detail
