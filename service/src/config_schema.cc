#include "config_schema.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <span>

#include "config_text.h"
#include "config_url.h"
#include "ha_id.h"
#include "logging.h"

namespace cfsvc {
namespace {

// --- the table and its walk ----------------------------------------------------------------------

// One key of a section whose settings fill a T.
template <class T>
struct Key {
  std::string_view name;
  void (*parse)(const Value& v, T* target);  // reads v into *target, or throws Failure
  std::string_view doc;                      // one line; docs/configuration.md says more
  // A mapping whose keys are documented with this one's ("reconnect.initial").
  std::vector<KeyDoc> (*children)() = nullptr;
  // Camera keys only. The cameras the key applies to (UrlKind bits); set on another kind it is
  // an error (`elsewhere` says why), and from defaults: it leaves that camera at the built-in
  // value (`builtin`), so a change of it never restarts such a camera.
  unsigned applies = kAnyUrl;
  std::string_view elsewhere = {};
  void (*builtin)(T* target) = nullptr;
  bool per_camera = false;  // not in defaults: (url)
};

template <class T>
using Table = std::span<const Key<T>>;

template <class T>
std::vector<KeyDoc> docs_of(Table<T> table) {
  std::vector<KeyDoc> docs;
  for (const Key<T>& k : table) {
    docs.push_back({std::string(k.name), k.doc});
    if (k.children == nullptr) continue;
    for (KeyDoc& c : k.children()) docs.push_back({std::string(k.name) + "." + c.name, c.doc});
  }
  return docs;
}

// The keys that may be given (defaults: takes no per-camera key).
template <class T>
std::vector<std::string_view> key_names(Table<T> table, bool in_defaults) {
  std::vector<std::string_view> names;
  for (const Key<T>& k : table) {
    if (!(in_defaults && k.per_camera)) names.push_back(k.name);
  }
  return names;
}

// The keys given in a mapping: name -> its key node (a null node for one not given).
struct Given {
  std::map<std::string, YAML::Node, std::less<>> keys;
  bool has(std::string_view name) const { return keys.find(name) != keys.end(); }
  YAML::Node at(std::string_view name) const {
    auto it = keys.find(name);
    return it == keys.end() ? YAML::Node() : it->second;
  }
};

struct NoHook {
  template <class K>
  void operator()(const K*, const std::string&, const Value&) const {}
};

// Walks a mapping in order: keys must be scalars and unique, and in the table; each is parsed
// into *target by its entry. hook(entry or null, name, value) runs before: it may refuse a key
// with a message of its own; a key not in the table is then an error suggesting the closest.
template <class T, class Hook = NoHook>
Given walk(const Value& map, Table<T> table, T* target, Hook&& hook = {},
           bool in_defaults = false) {
  Given given;
  std::map<std::string, int> seen;  // key -> 1-based line of its first occurrence
  for (auto it = map.node().begin(); it != map.node().end(); ++it) {
    const YAML::Node k = it->first;
    if (!k.IsScalar()) map.fail_at(k, k, map.key(), "expected a key name, got " + Value::got(k));
    const std::string name = k.Scalar();
    const Value field = map.child(k, it->second, name);
    const auto [pos, fresh] = seen.emplace(name, k.Mark().line + 1);
    if (!fresh) {
      field.fail_at_key("duplicate key '" + name + "' (first at line " +
                        std::to_string(pos->second) + ")");
    }
    const Key<T>* key = nullptr;
    for (const Key<T>& e : table) {
      if (e.name == name && !(in_defaults && e.per_camera)) key = &e;
    }
    hook(key, name, field);
    if (key == nullptr) {
      if (name == "<<") {
        field.fail_at_key("YAML merge keys (<<) are not supported; use the defaults: block");
      }
      field.fail_at_key(unknown_key_message(name, key_names(table, in_defaults)));
    }
    key->parse(field, target);
    given.keys.emplace(name, k);
  }
  return given;
}

// A mapping section of T; null (all children commented out) counts as empty.
template <class T>
Given section(const Value& v, Table<T> table, T* target, const std::string& what) {
  if (!v.mapping(what)) return {};
  return walk(v, table, target);
}

// --- log: ----------------------------------------------------------------------------------------

const Key<LogConfig> kLogKeys[] = {
    {"level",
     [](const Value& v, LogConfig* l) {
       l->level = log_level_names()[v.choice(log_level_names())];
     },
     "spdlog level; --log-level overrides it"},
};

// --- cameras.<name> and defaults: ----------------------------------------------------------------

void parse_reconnect(const Value& v, ReconnectConfig* r);

const Key<ReconnectConfig> kReconnectKeys[] = {
    {"initial", [](const Value& v, ReconnectConfig* r) { r->initial = v.duration(Duration{1}); },
     "the first wait after a failure"},
    {"max", [](const Value& v, ReconnectConfig* r) { r->max = v.duration(Duration{1}); },
     "the wait doubles up to this (jittered by +-20%)"},
};

constexpr std::string_view kTestsrcOnly =
    "applies to testsrc:// cameras only (decoded cameras keep their stream's size)";

using Cam = CameraConfig;
const Key<Cam> kCameraKeys[] = {
    {.name = "url",
     .parse = [](const Value& v, Cam* c) { c->url = parse_url(v); },
     .doc = "what to decode: rtsp(s)://, http(s)://, file:// or a path, testsrc://",
     .per_camera = true},
    {"memory",
     [](const Value& v, Cam* c) {
       c->memory = v.choice_of({MemoryChoice::kAuto, MemoryChoice::kCuda, MemoryChoice::kHost});
     },
     "where the ring lives"},
    {"cuda_device",
     [](const Value& v, Cam* c) {
       c->cuda_device =
           static_cast<int>(v.integer(0, std::numeric_limits<int>::max(), "an integer >= 0"));
     },
     "the GPU that decodes and holds the ring"},
    {"decoder",
     [](const Value& v, Cam* c) {
       c->decoder =
           v.choice_of({DecoderChoice::kAuto, DecoderChoice::kNvdec, DecoderChoice::kSoftware,
                        DecoderChoice::kCuvid, DecoderChoice::kNvcuvid});
     },
     "NVDEC (FFmpeg's hwaccel, its *_cuvid decoders, or NVIDIA's parser and decoder called "
     "directly) or FFmpeg's software decoder"},
    {"output_format",
     [](const Value& v, Cam* c) {
       c->output_format =
           v.choice_of({OutputFormat::kAuto, OutputFormat::kNv12, OutputFormat::kP010});
     },
     "the ring's pixel format"},
    {"slots",
     [](const Value& v, Cam* c) {
       c->slots = static_cast<uint32_t>(v.integer(2, 64, "an integer 2..64"));
     },
     "frames in the ring"},
    {"policy",
     [](const Value& v, Cam* c) {
       c->policy = v.choice_of({RingPolicy::kDrop, RingPolicy::kStrictWait});
     },
     "what happens when every slot is held"},
    {"wait_timeout", [](const Value& v, Cam* c) { c->wait_timeout = v.duration(Duration{0}); },
     "strict_wait: the longest the decoder blocks on one frame"},
    {.name = "packet_ring",
     .parse = [](const Value& v, Cam* c) { c->packet_ring_bytes = v.packet_ring(); },
     .doc = "size of the encoded-packet ring, or off",
     .applies = kNetwork | kFile,
     .elsewhere = "applies to decoded cameras only (testsrc:// draws its frames: it has no "
                  "encoded packets, and its ring no packet ring)",
     .builtin = [](Cam* c) { c->packet_ring_bytes = 0; }},
    {"stall_timeout", [](const Value& v, Cam* c) { c->stall_timeout = v.duration(Duration{1}); },
     "no video for this long: stalled, reconnect"},
    {"open_timeout", [](const Value& v, Cam* c) { c->open_timeout = v.duration(Duration{1}); },
     "limit for connecting, opening and probing; socket I/O timeout"},
    {.name = "reconnect",
     .parse = [](const Value& v, Cam* c) { parse_reconnect(v, &c->reconnect); },
     .doc = "the backoff between attempts",
     .children = [] { return docs_of(Table<ReconnectConfig>(kReconnectKeys)); }},
    {"rtsp_transport",
     [](const Value& v, Cam* c) {
       c->rtsp_transport = v.choice_of({RtspTransport::kTcp, RtspTransport::kUdp});
     },
     "RTSP over TCP or UDP"},
    {"loop", [](const Value& v, Cam* c) { c->loop = v.boolean(); }, "files: start over at the end"},
    {"realtime", [](const Value& v, Cam* c) { c->realtime = v.boolean(); },
     "files: pace frames by their timestamps"},
    {.name = "width",
     .parse = [](const Value& v, Cam* c) { c->test_width = v.dimension(); },
     .doc = "testsrc: frame width",
     .applies = kTestsrc,
     .elsewhere = kTestsrcOnly,
     .builtin = [](Cam* c) { c->test_width = Cam{}.test_width; }},
    {.name = "height",
     .parse = [](const Value& v, Cam* c) { c->test_height = v.dimension(); },
     .doc = "testsrc: frame height",
     .applies = kTestsrc,
     .elsewhere = kTestsrcOnly,
     .builtin = [](Cam* c) { c->test_height = Cam{}.test_height; }},
    {.name = "fps",
     .parse = [](const Value& v, Cam* c) { c->fps = v.fps(); },
     .doc = "testsrc: its frame rate; files: the rate of a stream without timestamps",
     .applies = kTestsrc | kFile,
     .elsewhere = "applies to testsrc:// cameras and files (a network camera keeps its stream's "
                  "rate)",
     .builtin = [](Cam* c) { c->fps = Cam{}.fps; }},
};

void parse_reconnect(const Value& v, ReconnectConfig* r) {
  if (!v.mapping("a mapping with initial and max")) return;
  const Given given = walk(v, Table<ReconnectConfig>(kReconnectKeys), r);
  if (r->initial > r->max) {
    const bool at_initial = given.has("initial");
    v.fail_at(given.at(at_initial ? "initial" : "max"), v.key_node(),
              v.key() + (at_initial ? ".initial" : ".max"),
              "expected initial <= max, got initial " + format_duration(r->initial) + " and max " +
                  format_duration(r->max));
  }
}

// One camera: its settings over `base` (the built-in defaults and defaults:).
void parse_camera(const Value& v, const std::string& name, const CameraConfig& base, Config* cfg) {
  if (!v.node().IsNull() && !v.node().IsMap()) {
    v.expected("a mapping of camera settings (url: ...)");
  }
  CameraConfig c = base;
  c.name = name;

  // The kind of camera (its url) decides which keys may be given; look ahead.
  std::optional<UrlKind> kind;
  if (v.node().IsMap()) {
    for (auto it = v.node().begin(); it != v.node().end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "url" && it->second.IsScalar()) {
        kind = url_kind(it->second.Scalar());
        break;
      }
    }
  }
  Given given;
  if (v.node().IsMap()) {
    given = walk(v, Table<Cam>(kCameraKeys), &c,
                 [&](const Key<Cam>* key, const std::string& k, const Value& f) {
                   if (key == nullptr && k == "name") {
                     f.fail_at_key(
                         "a camera's name is its key under cameras:, not a setting "
                         "(here: '" +
                         name + "')");
                   }
                   if (key != nullptr && kind && !(key->applies & *kind)) {
                     f.fail_at_key("'" + k + "' " + std::string(key->elsewhere));
                   }
                 });
  }
  if (!given.has("url")) {
    v.fail_at(v.key_node(), v.key_node(), v.key() + ".url", "missing: every camera needs a url");
  }
  const UrlKind final_kind = url_kind(c.url);
  if (final_kind == kTestsrc) {
    UrlParams params;
    std::string unused;  // parse_url() checked them
    testsrc_params(c.url, &params, &unused);
    if (params.width) c.test_width = *params.width;
    if (params.height) c.test_height = *params.height;
    if (params.fps) c.fps = *params.fps;
  }
  // Keys of other kinds of camera stay at their built-in values, so that a change of, say,
  // defaults.width never restarts a decoded camera on reload.
  for (const Key<Cam>& key : kCameraKeys) {
    if (!(key.applies & final_kind)) key.builtin(&c);
  }
  // decoder: nvcuvid hands device pictures to a cuda ring; it never downloads them.
  if (final_kind != kTestsrc && c.decoder == DecoderChoice::kNvcuvid &&
      c.memory == MemoryChoice::kHost) {
    const char* key = given.has("memory") ? "memory" : given.has("decoder") ? "decoder" : nullptr;
    const YAML::Node at = key != nullptr ? given.at(key) : v.key_node();
    v.fail_at(at, v.key_node(), key != nullptr ? v.key() + "." + key : v.key(),
              "decoder: nvcuvid needs memory: cuda (or auto), got memory: host");
  }
  cfg->cameras.push_back(std::move(c));
}

// --- mqtt: ---------------------------------------------------------------------------------------

std::optional<MqttTlsConfig> parse_tls(const Value& v);

const Key<MqttTlsConfig> kTlsKeys[] = {
    {"ca_file", [](const Value& v, MqttTlsConfig* t) { t->ca_file = v.file_path(); },
     "the CA certificate(s) to verify the broker with"},
    {"cert_file", [](const Value& v, MqttTlsConfig* t) { t->cert_file = v.file_path(); },
     "a client certificate (with key_file)"},
    {"key_file", [](const Value& v, MqttTlsConfig* t) { t->key_file = v.file_path(); },
     "the client certificate's private key (with cert_file)"},
    {"insecure", [](const Value& v, MqttTlsConfig* t) { t->insecure = v.boolean(); },
     "skip the check that the broker's certificate is for host"},
};

const Key<MqttConfig> kMqttKeys[] = {
    {"host",
     [](const Value& v, MqttConfig* m) {
       m->host = v.text("a host name or address");
       if (m->host.empty()) v.fail("expected a host name or address, got nothing");
     },
     "the broker's host name or IP address"},
    {"port",
     [](const Value& v, MqttConfig* m) {
       m->port = static_cast<int>(v.integer(1, 65535, "a port 1..65535"));
     },
     "the broker's port"},
    {"client_id",
     [](const Value& v, MqttConfig* m) {
       m->client_id = v.text("a client id");
       if (m->client_id.empty() || m->client_id.size() > 64) {
         v.expected("a client id of 1..64 characters");
       }
     },
     "the MQTT client id"},
    {"username",
     [](const Value& v, MqttConfig* m) {
       m->username = v.scalar("a user name");
       // The client sends no credentials for an empty user name (and drops the password).
       if (m->username.empty()) v.fail("expected a user name, got ''");
     },
     "the user name to log in with"},
    {"password", [](const Value& v, MqttConfig* m) { m->password = v.scalar("a password"); },
     "the password that goes with username"},
    {.name = "tls",
     .parse = [](const Value& v, MqttConfig* m) { m->tls = parse_tls(v); },
     .doc = "connect over TLS",
     .children = [] { return docs_of(Table<MqttTlsConfig>(kTlsKeys)); }},
    {"keepalive",
     [](const Value& v, MqttConfig* m) {
       // MQTT carries it as a 16-bit count of seconds.
       m->keepalive = v.duration(Duration{1000}, Duration{65535 * 1000});
     },
     "the MQTT keepalive"},
    {"node_id", [](const Value& v, MqttConfig* m) { m->node_id = v.node_id(); },
     "tells hosts apart on one broker"},
    {"base_topic", [](const Value& v, MqttConfig* m) { m->base_topic = v.topic(); },
     "the prefix of every state topic"},
    {"stats_interval",
     [](const Value& v, MqttConfig* m) { m->stats_interval = v.duration(Duration{100}); },
     "how often the states are published"},
    {"discovery", [](const Value& v, MqttConfig* m) { m->discovery = v.boolean(); },
     "publish Home Assistant discovery configs"},
    {"discovery_prefix", [](const Value& v, MqttConfig* m) { m->discovery_prefix = v.topic(); },
     "Home Assistant's discovery prefix"},
    {"qos",
     [](const Value& v, MqttConfig* m) { m->qos = static_cast<int>(v.integer(0, 1, "0 or 1")); },
     "the QoS of everything the service publishes and subscribes to"},
    {"snapshot_interval",
     [](const Value& v, MqttConfig* m) {
       m->snapshot_interval = v.duration(Duration{0});
       if (m->snapshot_interval.count() != 0 && m->snapshot_interval < Duration{100}) {
         v.expected("0 (off) or a duration of at least 100ms");
       }
     },
     "how often each streaming camera's JPEG is published (0: off)"},
    {"snapshot_width",
     [](const Value& v, MqttConfig* m) {
       m->snapshot_width = static_cast<uint32_t>(v.integer(16, 16384, "a width 16..16384"));
     },
     "the snapshots' largest width"},
};

// http: {listen: "HOST:PORT"}; HOST an address or a name, an IPv6 address in brackets.
void parse_listen(const Value& v, HttpConfig* h) {
  const std::string what = "HOST:PORT (e.g. \"127.0.0.1:9900\", \"0.0.0.0:9900\", \"[::1]:9900\")";
  const std::string s = v.text(what);
  const size_t colon = s.rfind(':');
  std::string host = colon == std::string::npos ? std::string() : s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    host.clear();  // an IPv6 address needs its brackets
  }
  const std::string p = colon == std::string::npos ? std::string() : s.substr(colon + 1);
  bool ok = !host.empty() && !p.empty() && p.size() <= 5;
  for (char c : p) ok = ok && c >= '0' && c <= '9';
  const uint64_t port = ok ? std::stoull(p) : 0;
  if (port < 1 || port > 65535) v.expected(what);
  h->listen = s;
  h->host = host;
  h->port = static_cast<int>(port);
}

