// Ctrl-C (SIGINT) and SIGTERM end the long-running commands (stat --watch, sub) cleanly.
//
// The handler only sets an atomic flag. The two signals are blocked except inside wait_for(),
// which unblocks them atomically for its ppoll(): a signal sent at any other moment stays
// pending until the next wait_for(), which then returns Wake::kStop at once. So a stop is never
// lost between checking the flag and going to sleep, and the commands see it at their next
// wait (they never go more than a second without one).
#ifndef CUFRAMES_CLI_SIGNALS_H_
#define CUFRAMES_CLI_SIGNALS_H_

namespace cli {

// Installs the handler and blocks SIGINT and SIGTERM in the calling thread. Call it from the
// main thread before any other thread exists (before creating a subscriber or an observer):
// threads inherit the blocked mask, so only wait_for() ever receives the signals.
void install_stop_handlers();

// True once SIGINT or SIGTERM has been received.
bool stop_requested();

enum class Wake { kTimeout, kReadable, kStop };
// Waits up to timeout_ms (>= 0) for a stop signal or, when fd >= 0, for fd to become readable
// (or hung up). kStop wins over kReadable. Throws std::system_error if poll fails.
Wake wait_for(int fd, int timeout_ms);

}  // namespace cli

#endif  // CUFRAMES_CLI_SIGNALS_H_
