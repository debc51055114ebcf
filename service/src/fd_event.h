// An eventfd as a wake-up flag: set() from any thread (or a signal handler), fd() for poll.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace cfsvc {

class EventFd {
 public:
  EventFd() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  }
  ~EventFd() { ::close(fd_); }
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;
  int fd() const { return fd_; }
  // Async-signal-safe (errno kept). The counter only saturates (EAGAIN) when already set.
  void set() const {
    const int saved = errno;
    const uint64_t one = 1;
    while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
    errno = saved;
  }
  // Back to unset; unset already (EAGAIN) is fine.
  void clear() const {
    uint64_t v = 0;
    while (::read(fd_, &v, sizeof v) < 0 && errno == EINTR) {
    }
  }

 private:
  int fd_;
};

}  // namespace cfsvc