const Key<HttpConfig> kHttpKeys[] = {
    {"listen", parse_listen, "the address and port to serve on"},
};

HttpConfig parse_http(const Value& v) {
  HttpConfig h;
  const Given given =
      section(v, Table<HttpConfig>(kHttpKeys), &h, "a mapping (listen: \"127.0.0.1:9900\")");
  if (!given.has("listen")) {
    v.fail_at(v.key_node(), v.key_node(), v.key() + ".listen",
              "missing: the address to listen on is required");
  }
  return h;
}

std::optional<MqttTlsConfig> parse_tls(const Value& v) {
  if (v.node().IsScalar()) {
    // tls: true is TLS verified against the system's CA store (as tls: {}); false is plain
    // TCP (as no tls at all).
    const std::string s = lower(trim(v.node().Scalar()));
    if (s == "true" || s == "yes" || s == "on") return MqttTlsConfig{};
    if (s == "false" || s == "no" || s == "off") return std::nullopt;
  }
  MqttTlsConfig t;
  section(v, Table<MqttTlsConfig>(kTlsKeys), &t,
          "true, false or a mapping (ca_file: ..., cert_file: ..., key_file: ...)");
  if (t.cert_file.empty() != t.key_file.empty()) {
    v.fail_at_key("cert_file and key_file go together");
  }
  return t;
}

