// nvcuvid_ceiling's arguments (nvcuvid_args.h), and the options they fill.
#include "nvcuvid_args.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "nvcuvid_shared.h"

namespace nvcuvid {

Options g_opt;

namespace {

long parse_int(const std::string& arg, const char* v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi)
    die(2, "%s: '%s' is not a whole number from %ld to %ld", arg.c_str(), v, lo, hi);
  return x;
}

double parse_num(const std::string& arg, const char* v, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(v, &end);
  if (errno != 0 || end == v || *end != '\0' || !(x >= lo && x <= hi))
    die(2, "%s: '%s' is not a number from %g to %g", arg.c_str(), v, lo, hi);
  return x;
}

}  // namespace

std::vector<Row> parse_sweep(const std::string& spec) {
  std::vector<Row> rows;
  size_t at = 0;
  while (at <= spec.size()) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string item = spec.substr(at, comma - at);
    at = comma + 1;
    Row row{0, 0, false};
    char tail = 0;
    if (item.rfind("ff", 0) == 0 && std::sscanf(item.c_str() + 2, "%d%c", &row.streams, &tail) == 1)
      row.ffmpeg = true;
    else if (std::sscanf(item.c_str(), "%dx%d%c", &row.streams, &row.threads, &tail) != 2)
      die(2, "--sweep: '%s' is not STREAMSxTHREADS (e.g. 128x7) or ffSTREAMS (e.g. ff64)",
          item.c_str());
    if (row.streams < 1 || row.streams > 4096 ||
        (!row.ffmpeg && (row.threads < 1 || row.threads > row.streams)))
      die(2, "--sweep: '%s': streams 1..4096, threads 1..streams", item.c_str());
    if (row.ffmpeg && g_opt.ffmpeg.empty())
      die(2, "--sweep: row '%s' needs --ffmpeg PATH (bench/nvdec_ceiling)", item.c_str());
    rows.push_back(row);
  }
  return rows;
}

namespace {

void usage_exit(const char* why) {
  std::fprintf(stderr,
               "nvcuvid_ceiling: %s\n"
               "usage: nvcuvid_ceiling [--seconds S] [--streams N] [--threads T] [--paced FPS]\n"
               "         [--display-delay D] [--surfaces K] [--output-surfaces M]\n"
               "         [--sched blocking|spin|yield|auto]\n"
               "         [--lock stream|shared|none] [--preload] [--sweep NxT,...,ffN,...]\n"
               "         [--repeat R] [--ffmpeg PATH] [--demux-only] [--packets P] FILE...\n",
               why);
  std::exit(2);
}

}  // namespace

void parse_args(int argc, char** argv) {
  Options& o = g_opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) die(2, "%s needs a value", a.c_str());
      return argv[++i];
    };
    if (a == "--seconds")
      o.seconds = parse_num(a, value(), 0.1, 3600);
    else if (a == "--streams")
      o.streams = static_cast<int>(parse_int(a, value(), 1, 4096));
    else if (a == "--threads")
      o.threads = static_cast<int>(parse_int(a, value(), 1, 4096));
    else if (a == "--paced")
      o.paced = parse_num(a, value(), 0, 1000);
    else if (a == "--display-delay")
      o.display_delay = static_cast<int>(parse_int(a, value(), 0, 16));
    else if (a == "--surfaces")
      o.surfaces = static_cast<int>(parse_int(a, value(), 0, 32));
    else if (a == "--output-surfaces")
      o.output_surfaces = static_cast<int>(parse_int(a, value(), 1, 8));
    else if (a == "--sched") {
      o.sched = value();
      if (o.sched != "auto" && o.sched != "spin" && o.sched != "yield" && o.sched != "blocking")
        die(2, "--sched: '%s' is not auto, spin, yield or blocking", o.sched.c_str());
    } else if (a == "--lock") {
      o.lock = value();
      if (o.lock != "stream" && o.lock != "shared" && o.lock != "none")
        die(2, "--lock: '%s' is not stream, shared or none", o.lock.c_str());
    } else if (a == "--preload")
      o.preload = true;
    else if (a == "--demux-only")
      o.demux_only = true;
    else if (a == "--packets")
      o.packets = parse_int(a, value(), 1, 1L << 40);
    else if (a == "--repeat")
      o.repeat = static_cast<int>(parse_int(a, value(), 1, 100));
    else if (a == "--sweep")
      o.sweep = value();
    else if (a == "--ffmpeg")
      o.ffmpeg = value();
    else if (a == "-h" || a == "--help")
      usage_exit("the decode-only ceiling of NVIDIA's parser and decoder, called directly");
    else if (a.rfind("-", 0) == 0 && a.size() > 1)
      die(2, "unknown option %s", a.c_str());
    else
      o.files.push_back(a);
  }
  if (o.files.empty()) usage_exit("no FILE given");
  if (o.threads == 0) o.threads = o.streams;
  if (o.threads > o.streams)
    die(2, "--threads %d is more than --streams %d (a thread has at least one stream)", o.threads,
        o.streams);
  if (!o.ffmpeg.empty() && access(o.ffmpeg.c_str(), X_OK) != 0)
    die(2, "--ffmpeg: %s is not an executable (bench/nvdec_ceiling)", o.ffmpeg.c_str());
}

}  // namespace nvcuvid
