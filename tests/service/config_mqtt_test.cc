// cuframes-service configuration parser: the mqtt: section, its defaults and its errors.
#include "config_test_util.h"

namespace cfsvc {
namespace {

using namespace config_test;  // NOLINT: the helpers above every test
namespace fs = std::filesystem;
using std::chrono::milliseconds;

// --- mqtt: ---------------------------------------------------------------------------------------

// The node id the parser derives from this machine's host name: the name up to its first '.',
// lower case, every run of other characters one '_' between words, at most 64 characters.
std::string HostNodeId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "cuframes";
  std::string id;
  bool gap = false;
  for (const char* c = host; *c && *c != '.'; ++c) {
    const char l = (*c >= 'A' && *c <= 'Z') ? static_cast<char>(*c - 'A' + 'a') : *c;
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9')) {
      if (gap && !id.empty()) id += '_';
      gap = false;
      id += l;
    } else {
      gap = true;
    }
  }
  if (id.size() > 64) id.resize(64);
  while (!id.empty() && id.back() == '_') id.pop_back();
  return id.empty() ? "cuframes" : id;
}

// A Home Assistant id: lower-case a-z 0-9 words joined by single '_'.
bool IsHaId(const std::string& s) {
  return std::regex_match(s, std::regex("[a-z0-9]+(_[a-z0-9]+)*"));
}

const char* const kOneCamera = "cameras: {a: {url: testsrc://}}\n";

// "mqtt:" on line 1, then `body` (its keys indented by two) from line 2, then one camera.
std::string WithMqtt(const std::string& body) {
  return "mqtt:\n" + body + kOneCamera;
}

TEST(ConfigMqtt, HostOnlyGetsEveryDefault) {
  const Config cfg = MustParse(WithMqtt("  host: broker.lan\n"));
  ASSERT_TRUE(cfg.mqtt.has_value());
  const MqttConfig& m = *cfg.mqtt;
  const std::string node = HostNodeId();
  EXPECT_EQ(m.host, "broker.lan");
  EXPECT_EQ(m.port, 1883);
  EXPECT_EQ(m.client_id, "cuframes-" + node);
  EXPECT_EQ(m.username, "");
  EXPECT_EQ(m.password, "");
  EXPECT_FALSE(m.tls.has_value());
  EXPECT_EQ(m.keepalive, milliseconds(30000));
  EXPECT_EQ(m.node_id, node);
  EXPECT_EQ(m.base_topic, "cuframes/" + node);
  EXPECT_EQ(m.stats_interval, milliseconds(10000));
  EXPECT_TRUE(m.discovery);
  EXPECT_EQ(m.discovery_prefix, "homeassistant");
  EXPECT_EQ(m.qos, 1);
  // The struct's own defaults are the documented ones.
  const MqttConfig d;
  EXPECT_EQ(d.port, m.port);
  EXPECT_EQ(d.keepalive, m.keepalive);
  EXPECT_EQ(d.stats_interval, m.stats_interval);
  EXPECT_EQ(d.discovery, m.discovery);
  EXPECT_EQ(d.discovery_prefix, m.discovery_prefix);
  EXPECT_EQ(d.qos, m.qos);
  // The cameras are what they would be without MQTT.
  ASSERT_EQ(cfg.cameras.size(), 1u);
  EXPECT_EQ(cfg.cameras[0], MustParse(kOneCamera).cameras[0]);
}

TEST(ConfigMqtt, DefaultNodeIdIsTheHostName) {
  const Config cfg = MustParse(WithMqtt("  host: localhost\n"));
  ASSERT_TRUE(cfg.mqtt.has_value());
  const std::string id = cfg.mqtt->node_id;
  EXPECT_EQ(id, HostNodeId());
  EXPECT_TRUE(IsHaId(id)) << id;
  EXPECT_LE(id.size(), 64u);
  // The default is a node_id the config accepts, and gives the same settings when written out.
  const Config same = MustParse(WithMqtt("  host: localhost\n  node_id: " + id + "\n"));
  ASSERT_TRUE(same.mqtt.has_value());
  EXPECT_EQ(*same.mqtt, *cfg.mqtt);
}