// The MQTT defaults that depend on other settings.

// "cuframes-<node_id>", within the 64 characters a given client_id may have: a longer one keeps
// its first 46 characters of node_id and adds a hash of all of it, so two long node_ids that
// differ only at the end still get different ids (one id knocks the other off the broker).
std::string default_client_id(const std::string& node_id) {
  std::string id = "cuframes-" + node_id;
  if (id.size() <= 64) return id;
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : node_id) h = (h ^ c) * 16777619u;
  char tail[10];
  std::snprintf(tail, sizeof tail, "-%08x", h);
  return id.substr(0, 64 - 9) + tail;
}

// The host name (up to its first '.') as a node id: lower case, a-z 0-9 words joined by '_'.
std::string default_node_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "cuframes";
  const std::string_view name = std::string_view(host, std::strcspn(host, ".")).substr(0, 64);
  const std::string id = ha_id(name);
  return id == "x" && name != "x" ? "cuframes" : id;  // "x": nothing of the name was left
}

MqttConfig parse_mqtt(const Value& v) {
  MqttConfig m;
  const Given given =
      section(v, Table<MqttConfig>(kMqttKeys), &m, "a mapping (host: ..., port: ...)");
  if (!given.has("host")) {
    v.fail_at(v.key_node(), v.key_node(), v.key() + ".host",
              "missing: the broker's host is required");
  }
  if (given.has("password") && !given.has("username")) {
    const YAML::Node at = given.at("password");
    v.fail_at(at, at, v.key() + ".password", "a password needs a username");
  }
  if (!given.has("port") && m.tls) m.port = 8883;
  if (m.node_id.empty()) m.node_id = default_node_id();
  if (m.client_id.empty()) m.client_id = default_client_id(m.node_id);
  if (m.base_topic.empty()) m.base_topic = "cuframes/" + m.node_id;
  return m;
}

