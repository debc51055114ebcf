// Helpers shared by the core tests: a private runtime directory per test, and child processes
// (fork+exec of cuframes_test_peer) that the test talks to over their stdout, line by line.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/frame_check.h"
#include "cuframes/cuframes.hpp"

namespace cftest {

inline int64_t ms_since(int64_t t0) {
  return (cuframes::now_ns() - t0) / 1000000;
}

// The status fn throws as cuframes::Error, CUFRAMES_OK if none.
inline cuframes_status_t status_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const cuframes::Error& e) {
    return e.status();
  }
  return CUFRAMES_OK;
}

// A fresh runtime directory, removed with everything in it at the end of the test.
class RuntimeDir {
 public:
  RuntimeDir() {
    char tmpl[] = "/tmp/cuframes-test-XXXXXX";
    char* d = ::mkdtemp(tmpl);
    if (d == nullptr) std::abort();
    path_ = d;
  }
  ~RuntimeDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const char* c_str() const { return path_.c_str(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The memory the protocol suites run on: CUFRAMES_TEST_MEMORY=cuda selects CUDA rings (the
// `gpu` ctest entries), anything else host rings.
inline cuframes_memory_t memory_under_test() {
  const char* m = std::getenv("CUFRAMES_TEST_MEMORY");
  return m != nullptr && std::string(m) == "cuda" ? CUFRAMES_MEMORY_CUDA : CUFRAMES_MEMORY_HOST;
}

// Options for a ring in the memory under test.
inline cuframes::Publisher::Options pub_options(const RuntimeDir& dir, uint32_t w = 64,
                                                uint32_t h = 32, uint32_t slots = 4) {
  cuframes::Publisher::Options o;
  o.runtime_dir = dir.c_str();
  o.width = w;
  o.height = h;
  o.slots = slots;
  o.format = CUFRAMES_FORMAT_NV12;
  o.memory = memory_under_test();
  return o;
}

// Options for a host ring, for tests that read or write pixels on the CPU.
inline cuframes::Publisher::Options host_pub_options(const RuntimeDir& dir, uint32_t w = 64,
                                                     uint32_t h = 32, uint32_t slots = 4) {
  cuframes::Publisher::Options o = pub_options(dir, w, h, slots);
  o.memory = CUFRAMES_MEMORY_HOST;
  return o;
}

inline cuframes::Subscriber::Options sub_options(const RuntimeDir& dir,
                                                 cuframes_mode_t mode = CUFRAMES_MODE_NEWEST_ONLY,
                                                 const char* name = nullptr) {
  cuframes::Subscriber::Options o;
  o.runtime_dir = dir.c_str();
  o.mode = mode;
  o.consumer_name = name;
  o.connect_timeout_ms = 2000;
  return o;
}

// Waits up to timeout_ms for cond() to hold, checking every millisecond. For conditions that
// have no event to wait on (another process's state changing in shared memory).
inline bool wait_until(const std::function<bool()>& cond, int timeout_ms) {
  int64_t t0 = cuframes::now_ns();
  while (!cond()) {
    if (ms_since(t0) >= timeout_ms) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Publishes one pattern frame through a loan; returns its seq (0 if no slot was free).
inline uint64_t publish_pattern(cuframes::Publisher& pub) {
  cuframes::Loan loan;
  try {
    loan = pub.loan();
  } catch (const cuframes::Error& e) {
    if (e.status() == CUFRAMES_ERR_FRAME_TIMEOUT) return 0;
    throw;
  }
  cuframes_frame_info_t fi = loan.info();
  // The seq this commit will get: the publisher numbers frames 1, 2, ... in commit order.
  uint64_t seq = pub.stats().published + 1;
  fill_frame(fi, seq);
  return pub.commit(std::move(loan));
}

// A child process running cuframes_test_peer, its stdout readable line by line.
class Peer {
 public:
  // args go to cuframes_test_peer; wrapper (e.g. {"unshare", "--pid", "--fork"}) runs it;
  // env entries ("K=V") are set in the child only.
  explicit Peer(const std::vector<std::string>& args, const std::vector<std::string>& wrapper = {},
                const std::vector<std::string>& env = {}) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      for (const std::string& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
      std::vector<std::string> all = wrapper;
      all.push_back(CUFRAMES_TEST_PEER);
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::perror("execvp");
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
  }
  ~Peer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  pid_t pid() const { return pid_; }

  // The next line of output (without '\n'), or "" on EOF / timeout.
  std::string line(int timeout_ms = 10000) {
    int64_t t0 = cuframes::now_ns();
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      int left = timeout_ms - static_cast<int>(ms_since(t0));
      if (left <= 0) return "";
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0) continue;
      char chunk[4096];
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  // Skips lines until one starts with prefix; returns it ("" on EOF / timeout).
  std::string expect(const std::string& prefix, int timeout_ms = 10000) {
    int64_t t0 = cuframes::now_ns();
    for (;;) {
      int left = timeout_ms - static_cast<int>(ms_since(t0));
      if (left <= 0) return "";
      std::string l = line(left);
      if (l.empty()) return "";
      if (l.rfind(prefix, 0) == 0) return l;
    }
  }
  void kill9() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Waits for exit; returns the exit code (or 128+signal).
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
};

// "key=value" field of a result line ("" when missing).
inline std::string field_str(const std::string& line, const std::string& key) {
  std::string padded = " " + line, k = " " + key + "=";
  size_t at = padded.find(k);
  if (at == std::string::npos) return "";
  size_t start = at + k.size();
  return padded.substr(start, padded.find(' ', start) - start);
}
// The same as an integer (-1 when missing).
inline long long field(const std::string& line, const std::string& key) {
  std::string v = field_str(line, key);
  return v.empty() ? -1 : std::atoll(v.c_str());
}

}  // namespace cftest