TEST(ConfigMqtt, EveryKeyParsed) {
  const Config cfg = MustParse(Y(R"(
mqtt:
  host: 192.168.1.5
  port: 1884
  client_id: nvr-main
  username: cuframes
  password: "s3cret: #1"
  tls:
    ca_file: certs/ca.crt
    cert_file: /etc/ssl/client.crt
    key_file: client.key
    insecure: yes
  keepalive: 1m
  node_id: nvr_1
  base_topic: site/cuframes
  stats_interval: 2.5s
  discovery: off
  discovery_prefix: ha/discovery
  qos: 0
cameras:
  a: {url: testsrc://}
)"),
                               "/etc/cuframes/cuframes.yaml");
  ASSERT_TRUE(cfg.mqtt.has_value());
  const MqttConfig& m = *cfg.mqtt;
  EXPECT_EQ(m.host, "192.168.1.5");
  EXPECT_EQ(m.port, 1884);  // a port given wins over the TLS default
  EXPECT_EQ(m.client_id, "nvr-main");
  EXPECT_EQ(m.username, "cuframes");
  EXPECT_EQ(m.password, "s3cret: #1");
  ASSERT_TRUE(m.tls.has_value());
  // Relative files are resolved against the config file's directory.
  EXPECT_EQ(m.tls->ca_file, "/etc/cuframes/certs/ca.crt");
  EXPECT_EQ(m.tls->cert_file, "/etc/ssl/client.crt");
  EXPECT_EQ(m.tls->key_file, "/etc/cuframes/client.key");
  EXPECT_TRUE(m.tls->insecure);
  EXPECT_EQ(m.keepalive, milliseconds(60000));
  EXPECT_EQ(m.node_id, "nvr_1");
  EXPECT_EQ(m.base_topic, "site/cuframes");
  EXPECT_EQ(m.stats_interval, milliseconds(2500));
  EXPECT_FALSE(m.discovery);
  EXPECT_EQ(m.discovery_prefix, "ha/discovery");
  EXPECT_EQ(m.qos, 0);
}

TEST(ConfigMqtt, TlsAndItsPort) {
  // An empty tls: (or {}) is TLS with the system's CA store; the port becomes 8883.
  for (const char* tls : {"  tls:\n", "  tls: {}\n"}) {
    const Config cfg = MustParse(WithMqtt(std::string("  host: b\n") + tls));
    ASSERT_TRUE(cfg.mqtt.has_value()) << tls;
    EXPECT_EQ(cfg.mqtt->port, 8883) << tls;
    ASSERT_TRUE(cfg.mqtt->tls.has_value()) << tls;
    EXPECT_EQ(*cfg.mqtt->tls, MqttTlsConfig{}) << tls;
    EXPECT_EQ(cfg.mqtt->tls->ca_file, "");
    EXPECT_FALSE(cfg.mqtt->tls->insecure);
  }
  // A port given is kept, with or without TLS.
  EXPECT_EQ(MustParse(WithMqtt("  host: b\n  port: 1883\n  tls: {insecure: true}\n")).mqtt->port,
            1883);
  const Config plain = MustParse(WithMqtt("  host: b\n  port: 8883\n"));
  EXPECT_EQ(plain.mqtt->port, 8883);
  EXPECT_FALSE(plain.mqtt->tls.has_value());
  // tls: true is the same as tls: {}; tls: false is plain TCP.
  for (const char* on : {"true", "yes", "on", "True"}) {
    const Config cfg = MustParse(WithMqtt(std::string("  host: b\n  tls: ") + on + "\n"));
    ASSERT_TRUE(cfg.mqtt->tls.has_value()) << on;
    EXPECT_EQ(*cfg.mqtt->tls, MqttTlsConfig{}) << on;
    EXPECT_EQ(cfg.mqtt->port, 8883) << on;
  }
  for (const char* off : {"false", "no", "off"}) {
    const Config cfg = MustParse(WithMqtt(std::string("  host: b\n  tls: ") + off + "\n"));
    EXPECT_FALSE(cfg.mqtt->tls.has_value()) << off;
    EXPECT_EQ(cfg.mqtt->port, 1883) << off;
  }
  // The port default does not depend on where tls: stands.
  EXPECT_EQ(MustParse(WithMqtt("  tls: {}\n  host: b\n")).mqtt->port, 8883);
  // A client certificate with its key; absolute paths are kept.
  const Config cert = MustParse(
      WithMqtt("  host: b\n  tls: {cert_file: /c/client.crt, key_file: /c/client.key}\n"));
  EXPECT_EQ(cert.mqtt->tls->cert_file, "/c/client.crt");
  EXPECT_EQ(cert.mqtt->tls->key_file, "/c/client.key");
  EXPECT_EQ(cert.mqtt->tls->ca_file, "");
}

TEST(ConfigMqtt, DerivedDefaultsFollowNodeId) {
  const Config cfg = MustParse(WithMqtt("  host: b\n  node_id: garage\n"));
  EXPECT_EQ(cfg.mqtt->node_id, "garage");
  EXPECT_EQ(cfg.mqtt->client_id, "cuframes-garage");
  EXPECT_EQ(cfg.mqtt->base_topic, "cuframes/garage");
  // Given ones are kept as they are, wherever node_id stands.
  const Config given = MustParse(
      WithMqtt("  base_topic: home/nvr\n  client_id: my-client\n  host: b\n  node_id: garage\n"));
  EXPECT_EQ(given.mqtt->client_id, "my-client");
  EXPECT_EQ(given.mqtt->base_topic, "home/nvr");
}

TEST(ConfigMqtt, DefaultClientIdStaysWithin64Characters) {
  // node_id may have 64 characters; "cuframes-" + it would have 73, more than a given client_id
  // may have. Two such node_ids differing only at their end still get different ids.
  const std::string a(64, 'a');
  const std::string b = std::string(63, 'a') + "b";
  const Config ca = MustParse(WithMqtt("  host: b\n  node_id: " + a + "\n"));
  const Config cb = MustParse(WithMqtt("  host: b\n  node_id: " + b + "\n"));
  EXPECT_EQ(ca.mqtt->client_id.size(), 64u) << ca.mqtt->client_id;
  EXPECT_EQ(cb.mqtt->client_id.size(), 64u) << cb.mqtt->client_id;
  EXPECT_EQ(ca.mqtt->client_id.rfind("cuframes-aaaa", 0), 0u) << ca.mqtt->client_id;
  EXPECT_NE(ca.mqtt->client_id, cb.mqtt->client_id);
  // One that fits is kept whole.
  const std::string fits(55, 'c');
  const Config cf = MustParse(WithMqtt("  host: b\n  node_id: " + fits + "\n"));
  EXPECT_EQ(cf.mqtt->client_id, "cuframes-" + fits);
}

TEST(ConfigMqtt, ValueRanges) {
  auto mqtt = [](const std::string& body) {
    const Config cfg = MustParse(WithMqtt("  host: b\n" + body));
    EXPECT_TRUE(cfg.mqtt.has_value()) << body;
    return cfg.mqtt.value_or(MqttConfig{});
  };
  EXPECT_EQ(mqtt("  port: 1\n").port, 1);
  EXPECT_EQ(mqtt("  port: 65535\n").port, 65535);
  EXPECT_EQ(mqtt("  qos: 0\n").qos, 0);
  EXPECT_EQ(mqtt("  qos: 1\n").qos, 1);
  EXPECT_EQ(mqtt("  keepalive: 1s\n").keepalive, milliseconds(1000));
  EXPECT_EQ(mqtt("  keepalive: 65535s\n").keepalive, milliseconds(65535000));
  EXPECT_EQ(mqtt("  keepalive: 45\n").keepalive, milliseconds(45000));  // bare seconds
  EXPECT_EQ(mqtt("  stats_interval: 100ms\n").stats_interval, milliseconds(100));
  EXPECT_EQ(mqtt("  stats_interval: 24h\n").stats_interval, milliseconds(86400000));
  for (const char* yes : {"true", "yes", "on", "True"}) {
    EXPECT_TRUE(mqtt(std::string("  discovery: ") + yes + "\n").discovery) << yes;
  }
  for (const char* no : {"false", "no", "off", "NO"}) {
    EXPECT_FALSE(mqtt(std::string("  discovery: ") + no + "\n").discovery) << no;
  }
  const std::string id64 = "a" + std::string(62, '1') + "z";
  EXPECT_EQ(mqtt("  client_id: " + id64 + "\n").client_id, id64);
  EXPECT_EQ(mqtt("  client_id: ' spaced '\n").client_id, "spaced");  // trimmed
  for (const std::string& id : {std::string("1"), std::string("nvr2"), std::string("a_b_c"),
                                std::string("2nd_floor_nvr"), id64}) {
    EXPECT_EQ(mqtt("  node_id: " + id + "\n").node_id, id);
  }
  EXPECT_EQ(mqtt("  base_topic: a/b/c-d/e.f\n").base_topic, "a/b/c-d/e.f");
  EXPECT_EQ(mqtt("  base_topic: nvr\n").base_topic, "nvr");
  EXPECT_EQ(mqtt("  discovery_prefix: ha\n").discovery_prefix, "ha");
  // A user without a password, and an empty password.
  const MqttConfig user = mqtt("  username: cam\n");
  EXPECT_EQ(user.username, "cam");
  EXPECT_EQ(user.password, "");
  EXPECT_EQ(mqtt("  username: cam\n  password: ''\n").password, "");
  // The host is trimmed; an IPv6 address is a host.
  EXPECT_EQ(MustParse(WithMqtt("  host: ' broker '\n")).mqtt->host, "broker");
  EXPECT_EQ(MustParse(WithMqtt("  host: '::1'\n")).mqtt->host, "::1");
  // Flow style works like any mapping.
  const Config flow = MustParse(std::string("mqtt: {host: b, qos: 0}\n") + kOneCamera);
  EXPECT_EQ(flow.mqtt->host, "b");
  EXPECT_EQ(flow.mqtt->qos, 0);
}

// --- mqtt: errors --------------------------------------------------------------------------------

TEST(ConfigMqttErrors, SectionAndHost) {
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: 5\n") + kOneCamera), 1, 7, "mqtt",
                      "expected a mapping (host: ..., port: ...), got '5'");
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: [a]\n") + kOneCamera), 1, 7, "mqtt",
                      "expected a mapping (host: ..., port: ...), got a list");
  // A missing host is reported at mqtt:, whatever else the section holds.
  const std::string missing = "missing: the broker's host is required";
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  port: 1883\n  qos: 0\n")), 1, 1, "mqtt.host", missing);
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("")), 1, 1, "mqtt.host", missing);
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: {}\n") + kOneCamera), 1, 1, "mqtt.host", missing);
  EXPECT_CONFIG_ERROR(MustFail(std::string(kOneCamera) + "mqtt:\n  port: 1\n"), 2, 1, "mqtt.host",
                      missing);
  EXPECT_EQ(MustFail(WithMqtt("  port: 1883\n")).message, missing);
  // An empty host.
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host:\n  port: 1883\n")), 2, 3, "mqtt.host",
                      "expected a host name or address, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: \"\"\n")), 2, 9, "mqtt.host",
                      "expected a host name or address, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: '  '\n")), 2, 9, "mqtt.host",
                      "expected a host name or address, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: [a, b]\n")), 2, 9, "mqtt.host",
                      "expected a host name or address, got a list");
}