// --- the top level -------------------------------------------------------------------------------

// What the top level fills.
struct Document {
  Config* cfg = nullptr;
  std::optional<Value> defaults;  // the defaults: block, wherever it stands
  CameraConfig base;              // the built-in defaults and defaults:
  bool defaults_done = false;
};

// defaults: applies to cameras wherever it appears in the file; it is parsed when first needed
// (at cameras:, or where it stands when that comes first).
void parse_defaults(Document* d) {
  if (d->defaults_done) return;
  d->defaults_done = true;
  if (!d->defaults || !d->defaults->mapping("a mapping of camera settings applied to every camera"))
    return;
  walk(
      *d->defaults, Table<Cam>(kCameraKeys), &d->base,
      [](const Key<Cam>* key, const std::string& k, const Value& f) {
        if (key == nullptr && (k == "url" || k == "name")) {
          f.fail_at_key("'" + k + "' is per camera and cannot be set in defaults:");
        }
      },
      /*in_defaults=*/true);
}

void parse_cameras(const Value& v, Document* d) {
  parse_defaults(d);
  if (v.node().IsNull()) v.fail("expected at least one camera, got nothing");
  if (!v.node().IsMap()) {
    v.expected("a mapping of camera name to settings (parking: {url: ...})");
  }
  if (v.node().size() == 0) v.fail("expected at least one camera, got none");
  std::map<std::string, int> seen;
  std::map<std::string, std::string> ids;  // ha_id -> the camera name that has it
  for (auto it = v.node().begin(); it != v.node().end(); ++it) {
    const YAML::Node ck = it->first;
    if (!ck.IsScalar()) v.fail_at(ck, ck, v.key(), "expected a camera name, got " + Value::got(ck));
    const std::string name = ck.Scalar();
    const Value camera = v.child(ck, it->second, name);
    if (!valid_camera_name(name)) {
      camera.fail_at_key("expected a camera name of 1..59 characters A-Z a-z 0-9 . _ -, got " +
                         Value::got(ck));
    }
    const auto [pos, fresh] = seen.emplace(name, ck.Mark().line + 1);
    if (!fresh) {
      camera.fail_at_key("duplicate camera name '" + name + "' (first defined at line " +
                         std::to_string(pos->second) + ")");
    }
    // One id per camera in MQTT topics and Home Assistant (ha_id.h).
    const auto [other, unique] = ids.emplace(ha_id(name), name);
    if (!unique) {
      camera.fail_at_key("cameras '" + other->second + "' and '" + name + "' would share the id '" +
                         other->first + "' in MQTT topics and Home Assistant: rename one");
    }
    parse_camera(camera, name, d->base, d->cfg);
  }
}

