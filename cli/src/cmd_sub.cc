// cuframes sub: attach as a subscriber and print fps, latency and gaps once a second.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "args.h"
#include "commands.h"
#include "cuframes/cuframes.hpp"
#include "errors.h"
#include "latency.h"
#include "report.h"
#include "signals.h"
#include "text.h"

namespace cli {
namespace {

// The modes by the core's names: "newest_only|strict_order".
const std::string kModes = std::string(cuframes_mode_name(CUFRAMES_MODE_NEWEST_ONLY)) + "|" +
                           cuframes_mode_name(CUFRAMES_MODE_STRICT_ORDER);
const OptionSpec kMode = {"--mode", OptionSpec::kValue, kModes.c_str(),
                          "the newest frame (the default) or every frame in order (also: newest, "
                          "strict)"};
constexpr OptionSpec kSeconds = {"--seconds", OptionSpec::kValue, "N",
                                 "stop after N seconds (default: at Ctrl-C)"};
constexpr OptionSpec kName = {"--name", OptionSpec::kValue, "NAME",
                              "its consumer name in the subscriber table (default cuframes-<pid>)"};
const OptionSpec kOptions[] = {kMode, kSeconds, kName};

constexpr int64_t kSecond = 1'000'000'000;

// A mode by its name (cuframes_mode_name: newest_only, strict_order) or the name's first word
// (newest, strict).
cuframes_mode_t parse_mode(const std::optional<std::string>& v) {
  if (!v) return CUFRAMES_MODE_NEWEST_ONLY;
  for (cuframes_mode_t m : {CUFRAMES_MODE_NEWEST_ONLY, CUFRAMES_MODE_STRICT_ORDER}) {
    const std::string name = cuframes_mode_name(m);
    if (*v == name || *v == name.substr(0, name.find('_'))) return m;
  }
  throw UsageError("option --mode: '" + *v + "' is not " +
                   cuframes_mode_name(CUFRAMES_MODE_NEWEST_ONLY) + " (newest) or " +
                   cuframes_mode_name(CUFRAMES_MODE_STRICT_ORDER) + " (strict)");
}

std::string latency_text(const LatencyHistogram& h) {
  auto p = [&](double q) {
    std::optional<int64_t> v = h.percentile(q);
    return v ? human_duration(*v) : std::string("-");
  };
  return "latency p50 " + p(0.50) + " p99 " + p(0.99);
}

enum class Drain { kMore, kGone };

// What was taken: latencies, and how many frames were published after the subscription began
// (the rate: a frame already in the ring at attach is taken, but is not part of it).
struct Taken {
  LatencyHistogram latency;
  uint64_t published_since_start = 0;
  void clear() {
    latency.clear();
    published_since_start = 0;
  }
};

// Takes the frames ready now, each released at once after its latency is recorded, until none is
// left (the fd is then no longer readable) or until_ns has passed (a publisher faster than this
// loop must not hold off the per-second lines and the stop signals).
Drain drain(cuframes::Subscriber& sub, int64_t start_ns, int64_t until_ns, Taken* interval,
            Taken* total) {
  do {
    cuframes::Frame frame;
    const cuframes_status_t st = sub.try_next(0, &frame);
    if (st == CUFRAMES_OK) {
      const int64_t published = frame.info().publish_ns;
      const int64_t latency = cuframes::now_ns() - published;
      for (Taken* t : {interval, total}) {
        t->latency.add(latency);
        if (published >= start_ns) ++t->published_since_start;
      }
    } else if (st == CUFRAMES_ERR_FRAME_TIMEOUT) {
      return Drain::kMore;
    } else if (st == CUFRAMES_ERR_PUBLISHER_GONE) {
      return Drain::kGone;
    } else if (st != CUFRAMES_ERR_OVERRUN) {  // an overrun is counted in the stats; go on
      cuframes::check(st);                    // from the oldest frame
    }
  } while (cuframes::now_ns() < until_ns);
  return Drain::kMore;
}

int run(const Args& args) {
  args.expect_positionals(1, "KEY");
  const std::string& key = args.positionals()[0];
  const cuframes_mode_t mode = parse_mode(args.value(kMode));
  const double seconds = args.number(kSeconds, 0, 0.001, 1e9);  // absent (0): until stopped
  const std::optional<std::string> name = args.value(kName);
  const std::optional<std::string> dir = args.value(kRuntimeDirOption);

  install_stop_handlers();  // before the subscriber exists (signals.h)
  cuframes::Subscriber::Options opts;
  opts.runtime_dir = runtime_dir_arg(dir);
  opts.consumer_name = name ? name->c_str() : nullptr;
  opts.mode = mode;
  opts.connect_timeout_ms = 0;  // the publisher must be there now
  cuframes::Subscriber sub(key, opts);

  const cuframes_ring_status_t ring = sub.ring_status();
  std::printf("subscribed to '%s' (%s %ux%u, %s) as '%s', mode %s\n", key.c_str(),
              cuframes_format_name(ring.geometry.format), ring.geometry.width, ring.geometry.height,
              memory_name(ring.memory, ring.device).c_str(), sub.name().c_str(),
              cuframes_mode_name(mode));

  Taken interval, total;
  const int64_t start = cuframes::now_ns();
  const int64_t end = seconds > 0 ? start + std::llround(seconds * 1e9) : INT64_MAX;
  int64_t tick_start = start;
  int64_t next_tick = start + kSecond;
  cuframes_subscriber_stats_t at_tick = sub.stats();

  auto print_interval = [&](int64_t now) {
    const cuframes_subscriber_stats_t s = sub.stats();
    const double dt = static_cast<double>(now - tick_start) / 1e9;
    std::printf("%7.1f s  fps %.1f  %s  gaps %llu  overruns %llu\n",
                static_cast<double>(now - start) / 1e9,
                dt > 0 ? static_cast<double>(interval.published_since_start) / dt : 0.0,
                latency_text(interval.latency).c_str(),
                static_cast<unsigned long long>(s.gaps - at_tick.gaps),
                static_cast<unsigned long long>(s.overruns - at_tick.overruns));
    interval.clear();
    at_tick = s;
    tick_start = now;
  };

  // A frame already in the ring when we attached is taken at once.
  bool gone = drain(sub, start, next_tick, &interval, &total) == Drain::kGone;
  while (!gone) {
    const int64_t now = cuframes::now_ns();
    if (now >= next_tick) {
      print_interval(now);
      next_tick += kSecond * ((now - next_tick) / kSecond + 1);
    }
    if (now >= end) break;
    const int64_t until = std::min(next_tick, end);
    const int wait_ms = static_cast<int>((until - now + 999'999) / 1'000'000);
    const Wake w = wait_for(sub.fd(), wait_ms);
    if (w == Wake::kStop) break;
    if (w == Wake::kReadable) gone = drain(sub, start, until, &interval, &total) == Drain::kGone;
  }

  const int64_t stop = cuframes::now_ns();
  if (interval.latency.count() > 0 && stop - tick_start >= kSecond / 10) print_interval(stop);
  const cuframes_subscriber_stats_t s = sub.stats();
  const double elapsed = static_cast<double>(stop - start) / 1e9;
  std::optional<int64_t> max;
  if (total.latency.count() > 0) max = total.latency.max();
  std::printf(
      "total: %llu frame%s in %.1f s (%.1f fps), %s max %s, gaps %llu, overruns %llu, "
      "errors %llu, publisher dropped %llu\n",
      static_cast<unsigned long long>(s.frames_received), s.frames_received == 1 ? "" : "s",
      elapsed, elapsed > 0 ? static_cast<double>(total.published_since_start) / elapsed : 0.0,
      latency_text(total.latency).c_str(), max ? human_duration(*max).c_str() : "-",
      static_cast<unsigned long long>(s.gaps), static_cast<unsigned long long>(s.overruns),
      static_cast<unsigned long long>(s.errors),
      static_cast<unsigned long long>(sub.ring_status().stats.dropped));
  if (gone) {
    std::fflush(stdout);
    std::fprintf(stderr, "cuframes sub: the publisher of '%s' is gone\n", key.c_str());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

const CommandSpec kSubCommand = {
    "sub", "", "KEY", kOptions, "subscribe and print fps, latency and gaps every second", &run};

}  // namespace cli
