// The HTTP endpoint (docs/http.md), on only when the config has `http: {listen: HOST:PORT}`:
//   GET /metrics                                   Prometheus text exposition (metrics.h)
//   GET /api/status                                the status file's JSON
//   GET /api/cameras/<name>/snapshot.jpg?width=N   a fresh JPEG of the camera (snapshot.h)
//   GET /                                          a page of the cameras, refreshing itself
// cpp-httplib (Debian's libcpp-httplib-dev) serves it on a few threads of its own: the cameras
// never wait for a client. Requests are bounded (URI and header sizes, no bodies, read and write
// timeouts, a few connections served at a time); anything else is a clear 4xx.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "health.h"
#include "nvml.h"
#include "snapshot.h"

namespace cfsvc {

struct HttpSources {
  std::function<ServiceSnapshot()> snapshot;  // thread-safe
  std::function<std::string()> status_json;   // thread-safe
  SnapshotWorker* snapshots = nullptr;        // outlives the server
};

class HttpServer {
 public:
  // Whether this build has the HTTP endpoint (CMake: CUFRAMES_HTTP).
  static bool available();
  // Binds to config.listen and starts serving; nullptr with *error naming the address (or
  // saying that this build has no HTTP) when it cannot.
  static std::unique_ptr<HttpServer> start(const HttpConfig& config, HttpSources sources,
                                           std::string* error);
  ~HttpServer();  // stops serving and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const HttpConfig& config() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The page at / (no external assets): every camera with its snapshot and state.
std::string index_page(const ServiceSnapshot& s);

}  // namespace cfsvc
