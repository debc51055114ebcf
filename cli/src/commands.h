// The subcommands. Each parses its own options from argv[first..] and returns the exit code;
// failures are thrown (errors.h).
#ifndef CUFRAMES_CLI_COMMANDS_H_
#define CUFRAMES_CLI_COMMANDS_H_

#include <optional>
#include <string>

namespace cli {

int cmd_list(int argc, char** argv, int first);
int cmd_stat(int argc, char** argv, int first);
int cmd_snapshot(int argc, char** argv, int first);
int cmd_sub(int argc, char** argv, int first);

// The --runtime-dir value as libcuframes takes it (NULL: resolved by the library).
inline const char* runtime_dir_arg(const std::optional<std::string>& dir) {
  return dir ? dir->c_str() : nullptr;
}

}  // namespace cli

#endif  // CUFRAMES_CLI_COMMANDS_H_
