// Command-line parsing from tables: each command is a CommandSpec (its positionals, its options
// and a line of help), each option an OptionSpec (its name, kind, argument and a line of help).
// The same tables parse the command line and print the usage (usage_text), so --help and the
// parser cannot disagree; tests/cli/test_cli.py checks docs/cli.md against --help.
#ifndef CUFRAMES_CLI_ARGS_H_
#define CUFRAMES_CLI_ARGS_H_

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cli {

struct OptionSpec {
  enum Kind {
    kFlag,           // --json
    kValue,          // --timeout MS, --timeout=MS
    kOptionalNumber  // --watch [SECONDS]: takes the next word only when it is a number
  };
  const char* name;  // with the dashes: "--watch"
  Kind kind;
  const char* arg;   // its value in the usage: "SECONDS"; "" for a flag
  const char* help;  // wrapped in the usage
};

// The options every command takes.
inline constexpr OptionSpec kRuntimeDirOption = {
    "--runtime-dir", OptionSpec::kValue, "DIR",
    "the runtime directory (default: $CUFRAMES_RUNTIME_DIR, /run/cuframes, "
    "$XDG_RUNTIME_DIR/cuframes, /tmp/cuframes-<uid>)"};
inline constexpr OptionSpec kCommonOptions[] = {kRuntimeDirOption};
// Options of several commands.
inline constexpr OptionSpec kJsonOption = {"--json", OptionSpec::kFlag, "",
                                           "one JSON document per line, for programs"};

class Args;

struct CommandSpec {
  const char* name;                     // "stat"
  const char* aliases;                  // other names, ", "-separated: "--help, -h"; or ""
  const char* positionals;              // "KEY FILE.jpg|FILE.png"; "" for none
  std::span<const OptionSpec> options;  // its own; kCommonOptions come with every command
  const char* help;                     // what it does; '\n' between lines
  int (*run)(const Args& args);
  bool takes_args = true;  // false: help and --version, which ignore what follows them
};

// "--watch [SECONDS]", "--timeout MS", "--json".
std::string option_synopsis(const OptionSpec& o);
// "stat KEY [--watch [SECONDS]] [--json]" (the common options left out).
std::string command_synopsis(const CommandSpec& c);
// The usage: every command with its synopsis and help, then every option with its help and the
// commands that take it, then `epilogue`.
std::string usage_text(std::span<const CommandSpec* const> commands, const char* epilogue);

class Args {
 public:
  // Parses argv[first..argc) by the options of `command` and kCommonOptions. Throws UsageError
  // for unknown options and missing values. "--" ends the options (a key may start with a dash).
  Args(int argc, char** argv, int first, const CommandSpec& command);

  const std::vector<std::string>& positionals() const { return positionals_; }
  bool has(const OptionSpec& o) const { return options_.count(o.name) != 0; }
  // The option's value; nullopt when absent or given without one (kOptionalNumber).
  std::optional<std::string> value(const OptionSpec& o) const;

  // The value parsed as a number in [min, max]; `fallback` when the option has no value.
  // Throws UsageError naming the option otherwise.
  long long integer(const OptionSpec& o, long long fallback, long long min, long long max) const;
  double number(const OptionSpec& o, double fallback, double min, double max) const;

  // Throws UsageError unless there are exactly `count` positionals (named in `what`).
  void expect_positionals(size_t count, const char* what) const;

 private:
  std::vector<std::string> positionals_;
  std::map<std::string, std::optional<std::string>> options_;
};

// Parses a whole string as a number; nullopt if it is not one.
std::optional<double> parse_number(const std::string& s);

}  // namespace cli

#endif  // CUFRAMES_CLI_ARGS_H_
