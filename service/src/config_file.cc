#include "config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "config.h"

namespace cfsvc {
namespace {

// What a file that is not a regular one is, for messages.
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "neither a file nor a directory";
}

std::string not_regular_file(mode_t mode) {
  return std::string("not a regular file (") + file_kind(mode) + ")";
}

bool not_regular(mode_t mode, std::string* why) {
  if (S_ISREG(mode)) return false;
  *why = not_regular_file(mode) + ": a config must be one";
  return true;
}

const std::string kConfigLimit = std::to_string(kMaxConfigBytes >> 20) + " MiB";

bool too_large(uint64_t bytes, std::string* why) {
  if (bytes <= kMaxConfigBytes) return false;
  *why = "the file is " + std::to_string(bytes) + " bytes, larger than the " + kConfigLimit +
         " a config may have";
  return true;
}

}  // namespace

bool read_config_file(const std::string& path, std::string* text, std::string* why) {
  // stat before opening: opening a device can do something of its own.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    *why = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  if (not_regular(st.st_mode, why) || too_large(static_cast<uint64_t>(st.st_size), why)) {
    return false;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    *why = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  // What was opened is what counts (the path may have been replaced in between).
  if (::fstat(fd, &st) != 0) {
    *why = std::string("cannot read: ") + std::strerror(errno);
    ::close(fd);
    return false;
  }
  if (not_regular(st.st_mode, why) || too_large(static_cast<uint64_t>(st.st_size), why)) {
    ::close(fd);
    return false;
  }
  text->clear();
  text->reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = std::string("cannot read: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    if (text->size() + static_cast<size_t>(n) > kMaxConfigBytes) {
      *why = "the file grew past the " + kConfigLimit + " a config may have while it was read";
      ::close(fd);
      return false;
    }
    text->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool regular_or_missing(const std::string& path, std::string* why) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return true;  // missing or unreadable: the reader says so
  if (S_ISREG(st.st_mode)) return true;
  *why = not_regular_file(st.st_mode);
  return false;
}

}  // namespace cfsvc
