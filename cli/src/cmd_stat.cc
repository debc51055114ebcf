// cuframes stat: a ring and its subscriber table through an observer, once or --watch.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "cuframes/cuframes.hpp"
#include "errors.h"
#include "json.h"
#include "report.h"
#include "signals.h"
#include "subscriber_rates.h"
#include "text.h"

namespace cli {
namespace {

constexpr OptionSpec kWatch = {"--watch", OptionSpec::kOptionalNumber, "SECONDS",
                               "refresh every SECONDS (default 1, 0.05..86400) until Ctrl-C"};
constexpr OptionSpec kOptions[] = {kWatch, kJsonOption};

struct Sample {
  int64_t time_ns = 0;
  cuframes::Observer::Snapshot snap;
};

// Rates between two samples of the same publisher: the ring's fps and each subscriber's
// (subscriber_rates.h matches them); none when the ring was made anew in between.
struct Rates {
  std::optional<double> window_s;
  std::optional<double> fps;
  std::vector<std::optional<double>> sub_fps;
};

Rates rates(const Sample& cur, const Sample* prev, cfcommon::SubscriberRates* subs) {
  Rates r;
  if (prev != nullptr && prev->snap.ring.epoch != cur.snap.ring.epoch) subs->clear();
  r.sub_fps = subs->update(cur.snap.subscribers, cur.time_ns);
  if (prev == nullptr || prev->snap.ring.epoch != cur.snap.ring.epoch) return r;
  const double dt = static_cast<double>(cur.time_ns - prev->time_ns) / 1e9;
  if (dt <= 0) return r;
  r.window_s = dt;
  r.fps = cfcommon::per_second(cur.snap.ring.stats.published, prev->snap.ring.stats.published, dt);
  return r;
}

std::string render_json(const Sample& s, const Rates& r) {
  cfcommon::Json j;
  j["time_ns"] = s.time_ns;
  j["ring"] = ring_json(s.snap.ring, s.time_ns, r.fps, r.window_s);
  cfcommon::Json& subs = j["subscribers"] = cfcommon::Json::array();
  for (size_t i = 0; i < s.snap.subscribers.size(); ++i) {
    subs.push_back(subscriber_json(s.snap.subscribers[i], s.time_ns,
                                   i < r.sub_fps.size() ? r.sub_fps[i] : std::nullopt));
  }
  return cfcommon::dump(j) + "\n";
}

std::string render_text(const Sample& s, const Rates& r, bool watching) {
  std::optional<std::vector<std::optional<double>>> sub_fps;
  if (watching) sub_fps = r.sub_fps;
  return ring_text(s.snap.ring, s.time_ns, r.fps, r.window_s) + "\n" +
         subscribers_text(s.snap.subscribers, s.time_ns, sub_fps);
}

std::string clock_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

int run(const Args& args) {
  args.expect_positionals(1, "KEY");
  const std::string& key = args.positionals()[0];
  const bool json = args.has(kJsonOption);
  const bool watch = args.has(kWatch);
  const double interval_s = args.number(kWatch, 1.0, 0.05, 86400);

  if (watch) install_stop_handlers();  // before the observer exists (signals.h)
  // No waiting for the publisher: a key that is not there now is an error (exit 1).
  cuframes::Observer observer(key, 0, runtime_dir_arg(args.value(kRuntimeDirOption)));
  if (!watch) {
    Sample s{cuframes::now_ns(), observer.read()};
    std::fputs(json ? render_json(s, {}).c_str() : render_text(s, {}, false).c_str(), stdout);
    return kExitOk;
  }

  const bool tty = !json && ::isatty(STDOUT_FILENO);
  const int64_t interval_ns = std::llround(interval_s * 1e9);
  std::optional<Sample> prev;
  cfcommon::SubscriberRates sub_rates;
  int64_t next = cuframes::now_ns();
  while (!stop_requested()) {
    Sample cur;
    try {
      cur = Sample{cuframes::now_ns(), observer.read()};
    } catch (const cuframes::Error& e) {
      if (e.status() != CUFRAMES_ERR_PUBLISHER_GONE) throw;
      std::fprintf(stderr, "cuframes stat: the publisher of '%s' is gone\n", key.c_str());
      return kExitFailure;
    }
    const Rates r = rates(cur, prev ? &*prev : nullptr, &sub_rates);
    std::string out;
    if (json) {
      out = render_json(cur, r);
    } else {
      if (tty) out += "\x1b[H\x1b[2J";  // home, clear screen
      out += strf("cuframes stat %s, every %g s, %s (Ctrl-C to quit)\n\n", key.c_str(), interval_s,
                  clock_now().c_str());
      out += render_text(cur, r, true) + (tty ? "" : "\n");
    }
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
    prev = std::move(cur);
    // The next refresh on the interval's grid, so the refreshes do not drift.
    const int64_t now = cuframes::now_ns();
    next += interval_ns;
    if (next < now) next = now;
    const int wait_ms = static_cast<int>((next - now + 999'999) / 1'000'000);
    if (wait_for(-1, wait_ms) == Wake::kStop) break;
  }
  return kExitOk;
}

}  // namespace

const CommandSpec kStatCommand = {
    "stat",
    "",
    "KEY",
    kOptions,
    "a ring and its subscriber table, once or refreshed\nevery SECONDS (default 1) until Ctrl-C",
    &run};

}  // namespace cli
