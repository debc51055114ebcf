// An eventfd as a wake-up flag: set() from any thread (or a signal handler), fd() for poll.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace cfsvc {

class EventFd {
 public:
  EventFd() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~EventFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;
  int fd() const { return fd_; }
  // Async-signal-safe.
  void set() const {
    uint64_t one = 1;
    (void)!::write(fd_, &one, sizeof one);
  }
  void clear() const {
    uint64_t v;
    (void)!::read(fd_, &v, sizeof v);
  }

 private:
  int fd_;
};

}  // namespace cfsvc