TEST(ConfigMqttErrors, Port) {
  for (const char* port : {"0", "65536", "70000", "-1", "abc", "1883.0", "0x75b"}) {
    const ConfigError e = MustFail(WithMqtt(std::string("  host: b\n  port: ") + port + "\n"));
    EXPECT_CONFIG_ERROR(e, 3, 9, "mqtt.port",
                        std::string("expected a port 1..65535, got '") + port + "'");
  }
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  port:\n")), 3, 3, "mqtt.port",
                      "expected a port 1..65535, got nothing");
}

TEST(ConfigMqttErrors, Credentials) {
  // A password needs a username: reported at the password.
  const ConfigError alone = MustFail(WithMqtt("  host: b\n  password: secret\n  qos: 0\n"));
  EXPECT_CONFIG_ERROR(alone, 3, 3, "mqtt.password", "a password needs a username");
  EXPECT_EQ(alone.message, "a password needs a username");
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: {host: b, password: x}\n") + kOneCamera), 1, 17,
                      "mqtt.password", "a password needs a username");
  // An empty username would send no credentials at all (and drop the password).
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  username: \"\"\n  password: x\n")), 3, 13,
                      "mqtt.username", "expected a user name, got ''");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  username:\n")), 3, 3, "mqtt.username",
                      "expected a user name, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  username: u\n  password:\n")), 4, 3,
                      "mqtt.password", "expected a password, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  username: {a: 1}\n")), 3, 13, "mqtt.username",
                      "expected a user name, got a mapping");
}

