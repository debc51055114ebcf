// cuframes list: one line per live publisher, read through an observer on each key.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "cuframes/cuframes.hpp"
#include "errors.h"
#include "json.h"
#include "report.h"
#include "text.h"

namespace cli {
namespace {

constexpr OptionSpec kOptions[] = {kJsonOption};

struct Entry {
  std::string key;
  std::optional<cuframes_ring_status_t> ring;  // nullopt: could not be read (error)
  std::string error;
};

// Reads one key; nullopt when its publisher went away since the listing.
std::optional<Entry> read_key(const std::string& key, const char* runtime_dir) {
  Entry e{key, std::nullopt, ""};
  try {
    cuframes::Observer obs(key, 0, runtime_dir);
    e.ring = obs.read().ring;
  } catch (const cuframes::Error& err) {
    if (err.status() == CUFRAMES_ERR_PUBLISHER_GONE) return std::nullopt;
    e.error = err.what();
  }
  return e;
}

// The directory that was looked in, as libcuframes resolves it, and whether it is there.
std::string where(const std::optional<std::string>& dir) {
  bool exists = false;
  const std::string path = cuframes::runtime_dir(runtime_dir_arg(dir), &exists);
  return exists ? path : path + " (no such directory: no publisher has made it yet)";
}

int run(const Args& args) {
  args.expect_positionals(0, "");
  const std::optional<std::string> dir = args.value(kRuntimeDirOption);
  std::vector<Entry> entries;
  for (const std::string& key : cuframes::list_publishers(runtime_dir_arg(dir))) {
    if (std::optional<Entry> e = read_key(key, runtime_dir_arg(dir))) entries.push_back(*e);
  }
  const int64_t now = cuframes::now_ns();

  if (args.has(kJsonOption)) {
    cfcommon::Json j = cfcommon::Json::array();
    for (const Entry& e : entries) {
      if (e.ring) {
        j.push_back(ring_json(*e.ring, now, std::nullopt, std::nullopt));
      } else {
        j.push_back({{"key", e.key}, {"error", e.error}});
      }
    }
    std::printf("%s\n", cfcommon::dump(j).c_str());
    return kExitOk;
  }
  // A ring that cannot be read (another protocol version, no permission) is named on stderr.
  std::erase_if(entries, [](const Entry& e) {
    if (!e.ring) std::fprintf(stderr, "cuframes list: %s: %s\n", e.key.c_str(), e.error.c_str());
    return !e.ring;
  });
  if (entries.empty()) {
    std::printf("no live publishers in %s\n", where(dir).c_str());
    return kExitOk;
  }
  Table t({"KEY", "FORMAT", "SIZE", "MEMORY", "TRANSPORT", "SLOTS", "SUBSCRIBERS", "PUBLISHED",
           "DROPPED"},
          5);
  for (const Entry& e : entries) {
    const cuframes_ring_status_t& r = *e.ring;
    t.add({e.key, cuframes_format_name(r.geometry.format),
           strf("%ux%u", r.geometry.width, r.geometry.height), memory_name(r.memory, r.device),
           r.transport, std::to_string(r.stats.slots), std::to_string(r.stats.subscribers),
           std::to_string(r.stats.published), std::to_string(r.stats.dropped)});
  }
  std::fputs(t.render().c_str(), stdout);
  return kExitOk;
}

}  // namespace

const CommandSpec kListCommand = {
    "list", "", "", kOptions, "the live publishers of the runtime directory", &run};

}  // namespace cli
