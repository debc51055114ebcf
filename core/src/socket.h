// Unix SOCK_SEQPACKET sockets: listening, connecting, and messages carrying fds (SCM_RIGHTS).
// Every socket here is close-on-exec; sends never raise SIGPIPE.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "fd.h"
#include "status.h"

namespace cuframes::detail {

constexpr size_t kMaxFdsPerMessage = 8;

// Binds and listens at path (which must not exist), mode 0660, non-blocking. *ino (optional)
// gets the socket file's inode.
Status listen_unix(const std::string& path, UniqueFd* out, ino_t* ino = nullptr);

// Connects to path (the socket is non-blocking). *retry is set (and SHM returned) when it is
// worth trying again later: nobody listens there (missing or stale socket) or the listener's
// backlog is full.
Status connect_unix(const std::string& path, UniqueFd* out, bool* retry);

// Sends one message with up to kMaxFdsPerMessage fds. Blocks unless the socket is non-blocking.
Status send_message(int fd, const void* data, size_t len, const int* fds, size_t nfds);

enum class RecvResult { kMessage, kWouldBlock, kClosed };
// Receives one message (non-blocking). Truncated messages keep their first cap bytes (*len is
// the full length). Fds that arrive are returned in *fds when fds != nullptr, else closed.
Status recv_message(int fd, void* buf, size_t cap, size_t* len, std::vector<UniqueFd>* fds,
                    RecvResult* result);

// poll() one fd for input with a millisecond timeout (-1 forever), retrying on EINTR with the
// remaining time. Returns the revents (0 on timeout).
Status poll_in(int fd, int timeout_ms, short* revents);

}  // namespace cuframes::detail
