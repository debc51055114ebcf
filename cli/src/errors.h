// How the commands fail: a UsageError is a bad command line (usage on stderr, exit 2), and so is a
// cuframes::Error with INVALID_ARGUMENT (the library refused a key or name the user gave);
// anything else thrown (cuframes::Error from libcuframes, std::runtime_error) is printed and
// exits 1.
#ifndef CUFRAMES_CLI_ERRORS_H_
#define CUFRAMES_CLI_ERRORS_H_

#include <stdexcept>
#include <string>

namespace cli {

class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message) : std::runtime_error(message) {}
};

// Exit codes (docs/cli.md).
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace cli

#endif  // CUFRAMES_CLI_ERRORS_H_
