// cuframes-service: reads the config, starts every camera, and then only waits for signals:
// SIGHUP reloads the config (parsed into a scratch copy, applied only when valid), SIGTERM and
// SIGINT stop gracefully. Tears down in the reverse order of start-up.
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "cuframes/cuframes.h"
#include "fd_event.h"
#include "http.h"
#include "logging.h"
#include "mqtt.h"
#include "service.h"
#include "snapshot.h"

namespace {

// Signal handlers only set these flags and wake the main loop.
std::atomic<bool> g_reload{false};
std::atomic<bool> g_stop{false};
cfsvc::EventFd* g_wake = nullptr;

void on_signal(int sig) {
  if (sig == SIGHUP) {
    g_reload.store(true);
  } else {
    g_stop.store(true);
  }
  if (g_wake != nullptr) g_wake->set();
}

// The soft limit on open files up to the hard one: each camera holds some ten fds (its ring's
// memory and eventfds, the listening socket and one per peer, the file or the connection,
// NVDEC's), and the usual soft limit of 1024 is reached past 100 cameras with subscribers.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    spdlog::warn("cannot read the open-file limit: {}", std::strerror(errno));
    return;
  }
  if (rl.rlim_cur >= rl.rlim_max) {
    spdlog::debug("open-file limit {} (the hard limit)",
                  static_cast<unsigned long long>(rl.rlim_cur));
    return;
  }
  const rlim_t was = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    spdlog::warn("cannot raise the open-file limit from {} to {}: {}",
                 static_cast<unsigned long long>(was), static_cast<unsigned long long>(rl.rlim_max),
                 std::strerror(errno));
    return;
  }
  spdlog::info("open-file limit raised from {} to {} (the hard limit)",
               static_cast<unsigned long long>(was), static_cast<unsigned long long>(rl.rlim_max));
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = &on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGHUP, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

constexpr const char* kDefaultConfig = "/etc/cuframes/cuframes.yaml";

struct Args {
  std::string config = kDefaultConfig;
  std::string log_level;
  bool check = false;
  bool version = false;
};

void usage(FILE* f);

// "trace, debug, info, warn, error or off".
std::string log_levels_text() {
  const std::vector<std::string_view>& names = cfsvc::log_level_names();
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    s += i == 0 ? "" : i + 1 == names.size() ? " or " : ", ";
    s += names[i];
  }
  return s;
}

// The command line: this table drives both getopt_long and the usage text.
struct Option {
  const char* name;  // without the dashes
  char short_name;   // also accepted, not shown
  const char* arg;   // the value's name in the usage; nullptr for a flag
  std::string help;
  void (*set)(Args* a, const char* value);
};

const std::vector<Option>& options() {
  static const std::vector<Option> table = {
      {"config", 'c', "FILE", std::string("the YAML config (default ") + kDefaultConfig + ")",
       [](Args* a, const char* v) { a->config = v; }},
      {"log-level", 'l', "LEVEL", log_levels_text() + " (overrides log.level)",
       [](Args* a, const char* v) { a->log_level = v; }},
      {"check-config", 'k', nullptr, "validate the config and exit (0 valid, 2 not)",
       [](Args* a, const char*) { a->check = true; }},
      {"version", 'v', nullptr, "print versions and exit",
       [](Args* a, const char*) { a->version = true; }},
      {"help", 'h', nullptr, "print this text and exit",
       [](Args*, const char*) {
         usage(stdout);
         std::exit(0);
       }},
  };
  return table;
}

void usage(FILE* f) {
  std::string synopsis = "usage: cuframes-service", rows;
  for (const Option& o : options()) {
    std::string left = std::string("--") + o.name + (o.arg ? std::string(" ") + o.arg : "");
    synopsis += " [" + left + "]";
    left.resize(std::max<size_t>(left.size() + 1, 20), ' ');
    rows += "  " + left + o.help + "\n";
  }
  std::fprintf(f, "%s\n%s", synopsis.c_str(), rows.c_str());
}

bool parse_args(int argc, char** argv, Args* a) {
  std::vector<option> longopts;
  std::string shortopts;
  for (const Option& o : options()) {
    longopts.push_back({o.name, o.arg ? required_argument : no_argument, nullptr, o.short_name});
    shortopts += o.short_name;
    if (o.arg) shortopts += ':';
  }
  longopts.push_back({nullptr, 0, nullptr, 0});
  int c;
  while ((c = getopt_long(argc, argv, shortopts.c_str(), longopts.data(), nullptr)) != -1) {
    const Option* opt = nullptr;
    for (const Option& o : options()) {
      if (o.short_name == c) opt = &o;
    }
    if (opt == nullptr) return false;  // getopt said what is wrong
    opt->set(a, optarg);
  }
  return optind == argc;
}

