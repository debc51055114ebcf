#include "args.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "errors.h"

namespace cli {

std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

namespace {

constexpr size_t kHelpColumn = 37;  // where the help text starts in the usage
constexpr size_t kWidth = 100;      // lines of help are wrapped here

// "  <left>   <help>\n": the help on the next line when <left> is too wide; the help wrapped at
// kWidth between words, and at each '\n'.
void add_row(std::string* out, const std::string& left, const std::string& help) {
  std::string line = "  " + left;
  if (line.size() + 2 > kHelpColumn) {
    *out += line + "\n";
    line.clear();
  }
  line.resize(kHelpColumn, ' ');
  size_t used = 0;  // help characters on this line
  size_t i = 0;
  while (i <= help.size()) {
    const size_t end = std::min(help.find_first_of(" \n", i), help.size());
    const std::string word = help.substr(i, end - i);
    if (used > 0 && kHelpColumn + used + 1 + word.size() > kWidth) {
      *out += line + "\n";
      line.assign(kHelpColumn, ' ');
      used = 0;
    }
    if (used > 0) {
      line += ' ';
      ++used;
    }
    line += word;
    used += word.size();
    if (end < help.size() && help[end] == '\n') {
      *out += line + "\n";
      line.assign(kHelpColumn, ' ');
      used = 0;
    }
    i = end + 1;
  }
  *out += line + "\n";
}

}  // namespace

std::string option_synopsis(const OptionSpec& o) {
  switch (o.kind) {
    case OptionSpec::kFlag:
      return o.name;
    case OptionSpec::kValue:
      return std::string(o.name) + " " + o.arg;
    case OptionSpec::kOptionalNumber:
      return std::string(o.name) + " [" + o.arg + "]";
  }
  return o.name;
}

std::string command_synopsis(const CommandSpec& c) {
  std::string s = c.name;
  if (*c.positionals) s += std::string(" ") + c.positionals;
  for (const OptionSpec& o : c.options) s += " [" + option_synopsis(o) + "]";
  return s;
}

std::string usage_text(std::span<const CommandSpec* const> commands, const char* epilogue) {
  std::string out = "usage: cuframes COMMAND [ARGS] [OPTIONS]\n\nCommands:\n";
  for (const CommandSpec* c : commands) {
    std::string left = command_synopsis(*c);  // "list [--json]"; "help, --help, -h"
    if (*c->aliases) left = c->name + std::string(", ") + c->aliases;
    add_row(&out, left, c->help);
  }
  // Each option once, with the commands that take it.
  out += "\nOptions:\n";
  std::vector<const OptionSpec*> options;
  for (const OptionSpec& o : kCommonOptions) options.push_back(&o);  // every command's
  for (const CommandSpec* c : commands) {
    for (const OptionSpec& o : c->options) {
      bool seen = false;
      for (const OptionSpec* p : options) seen = seen || std::string(p->name) == o.name;
      if (!seen) options.push_back(&o);
    }
  }
  for (const OptionSpec* o : options) {
    std::string who;
    for (const CommandSpec* c : commands) {
      bool takes = false;
      for (const OptionSpec& co : c->options) takes = takes || std::string(co.name) == o->name;
      if (takes) who += (who.empty() ? "" : ", ") + std::string(c->name);
    }
    if (who.empty()) who = "every command";
    add_row(&out, option_synopsis(*o), who + ": " + o->help);
  }
  return out + "\n" + epilogue;
}

Args::Args(int argc, char** argv, int first, const CommandSpec& command) {
  bool options_done = false;
  for (int i = command.takes_args ? first : argc; i < argc; ++i) {
    std::string word = argv[i];
    if (options_done || word.size() < 2 || word[0] != '-') {
      positionals_.push_back(word);
      continue;
    }
    if (word == "--") {
      options_done = true;
      continue;
    }
    std::string name = word;
    std::optional<std::string> inline_value;
    if (size_t eq = word.find('='); eq != std::string::npos) {
      name = word.substr(0, eq);
      inline_value = word.substr(eq + 1);
    }
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& s : command.options) {
      if (name == s.name) spec = &s;
    }
    for (const OptionSpec& s : kCommonOptions) {
      if (name == s.name) spec = &s;
    }
    if (spec == nullptr) throw UsageError("unknown option '" + name + "'");
    std::optional<std::string> value;
    switch (spec->kind) {
      case OptionSpec::kFlag:
        if (inline_value) throw UsageError("option " + name + " takes no value");
        break;
      case OptionSpec::kValue:
        if (inline_value) {
          value = inline_value;
        } else if (i + 1 < argc) {
          value = argv[++i];
        } else {
          throw UsageError("option " + name + " needs a value");
        }
        break;
      case OptionSpec::kOptionalNumber:
        if (inline_value) {
          value = inline_value;
        } else if (i + 1 < argc && parse_number(argv[i + 1])) {
          value = argv[++i];
        }
        break;
    }
    options_[name] = value;
  }
}

std::optional<std::string> Args::value(const OptionSpec& o) const {
  auto it = options_.find(o.name);
  return it == options_.end() ? std::nullopt : it->second;
}

double Args::number(const OptionSpec& o, double fallback, double min, double max) const {
  const std::string name = o.name;
  std::optional<std::string> v = value(o);
  if (!v) return fallback;
  std::optional<double> d = parse_number(*v);
  if (!d || *d < min || *d > max) {
    char range[64];
    std::snprintf(range, sizeof range, "%g to %g", min, max);
    throw UsageError("option " + name + ": '" + *v + "' is not a number from " + range);
  }
  return *d;
}

long long Args::integer(const OptionSpec& o, long long fallback, long long min,
                        long long max) const {
  const std::string name = o.name;
  std::optional<std::string> v = value(o);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || errno != 0 || end != v->c_str() + v->size() || n < min || n > max) {
    throw UsageError("option " + name + ": '" + *v + "' is not a whole number from " +
                     std::to_string(min) + " to " + std::to_string(max));
  }
  return n;
}

void Args::expect_positionals(size_t count, const char* what) const {
  if (positionals_.size() < count) throw UsageError(std::string("missing ") + what);
  if (positionals_.size() > count) {
    throw UsageError("unexpected argument '" + positionals_[count] + "'");
  }
}

}  // namespace cli
