// The subcommands: each is a CommandSpec (args.h) whose options and help drive both the parsing
// and the usage. run() returns the exit code; failures are thrown (errors.h).
#ifndef CUFRAMES_CLI_COMMANDS_H_
#define CUFRAMES_CLI_COMMANDS_H_

#include <optional>
#include <string>

#include "args.h"

namespace cli {

extern const CommandSpec kListCommand;
extern const CommandSpec kStatCommand;
extern const CommandSpec kSnapshotCommand;
extern const CommandSpec kSubCommand;

// The --runtime-dir value as libcuframes takes it (NULL: resolved by the library).
inline const char* runtime_dir_arg(const std::optional<std::string>& dir) {
  return dir ? dir->c_str() : nullptr;
}

}  // namespace cli

#endif  // CUFRAMES_CLI_COMMANDS_H_
