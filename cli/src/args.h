// Command-line parsing: positionals and --options after the command word.
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
};

class Args {
 public:
  // Parses argv[first..argc). Throws UsageError for unknown options and missing values. "--"
  // ends the options (a key may start with a dash).
  Args(int argc, char** argv, int first, std::span<const OptionSpec> specs);

  const std::vector<std::string>& positionals() const { return positionals_; }
  bool has(const std::string& name) const { return options_.count(name) != 0; }
  // The option's value; nullopt when absent or given without one (kOptionalNumber).
  std::optional<std::string> value(const std::string& name) const;

  // The value parsed as a number in [min, max]; `fallback` when the option has no value.
  // Throws UsageError naming the option otherwise.
  long long integer(const std::string& name, long long fallback, long long min,
                    long long max) const;
  double number(const std::string& name, double fallback, double min, double max) const;

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