// Starts, restarts (new settings) or stops the MQTT monitor to match `mqtt`.
void configure_mqtt(const std::optional<cfsvc::MqttConfig>& mqtt, const cfsvc::Service& service,
                    std::unique_ptr<cfsvc::MqttMonitor>* monitor) {
  if (*monitor && mqtt && (*monitor)->config() == *mqtt) return;  // unchanged: keeps running
  if (*monitor) spdlog::info("MQTT: {}", mqtt ? "settings changed, reconnecting" : "turned off");
  monitor->reset();  // says "offline" and disconnects
  if (mqtt) {
    *monitor =
        std::make_unique<cfsvc::MqttMonitor>(*mqtt, [&service] { return service.snapshot(); });
  }
}

// Periodic snapshots to the MQTT monitor (mqtt.snapshot_interval), or none. Turned off before
// the monitor is replaced: the worker then no longer calls the old one.
void configure_snapshots(const std::optional<cfsvc::MqttConfig>& mqtt, cfsvc::MqttMonitor* monitor,
                         cfsvc::SnapshotWorker* worker) {
  if (monitor == nullptr || !mqtt || mqtt->snapshot_interval.count() == 0) {
    worker->set_periodic(cfsvc::Duration{0}, 0, nullptr);
    return;
  }
  worker->set_periodic(mqtt->snapshot_interval, mqtt->snapshot_width,
                       [monitor](const std::string& camera, const cfsvc::SnapshotPicture& p) {
                         monitor->publish_snapshot(camera,
                                                   std::string(p.jpeg.begin(), p.jpeg.end()));
                       });
}

// Starts, restarts (new address) or stops the HTTP endpoint to match `http`; false with *error
// when it cannot listen.
bool configure_http(const std::optional<cfsvc::HttpConfig>& http, const cfsvc::Service& service,
                    cfsvc::SnapshotWorker* worker, std::unique_ptr<cfsvc::HttpServer>* server,
                    std::string* error) {
  if (*server && http && (*server)->config() == *http) return true;
  if (*server) spdlog::info("HTTP: {}", http ? "address changed, listening again" : "turned off");
  server->reset();
  if (!http) return true;
  cfsvc::HttpSources src;
  src.snapshot = [&service] { return service.snapshot(); };
  src.status_json = [&service] { return service.status_json(); };
  src.snapshots = worker;
  *server = cfsvc::HttpServer::start(*http, std::move(src), error);
  return *server != nullptr;
}

