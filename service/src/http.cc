#include "http.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <thread>

#ifdef CUFRAMES_WITH_HTTP
#include <httplib.h>
#endif

#include "metrics.h"

namespace cfsvc {
namespace {

// What a client can hold: the longest wait for a camera's next frame, the read and write
// timeouts (a slow client is dropped), the requests served at a time (more wait queued).
constexpr Duration kSnapshotWait{1000};
constexpr int kIoTimeoutS = 5;
constexpr size_t kWorkers = 4;
constexpr int kKeepAliveRequests = 20;
constexpr const char* kEndpoints =
    "GET /, /metrics, /api/status, /api/cameras/<name>/snapshot.jpg?width=N";

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

std::string index_page(const ServiceSnapshot& s) {
  std::string h = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cuframes</title>
<noscript><meta http-equiv="refresh" content="10"></noscript>
<style>
body{font-family:sans-serif;margin:1em;background:#111;color:#eee}
h1{font-size:1.2em;font-weight:normal}
main{display:flex;flex-wrap:wrap;gap:1em}
.cam{background:#222;padding:.5em;border-radius:6px;width:480px}
.cam img{width:100%;background:#000;min-height:60px;display:block}
.state{float:right;padding:0 .4em;border-radius:4px;background:#555}
.state.streaming{background:#2a6}.state.stalled,.state.error{background:#b33}
.info{font-size:.85em;color:#aaa}
</style></head><body>
<h1>cuframes: )";
  h += std::to_string(s.cameras.size()) + " camera" + (s.cameras.size() == 1 ? "" : "s");
  h += "</h1>\n<main>\n";
  for (const CameraStatus& c : s.cameras) {
    const std::string n = html_escape(c.name);
    h += "<section class=\"cam\" data-camera=\"" + n + "\">\n<h2>" + n + " <span class=\"state " +
         html_escape(c.state) + "\">" + html_escape(c.state) + "</span></h2>\n";
    h += "<img alt=\"" + n + "\" src=\"/api/cameras/" + n +
         "/snapshot.jpg?width=480\" onload=\"this.dataset.loaded=this.naturalWidth\">\n";
    h += "<div class=\"info\">" +
         (c.state != "streaming" && !c.error.empty()
              ? html_escape(c.error)
              : std::to_string(c.width) + "x" + std::to_string(c.height) + " " +
                    html_escape(c.codec) + ", " + fmt::format("{:.1f}", c.fps) + " fps, " +
                    std::to_string(c.subscribers) + " subscriber" +
                    (c.subscribers == 1 ? "" : "s")) +
         "</div>\n</section>\n";
  }
  h += R"(</main>
<script>
// Every 5 s: each camera's state and a new picture (an image that fails keeps the old one).
setInterval(async () => {
  let st = null;
  try { st = await (await fetch('/api/status', {cache: 'no-store'})).json(); } catch (e) {}
  for (const sec of document.querySelectorAll('section.cam')) {
    const name = sec.dataset.camera, cam = st && st.cameras[name];
    if (cam) {
      const s = sec.querySelector('.state');
      s.textContent = cam.state; s.className = 'state ' + cam.state;
      sec.querySelector('.info').textContent = cam.state !== 'streaming' && cam.error ? cam.error :
        cam.width + 'x' + cam.height + ' ' + cam.codec + ', ' + cam.fps.toFixed(1) + ' fps, ' +
        cam.subscribers + ' subscriber' + (cam.subscribers == 1 ? '' : 's');
    }
    if (!cam || cam.state !== 'streaming') continue;
    const img = new Image();
    img.onload = () => { const old = sec.querySelector('img'); old.src = img.src; };
    img.src = '/api/cameras/' + encodeURIComponent(name) + '/snapshot.jpg?width=480&t=' + Date.now();
  }
}, 5000);
</script>
</body></html>
)";
  return h;
}

#ifdef CUFRAMES_WITH_HTTP

struct HttpServer::Impl {
  HttpConfig cfg;
  HttpSources src;
  httplib::Server server;
  std::thread thread;
};

bool HttpServer::available() {
  return true;
}

namespace {

void text(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body + "\n", "text/plain; charset=utf-8");
}

void snapshot(const HttpSources& src, const httplib::Request& req, httplib::Response& res) {
  const std::string camera = req.matches[1];
  uint32_t width = 0;
  if (req.has_param("width")) {
    const std::string w = req.get_param_value("width");
    bool ok = !w.empty() && w.size() <= 5;
    for (char c : w) ok = ok && c >= '0' && c <= '9';
    const unsigned long v = ok ? std::stoul(w) : 0;
    if (!ok || v < 16 || v > 16384) {
      return text(res, 400, "width: expected an integer 16..16384, got '" + w + "'");
    }
    width = static_cast<uint32_t>(v);
  }
  SnapshotWorker::Result r = src.snapshots->take(camera, width, kSnapshotWait);
  switch (r.outcome) {
    case SnapshotWorker::Outcome::kOk:
      res.set_header("Cache-Control", "no-store");
      res.set_content(std::string(r.picture.jpeg.begin(), r.picture.jpeg.end()), "image/jpeg");
      return;
    case SnapshotWorker::Outcome::kUnknownCamera: {
      std::string names;
      for (const CameraStatus& c : src.snapshot().cameras)
        names += (names.empty() ? "" : ", ") + c.name;
      return text(res, 404, r.message + " (cameras: " + (names.empty() ? "none" : names) + ")");
    }
    case SnapshotWorker::Outcome::kNoFrame:
      res.set_header("Retry-After", "1");
      return text(res, 503, r.message);
    case SnapshotWorker::Outcome::kError:
      return text(res, 500, r.message);
  }
}

}  // namespace

std::unique_ptr<HttpServer> HttpServer::start(const HttpConfig& config, HttpSources sources,
                                              std::string* error) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = config;
  impl->src = std::move(sources);
  httplib::Server& s = impl->server;
  const HttpSources* src = &impl->src;  // lives as long as the server
  s.new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  s.set_read_timeout(kIoTimeoutS, 0);
  s.set_write_timeout(kIoTimeoutS, 0);
  s.set_keep_alive_timeout(kIoTimeoutS);
  s.set_keep_alive_max_count(kKeepAliveRequests);
  s.set_payload_max_length(4096);  // GETs have no body
  s.Get("/", [src](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(index_page(src->snapshot()), "text/html; charset=utf-8");
  });
  s.Get("/metrics", [src](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_metrics(src->snapshot(), query_gpu(), src->snapshots->counters()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  s.Get("/api/status", [src](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(src->status_json() + "\n", "application/json");
  });
  s.Get(R"(/api/cameras/([^/]+)/snapshot\.jpg)",
        [src](const httplib::Request& req, httplib::Response& res) { snapshot(*src, req, res); });
  auto not_allowed = [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", "GET, HEAD");
    text(res, 405, "method " + req.method + " is not allowed: only GET (" + kEndpoints + ")");
  };
  s.Post(".*", not_allowed);
  s.Put(".*", not_allowed);
  s.Patch(".*", not_allowed);
  s.Delete(".*", not_allowed);
  s.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours says why
        std::string why;
        switch (res.status) {
          case 404:
            why = "no such path: " + req.path + " (" + kEndpoints + ")";
            break;
          case 413:
            why = "request body too large (GET requests have none)";
            break;
          case 414:
            why = "request URI too long";
            break;
          default:
            why = "bad request";
            break;
        }
        text(res, res.status, std::to_string(res.status) + " " + why);
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    spdlog::debug("HTTP {} {} -> {}", req.method, req.path, res.status);
  });
  errno = 0;
  if (!s.bind_to_port(config.host, config.port)) {
    const int err = errno;
    *error = "http.listen: cannot listen on " + config.listen +
             (err != 0 ? std::string(": ") + std::strerror(err) : std::string()) +
             " (in use, or not an address of this host?)";
    return nullptr;
  }
  Impl* p = impl.get();
  impl->thread = std::thread([p] {
    if (!p->server.listen_after_bind()) spdlog::error("HTTP: serving {} stopped", p->cfg.listen);
  });
  spdlog::info("HTTP: serving http://{}/ ({})", config.listen, kEndpoints);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

#else  // no cpp-httplib in this build

struct HttpServer::Impl {
  HttpConfig cfg;
};

bool HttpServer::available() {
  return false;
}

std::unique_ptr<HttpServer> HttpServer::start(const HttpConfig& config, HttpSources,
                                              std::string* error) {
  *error =
      "http: this cuframes-service was built without HTTP support (cpp-httplib was not "
      "found: install libcpp-httplib-dev and build with -DCUFRAMES_HTTP=ON), so 'http: "
      "{listen: " +
      config.listen + "}' cannot be served; remove the http: section";
  return nullptr;
}

HttpServer::~HttpServer() = default;

#endif

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

const HttpConfig& HttpServer::config() const {
  return impl_->cfg;
}

}  // namespace cfsvc
