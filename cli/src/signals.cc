#include "signals.h"

#include <poll.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <system_error>

namespace cli {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal flag must be lock-free");

// The mask to restore inside ppoll(): the thread's mask before the stop signals were blocked.
sigset_t g_wait_mask;
bool g_installed = false;

void on_signal(int) {
  g_stop.store(true, std::memory_order_relaxed);
}

}  // namespace

void install_stop_handlers() {
  if (g_installed) return;
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (int err = ::pthread_sigmask(SIG_BLOCK, &stop_signals, &g_wait_mask); err != 0) {
    throw std::system_error(err, std::generic_category(), "blocking SIGINT and SIGTERM");
  }
  // The signals must be deliverable inside ppoll() even if the caller had them blocked.
  sigdelset(&g_wait_mask, SIGINT);
  sigdelset(&g_wait_mask, SIGTERM);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM}) {
    if (::sigaction(sig, &sa, nullptr) != 0) {
      throw std::system_error(errno, std::generic_category(), "installing the signal handler");
    }
  }
  g_installed = true;
}

bool stop_requested() {
  return g_stop.load(std::memory_order_relaxed);
}

Wake wait_for(int fd, int timeout_ms) {
  if (stop_requested()) return Wake::kStop;
  pollfd p{fd, POLLIN, 0};
  const timespec ts{timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * 1'000'000};
  // With the handler installed, SIGINT and SIGTERM are delivered only during this call.
  const int rc = ::ppoll(&p, fd >= 0 ? 1 : 0, &ts, g_installed ? &g_wait_mask : nullptr);
  if (stop_requested()) return Wake::kStop;
  if (rc < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
  if (rc > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) return Wake::kReadable;
  return Wake::kTimeout;
}

}  // namespace cli
