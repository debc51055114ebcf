// cuframes_bench's child processes (subscribers, idle CUDA contexts, wakers): this binary started
// again with other arguments, its stdout on a pipe to the parent, read line by line with
// deadlines; and, when a scenario fails, what every child said and how it ended.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace bench {

struct Child {
  pid_t pid = -1;
  int fd = -1;           // the read end of the child's stdout
  std::string buf;       // read but not yet returned
  std::string said;      // every line returned so far, for the post-mortem (capped)
  int wait_status = -1;  // waitpid's, once reaped
};

// Starts this binary with `args` (after argv[0]), its stdout on a pipe to us, and `fd3` (if not
// -1) as its fd 3. Exits the bench if it cannot.
Child spawn_self(const std::vector<std::string>& args, int fd3 = -1);

// The child's next line, without its newline; empty at EOF or once `timeout_ms` (-1: none) passed
// (then *timed_out, if given, is set).
std::string read_line(Child& c, int timeout_ms = -1, bool* timed_out = nullptr);

// Ends a child: SIGKILL unless it already exited, then its exit status; closes its pipe. Reads
// what it still had to say first (up to 200 ms) when `drain` is set.
void reap(Child& c, bool drain = false);

// For a failed scenario: every child reaped (killed if still running), then one line per kind of
// ending ("12 x exited 0 after: READY | RESULT ...", "52 x still running (killed) after: READY"),
// the children's lines shortened to their first 120 characters.
std::string post_mortem(std::vector<Child>& children);

}  // namespace bench