TEST(ConfigMqttErrors, Tls) {
  // A client certificate and its key go together: reported at tls:.
  EXPECT_CONFIG_ERROR(
      MustFail(WithMqtt("  host: b\n  tls:\n    ca_file: /ca.pem\n    cert_file: /c.pem\n")), 3, 3,
      "mqtt.tls", "cert_file and key_file go together");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls: {key_file: /k.pem}\n")), 3, 3,
                      "mqtt.tls", "cert_file and key_file go together");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls: maybe\n")), 3, 8, "mqtt.tls",
                      "expected true, false or a mapping (ca_file: ..., cert_file: ..., "
                      "key_file: ...), got 'maybe'");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls: [a]\n")), 3, 8, "mqtt.tls",
                      "expected true, false or a mapping (ca_file: ..., cert_file: ..., "
                      "key_file: ...), got");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    ca_file: \"\"\n")), 4, 14,
                      "mqtt.tls.ca_file", "expected a file path, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    key_file:\n")), 4, 5,
                      "mqtt.tls.key_file", "expected a file path, got nothing");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    cert_file: [a]\n")), 4, 16,
                      "mqtt.tls.cert_file", "expected a file path, got a list");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    insecure: perhaps\n")), 4, 15,
                      "mqtt.tls.insecure", "expected true or false, got 'perhaps'");
  // An unknown key is reported as unknown, whatever its value holds.
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    cafile:\n")), 4, 5,
                      "mqtt.tls.cafile", "unknown key 'cafile' (did you mean 'ca_file'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    verify: {depth: 1}\n")), 4, 5,
                      "mqtt.tls.verify",
                      "unknown key 'verify' (known keys: ca_file, cert_file, key_file, insecure)");
}

