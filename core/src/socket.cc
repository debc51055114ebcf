#include "socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "clock.h"

namespace cuframes::detail {
namespace {

// sockaddr_un for path. Paths longer than sun_path go through /proc/self/fd/<dirfd>/<name>;
// *dirfd keeps that directory open until the caller is done with the address.
Status make_addr(const std::string& path, sockaddr_un* addr, UniqueFd* dirfd) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  std::string target = path;
  if (target.size() >= sizeof addr->sun_path) {
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    dirfd->reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd->valid()) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "opening %s", dir.c_str());
    target = "/proc/self/fd/" + std::to_string(dirfd->get()) + "/" + path.substr(slash + 1);
    if (target.size() >= sizeof addr->sun_path) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "socket name too long: %s", path.c_str());
    }
  }
  std::memcpy(addr->sun_path, target.c_str(), target.size() + 1);
  return Ok();
}

}  // namespace

Status listen_unix(const std::string& path, UniqueFd* out, ino_t* ino) {
  UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.valid()) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "socket");
  sockaddr_un addr;
  UniqueFd dirfd;
  CUFRAMES_RETURN_IF_ERROR(make_addr(path, &addr, &dirfd));
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoErr(CUFRAMES_ERR_SHM, errno, "bind %s", path.c_str());
  }
  // Group members may connect (the umask usually forbids it). chmod follows symlinks, so first
  // make sure the name still is the socket we just bound.
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid()) {
    return Err(CUFRAMES_ERR_SHM, "%s changed under us after bind", path.c_str());
  }
  ::chmod(path.c_str(), 0660);
  if (ino) *ino = st.st_ino;
  if (::listen(s.get(), 64) != 0)
    return ErrnoErr(CUFRAMES_ERR_SHM, errno, "listen %s", path.c_str());
  *out = std::move(s);
  return Ok();
}

Status connect_unix(const std::string& path, UniqueFd* out, bool* retry) {
  *retry = false;
  // Non-blocking: a frozen publisher's full backlog must not block us past our timeout.
  UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.valid()) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "socket");
  sockaddr_un addr;
  UniqueFd dirfd;
  CUFRAMES_RETURN_IF_ERROR(make_addr(path, &addr, &dirfd));
  int rc;
  do {
    rc = ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    *retry = err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
    return ErrnoErr(CUFRAMES_ERR_SHM, err, "connect %s", path.c_str());
  }
  *out = std::move(s);
  return Ok();
}

Status send_message(int fd, const void* data, size_t len, const int* fds, size_t nfds) {
  if (nfds > kMaxFdsPerMessage) return Err(CUFRAMES_ERR_INTERNAL, "too many fds in one message");
  iovec iov{const_cast<void*>(data), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "sendmsg");
  if (static_cast<size_t>(n) != len) return Err(CUFRAMES_ERR_SHM, "sendmsg: short write");
  return Ok();
}

Status recv_message(int fd, void* buf, size_t cap, size_t* len, std::vector<UniqueFd>* fds,
                    RecvResult* result) {
  iovec iov{buf, cap};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      *result = RecvResult::kWouldBlock;
      return Ok();
    }
    if (errno == ECONNRESET) {
      *result = RecvResult::kClosed;
      return Ok();
    }
    return ErrnoErr(CUFRAMES_ERR_SHM, errno, "recvmsg");
  }
  // Whatever fds came along are owned now: hand them out or close them.
  std::vector<UniqueFd> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int f;
      std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
      got.emplace_back(f);
    }
  }
  if (fds != nullptr) *fds = std::move(got);
  if (n == 0) {
    // SOCK_SEQPACKET: a zero-length read is the peer's hang-up.
    *result = RecvResult::kClosed;
    return Ok();
  }
  if (msg.msg_flags & MSG_CTRUNC) return Err(CUFRAMES_ERR_SHM, "peer sent too many fds");
  *len = static_cast<size_t>(n);
  *result = RecvResult::kMessage;
  return Ok();
}

Status poll_in(int fd, int timeout_ms, short* revents) {
  const int64_t deadline = deadline_after(timeout_ms);
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int wait = deadline == INT64_MAX ? -1 : ms_until(deadline);
    int rc = ::poll(&p, 1, wait);
    if (rc > 0) {
      *revents = p.revents;
      return Ok();
    }
    if (rc == 0) {
      *revents = 0;
      return Ok();
    }
    if (errno != EINTR) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "poll");
  }
}

}  // namespace cuframes::detail
