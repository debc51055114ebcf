#include "bench_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

extern char** environ;

namespace bench {
namespace {

int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr size_t kSaidCap = 4096;  // per child, for the post-mortem

}  // namespace

Child spawn_self(const std::vector<std::string>& args_in, int fd3) {
  int fds[2];
  // O_CLOEXEC: later children do not inherit this one's pipe (dup2 onto fd 1 clears it there).
  if (pipe2(fds, O_CLOEXEC) != 0) std::exit(1);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  if (fd3 >= 0) posix_spawn_file_actions_adddup2(&fa, fd3, 3);
  std::string self = "/proc/self/exe";
  std::vector<std::string> args = {"cuframes_bench"};
  args.insert(args.end(), args_in.begin(), args_in.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Child c;
  if (posix_spawn(&c.pid, self.c_str(), &fa, nullptr, argv.data(), environ) != 0) std::exit(1);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  c.fd = fds[0];
  return c;
}

std::string read_line(Child& c, int timeout_ms, bool* timed_out) {
  if (timed_out != nullptr) *timed_out = false;
  const int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
  for (;;) {
    const size_t nl = c.buf.find('\n');
    if (nl != std::string::npos) {
      std::string line = c.buf.substr(0, nl);
      c.buf.erase(0, nl + 1);
      if (c.said.size() < kSaidCap) c.said += line.substr(0, 120) + " | ";
      return line;
    }
    if (c.fd < 0) break;
    int wait = -1;
    if (deadline >= 0) {
      wait = static_cast<int>(deadline - mono_ms());
      if (wait <= 0) {
        if (timed_out != nullptr) *timed_out = true;
        return {};
      }
    }
    pollfd p{c.fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, wait);
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) continue;  // the deadline, checked above
    char chunk[65536];
    const ssize_t n = ::read(c.fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // EOF: whatever is left is the last line
      close(c.fd);
      c.fd = -1;
      break;
    }
    c.buf.append(chunk, static_cast<size_t>(n));
  }
  std::string rest;
  rest.swap(c.buf);
  if (!rest.empty() && c.said.size() < kSaidCap) c.said += rest.substr(0, 120) + " | ";
  return rest;
}

void reap(Child& c, bool drain) {
  if (drain) {
    const int64_t until = mono_ms() + 200;
    while (c.fd >= 0) {
      bool timed_out = false;
      read_line(c, static_cast<int>(std::max<int64_t>(0, until - mono_ms())), &timed_out);
      if (timed_out) break;
    }
  }
  if (c.pid > 0) {
    if (waitpid(c.pid, &c.wait_status, WNOHANG) != c.pid) {
      kill(c.pid, SIGKILL);
      waitpid(c.pid, &c.wait_status, 0);
      c.wait_status = -2;  // killed by us: it was still running
    }
    c.pid = -1;
  }
  if (c.fd >= 0) {
    close(c.fd);
    c.fd = -1;
  }
}

std::string post_mortem(std::vector<Child>& children) {
  std::map<std::string, int> kinds;
  for (Child& c : children) {
    reap(c, /*drain=*/true);
    std::string how;
    if (c.wait_status == -2) {
      how = "still running (killed)";
    } else if (c.wait_status == -1) {
      how = "already reaped";
    } else if (WIFEXITED(c.wait_status)) {
      how = "exited " + std::to_string(WEXITSTATUS(c.wait_status));
    } else if (WIFSIGNALED(c.wait_status)) {
      how = std::string("killed by ") + strsignal(WTERMSIG(c.wait_status));
    }
    // Numbers in the lines (indices, samples) would make every child a kind of its own.
    std::string said;
    for (char ch : c.said) said.push_back(ch >= '0' && ch <= '9' ? '#' : ch);
    ++kinds[how + " after: " + (said.empty() ? "(nothing)" : said)];
  }
  std::string out;
  for (const auto& [what, n] : kinds) out += "\n    " + std::to_string(n) + " x " + what;
  return out;
}

}  // namespace bench