// A TLS file that is a FIFO or a device would hold up (or never end) the TLS library's read:
// refused when the config is loaded, as the config file itself is. A missing one is left to
// the connection (a mount may come later).
TEST(ConfigMqttErrors, TlsFilesMustBeRegularFiles) {
  TempDir dir;
  const std::string fifo = dir.path() + "/ca.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  tls:\n    ca_file: " + fifo + "\n")), 4, 14,
                      "mqtt.tls.ca_file",
                      fifo + ": not a regular file (a FIFO): a file path must name a file");
  const std::string cert = dir.write("client.crt", "not checked here\n");
  EXPECT_CONFIG_ERROR(
      MustFail(
          WithMqtt("  host: b\n  tls:\n    cert_file: " + cert + "\n    key_file: /dev/zero\n")),
      5, 15, "mqtt.tls.key_file",
      "/dev/zero: not a regular file (a character device): a file path must name a file");
  // Relative to the config file's directory: "." is that directory.
  const std::string cfg = dir.write("c.yaml", WithMqtt("  host: b\n  tls:\n    ca_file: .\n"));
  Config out;
  ConfigError err;
  EXPECT_FALSE(load_config(cfg, &out, &err));
  EXPECT_NE(err.message.find("not a regular file (a directory)"), std::string::npos) << err.str();
  // Regular and missing files pass.
  const Config ok = MustParse(WithMqtt("  host: b\n  tls:\n    ca_file: " + cert +
                                       "\n    cert_file: " + dir.path() + "/later.crt\n" +
                                       "    key_file: " + dir.path() + "/later.key\n"));
  ASSERT_TRUE(ok.mqtt && ok.mqtt->tls);
  EXPECT_EQ(ok.mqtt->tls->ca_file, cert);
}

TEST(ConfigMqttErrors, Qos) {
  for (const char* qos : {"2", "-1", "once", "1.0"}) {
    EXPECT_CONFIG_ERROR(MustFail(WithMqtt(std::string("  host: b\n  qos: ") + qos + "\n")), 3, 8,
                        "mqtt.qos", std::string("expected 0 or 1, got '") + qos + "'");
  }
}

TEST(ConfigMqttErrors, Durations) {
  const std::string e_g = " (e.g. 5s, 250ms, 1.5s, 2m), got '";
  for (const char* keepalive : {"500ms", "0", "0.5", "65536s", "24h", "forever"}) {
    EXPECT_CONFIG_ERROR(
        MustFail(WithMqtt(std::string("  host: b\n  keepalive: ") + keepalive + "\n")), 3, 14,
        "mqtt.keepalive", "expected a duration 1s..65535s" + e_g + keepalive + "'");
  }
  for (const char* interval : {"99ms", "0", "0.05s", "25h", "soon"}) {
    EXPECT_CONFIG_ERROR(
        MustFail(WithMqtt(std::string("  host: b\n  stats_interval: ") + interval + "\n")), 3, 19,
        "mqtt.stats_interval", "expected a duration 100ms..24h" + e_g + interval + "'");
  }
}

