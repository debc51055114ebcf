// cuframes: inspect and sample the frame rings of a runtime directory (docs/cli.md).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "commands.h"
#include "cuframes/cuframes.hpp"
#include "errors.h"

namespace {

constexpr const char* kUsage = R"(usage: cuframes COMMAND [ARGS] [OPTIONS]

Commands:
  list [--json]                      the live publishers of the runtime directory
  stat KEY [--watch [SECONDS]] [--json]
                                     a ring and its subscriber table, once or refreshed
                                     every SECONDS (default 1) until Ctrl-C
  snapshot KEY FILE.jpg|FILE.png [--timeout MS]
                                     save the newest frame as a JPEG or PNG image
  sub KEY [--mode newest|strict] [--seconds N] [--name NAME]
                                     subscribe and print fps, latency and gaps every second
  help, --help                       this text
  --version                          the versions of the tool, library and protocol

Every command takes --runtime-dir DIR (default: $CUFRAMES_RUNTIME_DIR, /run/cuframes,
$XDG_RUNTIME_DIR/cuframes, /tmp/cuframes-<uid>).

Exit status: 0 success, 1 failure (no such publisher, publisher gone, I/O), 2 bad command line
(also a key or a name the library refuses).
)";

int usage_error(const char* command, const std::string& message) {
  std::fprintf(stderr, "cuframes%s%s: %s\n\n%s", command ? " " : "", command ? command : "",
               message.c_str(), kUsage);
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
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return cli::kExitOk;
  }
  if (command == "--version" || command == "version") {
    std::printf("cuframes %s (libcuframes %s, protocol %u)\n", CUFRAMES_CLI_VERSION,
                cuframes_version_string(), cuframes_protocol_version());
    return cli::kExitOk;
  }
  using Command = int (*)(int, char**, int);
  Command run = command == "list"       ? cli::cmd_list
                : command == "stat"     ? cli::cmd_stat
                : command == "snapshot" ? cli::cmd_snapshot
                : command == "sub"      ? cli::cmd_sub
                                        : nullptr;
  if (run == nullptr) return usage_error(nullptr, "unknown command '" + command + "'");
  for (int i = 2; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return cli::kExitOk;
    }
  }
  // Lines reach a pipe (a test, `| grep`) as they are printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int rc;
  try {
    rc = run(argc, argv, 2);
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