// Applies the config file again; on success *running becomes the new one. A reload that fails,
// whatever the reason (memory included), keeps the running config and cameras, and says why.
void reload(const std::string& path, cfsvc::Service* service, const std::string& log_override,
            cfsvc::Config* running, std::unique_ptr<cfsvc::MqttMonitor>* monitor,
            cfsvc::SnapshotWorker* worker, std::unique_ptr<cfsvc::HttpServer>* http) {
  try {
    cfsvc::Config next;  // the scratch config: the running one stays until this one is valid
    cfsvc::ConfigError err;
    if (!cfsvc::load_config(path, &next, &err)) {
      spdlog::error("reload refused, keeping the running config: {}", err.str());
      return;
    }
    std::string why;
    if (!service->apply(next, &why)) {
      spdlog::error("reload refused, keeping the running config: {}", why);
      return;
    }
    if (log_override.empty()) cfsvc::set_log_level(next.log.level);
    configure_snapshots(std::nullopt, nullptr, worker);
    configure_mqtt(next.mqtt, *service, monitor);
    configure_snapshots(next.mqtt, monitor->get(), worker);
    if (!configure_http(next.http, *service, worker, http, &why)) {
      spdlog::error("{}; HTTP is off until the config is fixed", why);
    }
    if (*monitor) (*monitor)->notify();  // cameras may have come or gone
    *running = std::move(next);
    spdlog::info("reloaded {} ({} camera{})", path, running->cameras.size(),
                 running->cameras.size() == 1 ? "" : "s");
  } catch (const std::bad_alloc&) {
    spdlog::error("reload refused, keeping the running config: out of memory");
  } catch (const std::exception& e) {
    spdlog::error("reload refused, keeping the running config: {}", e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, &args)) {
    usage(stderr);
    return 2;
  }
  if (args.version) {
    std::printf(
        "cuframes-service %s (libcuframes %s, protocol %u; libavformat %s, libavcodec %s; "
        "CUDA %s)\n",
        cuframes_version_string(), cuframes_version_string(), cuframes_protocol_version(),
        AV_STRINGIFY(LIBAVFORMAT_VERSION), AV_STRINGIFY(LIBAVCODEC_VERSION),
#ifdef CUFRAMES_WITH_CUDA
        "yes"
#else
        "no"
#endif
    );
    return 0;
  }

  // 1. The config: a bad one (or a bad --log-level) is a clear message and exit code 2.
  if (!args.log_level.empty() && !cfsvc::valid_log_level(args.log_level)) {
    std::string levels;
    for (std::string_view l : cfsvc::log_level_names()) {
      levels += (levels.empty() ? "" : ", ") + std::string(l);
    }
    std::fprintf(stderr, "cuframes-service: unknown --log-level '%s' (%s)\n",
                 args.log_level.c_str(), levels.c_str());
    return 2;
  }
  cfsvc::Config config;
  cfsvc::ConfigError err;
  if (!cfsvc::load_config(args.config, &config, &err)) {
    std::fprintf(stderr, "cuframes-service: %s\n", err.str().c_str());
    return 2;
  }
  if (config.http && !cfsvc::HttpServer::available()) {  // a config this build cannot serve
    std::string why;
    cfsvc::HttpServer::start(*config.http, {}, &why);  // says why not
    std::fprintf(stderr, "cuframes-service: %s: %s\n", config.path.c_str(), why.c_str());
    return 2;
  }
  if (args.check) {
    std::printf("%s: OK (%zu camera%s)\n", args.config.c_str(), config.cameras.size(),
                config.cameras.size() == 1 ? "" : "s");
    return 0;
  }

  // 2. Logging, signals.
  cfsvc::init_logging(args.log_level.empty() ? config.log.level : args.log_level);
  cfsvc::EventFd wake;
  g_wake = &wake;
  install_signal_handlers();
  spdlog::info("cuframes-service {} starting with {}", cuframes_version_string(), args.config);
  raise_fd_limit();

  // 3. The cameras, and the snapshot worker that reads them (MQTT, HTTP).
  cfsvc::Service service;
  std::string why;
  if (!service.apply(config, &why)) {
    spdlog::error("cannot start: {}", why);
    return 1;
  }
  service.write_status();
  cfsvc::SnapshotWorker snapshots([&service] { return service.snapshot(); });

  // 4. Health over MQTT (when configured): its own thread, reading snapshots of the service.
  // Then the HTTP endpoint (when configured); an address it cannot listen on stops the start.
  std::unique_ptr<cfsvc::MqttMonitor> monitor;
  configure_mqtt(config.mqtt, service, &monitor);
  configure_snapshots(config.mqtt, monitor.get(), &snapshots);
  std::unique_ptr<cfsvc::HttpServer> http;
  if (!configure_http(config.http, service, &snapshots, &http, &why)) {
    spdlog::error("cannot start: {}", why);
    configure_snapshots(std::nullopt, nullptr, &snapshots);
    monitor.reset();
    service.stop_all();
    return 1;
  }

  // 5. Wait for signals and state changes; keep the status file fresh.
  while (!g_stop.load()) {
    pollfd fds[2] = {{wake.fd(), POLLIN, 0}, {service.change_fd(), POLLIN, 0}};
    const int rc = poll(fds, 2, static_cast<int>(config.status_interval.count()));
    if (rc < 0 && errno != EINTR) {
      spdlog::error("poll: {}", std::strerror(errno));
      break;
    }
    wake.clear();
    if (fds[1].revents & POLLIN) {
      service.clear_change();
      if (monitor) monitor->notify();
    }
    if (g_reload.exchange(false)) {
      reload(args.config, &service, args.log_level, &config, &monitor, &snapshots, &http);
    }
    service.write_status();
  }

  // 6. Tear down in reverse.
  spdlog::info("stopping");
  http.reset();
  configure_snapshots(std::nullopt, nullptr, &snapshots);
  monitor.reset();  // "offline" while the cameras still run
  service.stop_all();
  g_wake = nullptr;
  spdlog::info("stopped");
  return 0;
}
