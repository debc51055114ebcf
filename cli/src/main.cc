// cuframes: inspect and sample the frame rings of a runtime directory (docs/cli.md).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "commands.h"
#include "cuframes/cuframes.hpp"
#include "errors.h"

namespace {

int run_help(const cli::Args&);
int run_version(const cli::Args&);

const cli::CommandSpec kHelpCommand = {.name = "help",
                                       .aliases = "--help, -h",
                                       .positionals = "",
                                       .options = {},
                                       .help = "this text",
                                       .run = &run_help,
                                       .takes_args = false};
const cli::CommandSpec kVersionCommand = {.name = "--version",
                                          .aliases = "version",
                                          .positionals = "",
                                          .options = {},
                                          .help = "the versions of the tool, library and protocol",
                                          .run = &run_version,
                                          .takes_args = false};

// Every command, in the usage's order: this table drives the dispatch and the usage.
const cli::CommandSpec* const kCommands[] = {&cli::kListCommand,     &cli::kStatCommand,
                                             &cli::kSnapshotCommand, &cli::kSubCommand,
                                             &kHelpCommand,          &kVersionCommand};

constexpr const char* kExitStatus =
    R"(Exit status: 0 success, 1 failure (no such publisher, publisher gone, I/O), 2 bad command line
(also a key or a name the library refuses).
)";

const std::string& usage() {
  static const std::string text = cli::usage_text(kCommands, kExitStatus);
  return text;
}

int run_help(const cli::Args&) {
  std::fputs(usage().c_str(), stdout);
  return cli::kExitOk;
}

int run_version(const cli::Args&) {
  std::printf("cuframes %s (libcuframes %s, protocol %u)\n", CUFRAMES_CLI_VERSION,
              cuframes_version_string(), cuframes_protocol_version());
  return cli::kExitOk;
}

// The command called `word` (by its name or an alias), or null.
const cli::CommandSpec* find_command(const std::string& word) {
  for (const cli::CommandSpec* c : kCommands) {
    if (word == c->name) return c;
    const std::string_view aliases = c->aliases;  // "--help, -h"
    for (size_t start = 0; start < aliases.size();) {
      const size_t end = std::min(aliases.find(", ", start), aliases.size());
      if (aliases.substr(start, end - start) == word) return c;
      start = end + 2;
    }
  }
  return nullptr;
}

int usage_error(const char* command, const std::string& message) {
  std::fprintf(stderr, "cuframes%s%s: %s\n\n%s", command ? " " : "", command ? command : "",
               message.c_str(), usage().c_str());
  return cli::kExitUsage;
}

int failure(const char* command, const std::exception& e) {
  std::fflush(stdout);
  std::fprintf(stderr, "cuframes %s: %s\n", command, e.what());
  return cli::kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error(nullptr, "no command given");
  const std::string command = argv[1];
  const cli::CommandSpec* spec = find_command(command);
  if (spec == nullptr) return usage_error(nullptr, "unknown command '" + command + "'");
  for (int i = 2; spec->takes_args && i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      spec = &kHelpCommand;
    }
  }
  // Lines reach a pipe (a test, `| grep`) as they are printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int rc;
  try {
    rc = spec->run(cli::Args(argc, argv, 2, *spec));
  } catch (const cli::UsageError& e) {
    return usage_error(command.c_str(), e.what());
  } catch (const cuframes::Error& e) {
    // The library checks keys and names itself: a value it refuses came from the command line.
    if (e.status() == CUFRAMES_ERR_INVALID_ARGUMENT) return usage_error(command.c_str(), e.what());
    return failure(command.c_str(), e);
  } catch (const std::exception& e) {
    return failure(command.c_str(), e);
  }
  // Output that could not be written (a full disk, a closed terminal) is a failure too.
  errno = 0;
  const bool flush_failed = std::fflush(stdout) != 0;
  const int err = errno;
  if (flush_failed || std::ferror(stdout)) {
    std::fprintf(stderr, "cuframes %s: cannot write the output%s%s\n", command.c_str(),
                 err != 0 ? ": " : "", err != 0 ? std::strerror(err) : "");
    return cli::kExitFailure;
  }
  return rc;
}