const Key<Document> kTopKeys[] = {
    {"runtime_dir",
     [](const Value& v, Document* d) {
       const std::string s = v.text("an absolute directory path");
       if (s.empty() || s.front() != '/') v.expected("an absolute directory path");
       d->cfg->runtime_dir = s;
     },
     "where the rendezvous sockets and the status file live"},
    {.name = "log",
     .parse =
         [](const Value& v, Document* d) {
           section(v, Table<LogConfig>(kLogKeys), &d->cfg->log, "a mapping (level: info)");
         },
     .doc = "logging",
     .children = [] { return docs_of(Table<LogConfig>(kLogKeys)); }},
    {"status_interval",
     [](const Value& v, Document* d) { d->cfg->status_interval = v.duration(Duration{1}); },
     "how often the status file is rewritten"},
    {"defaults", [](const Value&, Document* d) { parse_defaults(d); },
     "camera settings applied to every camera"},
    {"cameras", [](const Value& v, Document* d) { parse_cameras(v, d); },
     "camera name -> camera settings"},
    {"mqtt", [](const Value& v, Document* d) { d->cfg->mqtt = parse_mqtt(v); },
     "health reporting over MQTT, with Home Assistant discovery"},
    {"http", [](const Value& v, Document* d) { d->cfg->http = parse_http(v); },
     "the HTTP endpoint: metrics, status, snapshots, a page"},
};

}  // namespace