TEST(ConfigMqttErrors, Topics) {
  const std::string what = "expected an MQTT topic without wildcards (e.g. cuframes/nvr), got '";
  // Wildcards, empty levels, a '/' at either end, white space, control or non-ASCII characters.
  for (const std::string topic : {"cuframes/+", "cuframes/#", "+", "#", "a/+/b", "/cuframes",
                                  "cuframes/", "a//b", "a b", "a\tb", "a\x7f", "caméra", ""}) {
    std::string quoted = "\"";  // YAML escapes for the control characters
    for (char c : topic) quoted += c == '\t' ? "\\t" : c == '\x7f' ? "\\x7f" : std::string(1, c);
    quoted += "\"";
    EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  base_topic: " + quoted + "\n")), 3, 15,
                        "mqtt.base_topic", what + topic + "'");
    EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  discovery_prefix: " + quoted + "\n")), 3,
                        21, "mqtt.discovery_prefix", what + topic + "'");
  }
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  base_topic:\n")), 3, 3, "mqtt.base_topic",
                      "expected an MQTT topic without wildcards (e.g. cuframes/nvr), got nothing");
}

TEST(ConfigMqttErrors, ClientId) {
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  client_id: ''\n")), 3, 14, "mqtt.client_id",
                      "expected a client id of 1..64 characters, got ''");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  client_id: " + std::string(65, 'c') + "\n")),
                      3, 14, "mqtt.client_id",
                      "expected a client id of 1..64 characters, got 'ccc");
}

TEST(ConfigMqttErrors, NodeId) {
  const std::string what =
      "expected a node id of 1..64 lower-case a-z 0-9 words joined by single '_' (a Home "
      "Assistant id), got '";
  for (const char* id : {"NVR-1", "nvr-1", "Nvr", "nvr.local", "my node", "a/b", "_nvr", "nvr_",
                         "a__b", "nvré", ""}) {
    const ConfigError e = MustFail(WithMqtt(std::string("  host: b\n  node_id: \"") + id + "\"\n"));
    EXPECT_CONFIG_ERROR(e, 3, 12, "mqtt.node_id", what + id + "'");
  }
  EXPECT_EQ(MustFail(WithMqtt("  host: b\n  node_id: NVR-1\n")).str(),
            "test.yaml:3:12: mqtt.node_id: " + what + "NVR-1'");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  node_id: " + std::string(65, 'n') + "\n")), 3,
                      12, "mqtt.node_id", what);
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  node_id:\n")), 3, 3, "mqtt.node_id",
                      "expected a node id of a-z 0-9 _, got nothing");
}

TEST(ConfigMqttErrors, UnknownAndDuplicateKeys) {
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  usename: u\n")), 3, 3, "mqtt.usename",
                      "unknown key 'usename' (did you mean 'username'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  qso: 1\n")), 3, 3, "mqtt.qso",
                      "unknown key 'qso' (did you mean 'qos'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  Port: 1\n")), 3, 3, "mqtt.Port",
                      "unknown key 'Port' (did you mean 'port'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: b\n  discovery_topic: x\n")), 3, 3,
                      "mqtt.discovery_topic",
                      "unknown key 'discovery_topic' (did you mean 'discovery'?)");
  // Nothing close: the known keys are listed.
  const ConfigError far = MustFail(WithMqtt("  host: b\n  bogus: {a: 1}\n"));
  EXPECT_CONFIG_ERROR(far, 3, 3, "mqtt.bogus",
                      "unknown key 'bogus' (known keys: host, port, client_id, username, "
                      "password, tls, keepalive, node_id, base_topic, stats_interval, discovery, "
                      "discovery_prefix, qos, snapshot_interval, snapshot_width)");
  // Unknown keys are found before a missing host.
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  hots: b\n")), 2, 3, "mqtt.hots",
                      "unknown key 'hots' (did you mean 'host'?)");
  EXPECT_CONFIG_ERROR(MustFail(WithMqtt("  host: a\n  port: 1\n  host: b\n")), 4, 3, "mqtt.host",
                      "duplicate key 'host' (first at line 2)");
  EXPECT_CONFIG_ERROR(MustFail(std::string("mqtt: {host: a}\n") + kOneCamera + "mqtt: {host: b}\n"),
                      3, 1, "mqtt", "duplicate key 'mqtt' (first at line 1)");
}

}  // namespace
}  // namespace cfsvc