void parse_document(const YAML::Node& root, const Source& src, Config* cfg) {
  const YAML::Node none;
  const Value top(src, none, root, "");
  if (!root.IsDefined() || root.IsNull()) {
    top.fail_at(none, none, "",
                "the file is empty: expected a mapping with a cameras: section (see "
                "docs/configuration.md)");
  }
  if (!root.IsMap()) {
    top.fail_at(root, root, "",
                "expected a mapping of settings at the top level, got " + Value::got(root));
  }
  Document d;
  d.cfg = cfg;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "defaults") {
      d.defaults = top.child(it->first, it->second, "defaults");
      break;
    }
  }
  const Given given = walk(top, Table<Document>(kTopKeys), &d);
  if (!given.has("cameras")) {
    top.fail_at(root, root, "cameras",
                "missing: at least one camera is required (cameras: {name: {url: ...}})");
  }
}

std::vector<SchemaSection> config_schema() {
  return {{"Top level", docs_of(Table<Document>(kTopKeys))},
          {"Cameras", docs_of(Table<Cam>(kCameraKeys))},
          {"MQTT", docs_of(Table<MqttConfig>(kMqttKeys))},
          {"HTTP", docs_of(Table<HttpConfig>(kHttpKeys))}};
}

}  // namespace cfsvc
