#include "mqtt.h"

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "backoff.h"
#include "source.h"  // mono_ns

namespace cfsvc {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kBackoffMin = std::chrono::seconds(1);
constexpr auto kBackoffMax = std::chrono::seconds(30);
constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr auto kShutdownWait = std::chrono::seconds(2);
// A connection that stayed up this long resets the backoff.
constexpr auto kStableAfter = std::chrono::seconds(30);
constexpr auto kStillFailingEvery = std::chrono::minutes(10);
constexpr int kMaxInflight = 4096;           // QoS 1 messages awaiting their ack: bounds memory
constexpr size_t kMaxRetainedQueue = 10000;  // retained messages waiting for the stale sweep
// A removed entity's retained states are cleared only this long after the last discovery config
// deleted (docs/mqtt.md). Home Assistant removes an entity in a task of its own after reading
// its empty config, and (2024.3) handles every message of one read from the socket (up to 500)
// first: an empty state in the same burst reaches an entity still subscribed, whose
// value_template then fails ("'value_json' is undefined") and whose attributes are "Erroneous
// JSON".
constexpr auto kClearStatesAfter = std::chrono::seconds(5);

// Why a connect failed, in words: the broker's CONNACK answer when it refused us.
std::string connect_failure(const mqtt::exception& e, const std::string& tls_error) {
  std::string why;
  switch (e.get_return_code()) {
    case 1:
      why = "the broker refused the connection: unacceptable protocol version";
      break;
    case 2:
      why = "the broker refused the connection: client id rejected";
      break;
    case 3:
      why = "the broker refused the connection: server unavailable";
      break;
    case 4:
      why = "the broker refused the connection: bad user name or password";
      break;
    case 5:
      why =
          "the broker refused the connection: not authorized (check mqtt.username and "
          "mqtt.password)";
      break;
    default:
      why = e.get_message().empty() ? e.what() : e.get_message();
      break;
  }
  if (!tls_error.empty()) why += " (TLS: " + tls_error + ")";
  return why;
}

bool is_auth_failure(const mqtt::exception& e) {
  return e.get_return_code() == 4 || e.get_return_code() == 5;
}

std::string server_uri(const MqttConfig& m) {
  const std::string host = m.host.find(':') != std::string::npos ? "[" + m.host + "]" : m.host;
  return std::string(m.tls ? "ssl://" : "tcp://") + host + ":" + std::to_string(m.port);
}

// The topic's levels.
std::vector<std::string> levels(const std::string& topic) {
  std::vector<std::string> out(1);
  for (char c : topic) {
    if (c == '/') {
      out.emplace_back();
    } else {
      out.back().push_back(c);
    }
  }
  return out;
}

// What the monitor keeps about one camera.
struct CameraTrack {
  std::string published_state;  // the state last published on this connection
  SubscriberTracker subs;
  bool announced = false;                // discovery sent on this connection
  std::set<std::string> subs_announced;  // the same, per subscriber topic name
};

}  // namespace

struct MqttMonitor::Impl {
  Impl(MqttConfig c, SnapshotFn s) : cfg(std::move(c)), snapshot(std::move(s)) {}

  void run();
  // False with the reason on failure; *auth: refused credentials or a TLS failure (an error).
  bool connect_once(std::string* why, bool* auth);
  bool try_connect();  // throws mqtt::exception on failure; false when stopped
  void on_connected();
  void on_lost();
  void sync(bool full);
  void announce_all();
  void announce(const std::string& owner, const std::vector<Discovery>& d);
  void remove_camera(const std::string& name, CameraTrack& track);
  void sweep(const std::deque<std::pair<std::string, std::string>>& retained);
  // An entity's discovery config deleted now: states wait kClearStatesAfter from here.
  void delete_config(const std::string& topic);
  // A retained state of camera `camera` to clear once its entities are gone from HA.
  void clear_state_later(const std::string& camera, const std::string& topic);
  void clear_due_states();
  void publish(const std::string& topic, const std::string& payload, bool retained = true);
  void shutdown();

  const MqttConfig cfg;
  const SnapshotFn snapshot;
  const std::string uri = server_uri(cfg);

  // Shared with the client's callbacks and notify().
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false, notified = false, ha_online = false, lost = false;
  std::string lost_cause, tls_error;
  std::deque<std::pair<std::string, std::string>> retained;  // (topic, payload) for the sweep
  std::map<std::string, std::string> snapshots;              // camera -> the newest JPEG to publish

  // The monitor thread's own.
  bool connected = false;
  std::optional<GpuStats> gpu;
  std::map<std::string, CameraTrack> cams;    // by camera name
  std::map<std::string, std::string> owners;  // discovery object id -> its camera ("" service)
  std::set<std::string> collisions_logged;
  uint64_t dropped = 0;
  // Retained states of removed cameras, cleared at clear_at (kClearStatesAfter after the last
  // discovery config deleted); a camera back by then keeps its own.
  std::vector<std::pair<std::string, std::string>> clears;  // (camera, topic)
  Clock::time_point clear_at;

  std::unique_ptr<mqtt::async_client> client;  // made and destroyed by the thread
  std::thread thread;
};

MqttMonitor::MqttMonitor(MqttConfig config, SnapshotFn snapshot)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(snapshot))) {
  impl_->thread = std::thread([this] { impl_->run(); });
}

MqttMonitor::~MqttMonitor() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

const MqttConfig& MqttMonitor::config() const {
  return impl_->cfg;
}

void MqttMonitor::notify() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->notified = true;
  }
  impl_->cv.notify_all();
}

void MqttMonitor::publish_snapshot(const std::string& camera, std::string jpeg) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->snapshots[camera] = std::move(jpeg);
  }
  impl_->cv.notify_all();
}

void MqttMonitor::Impl::run() {
  try {
    client = std::make_unique<mqtt::async_client>(uri, cfg.client_id, 0, nullptr);
  } catch (const mqtt::exception& e) {
    spdlog::error("MQTT: cannot use broker {}: {}; MQTT is off until the config is fixed", uri,
                  e.what());
    return;
  }
  client->set_connection_lost_handler([this](const std::string& cause) {
    {
      std::lock_guard<std::mutex> lk(mu);
      lost = true;
      lost_cause = cause;
    }
    cv.notify_all();
  });
  client->set_message_callback([this](mqtt::const_message_ptr msg) {
    const std::string& topic = msg->get_topic();
    {
      std::lock_guard<std::mutex> lk(mu);
      if (topic == cfg.discovery_prefix + "/status") {
        if (msg->get_payload_str() == "online") ha_online = true;
      } else if (msg->is_retained() && !msg->get_payload().empty() &&
                 retained.size() < kMaxRetainedQueue) {
        retained.emplace_back(topic, msg->get_payload_str());
      }
    }
    cv.notify_all();
  });

  cfcommon::Backoff backoff(kBackoffMin, kBackoffMax);
  std::string last_failure;
  auto last_failure_logged = Clock::now();
  uint64_t failures = 0;
  auto next_tick = Clock::now();
  auto connected_at = Clock::now();
  // Waits the backoff (+-20%) and doubles it; false when told to stop meanwhile.
  auto wait_backoff = [&] {
    const std::chrono::milliseconds wait = backoff.next();
    std::unique_lock<std::mutex> lk(mu);
    return !cv.wait_for(lk, wait, [&] { return stop; });
  };

  for (;;) {
    if (!connected) {
      std::string why;
      bool auth = false;
      if (!connect_once(&why, &auth)) {
        {
          std::lock_guard<std::mutex> lk(mu);
          if (stop) break;
        }
        ++failures;
        const auto now = Clock::now();
        if (why != last_failure) {
          // A new reason is worth a line; the same one again only every 10 minutes.
          if (auth) {
            spdlog::error("MQTT: cannot connect to {}: {}; retrying", uri, why);
          } else {
            spdlog::warn("MQTT: cannot connect to {}: {}; retrying (cameras are unaffected)", uri,
                         why);
          }
          last_failure = why;
          last_failure_logged = now;
        } else if (now - last_failure_logged >= kStillFailingEvery) {
          spdlog::warn("MQTT: still cannot connect to {} after {} attempts: {}", uri, failures,
                       why);
          last_failure_logged = now;
        } else {
          spdlog::debug("MQTT: connect to {} failed again: {}", uri, why);
        }
        if (!wait_backoff()) break;
        continue;
      }
      if (failures > 0) {
        spdlog::info("MQTT: connected to {} (after {} failed attempt{})", uri, failures,
                     failures == 1 ? "" : "s");
      } else {
        spdlog::info("MQTT: connected to {} as '{}', publishing under {}", uri, cfg.client_id,
                     cfg.base_topic);
      }
      failures = 0;
      last_failure.clear();
      connected = true;
      connected_at = Clock::now();
      on_connected();
      next_tick = Clock::now() + cfg.stats_interval;
    }

    bool tick = false, changed = false, ha = false, was_lost = false;
    std::deque<std::pair<std::string, std::string>> batch;
    std::map<std::string, std::string> pictures;
    std::string cause;
    {
      std::unique_lock<std::mutex> lk(mu);
      const auto until = clears.empty() ? next_tick : std::min(next_tick, clear_at);
      cv.wait_until(lk, until, [&] {
        return stop || notified || ha_online || lost || !retained.empty() || !snapshots.empty();
      });
      if (stop) break;
      changed = std::exchange(notified, false);
      ha = std::exchange(ha_online, false);
      was_lost = std::exchange(lost, false);
      cause = lost_cause;
      batch.swap(retained);
      pictures.swap(snapshots);
    }
    if (was_lost || !client->is_connected()) {
      spdlog::warn("MQTT: lost the connection to {}{}{}; reconnecting (cameras are unaffected)",
                   uri, cause.empty() ? "" : ": ", cause);
      on_lost();
      // A connection that lasted is a fresh start; one lost at once (another client with our
      // client_id, a broker that drops us) waits the backoff first, not a tight loop.
      if (Clock::now() - connected_at >= kStableAfter) {
        backoff.reset();
      } else if (!wait_backoff()) {
        break;
      }
      continue;
    }
    const auto now = Clock::now();
    if (now >= next_tick) {
      tick = true;
      next_tick = now + cfg.stats_interval;
    }
    if (ha) {
      spdlog::info("MQTT: Home Assistant came online: announcing again");
      announce_all();
      tick = true;
    }
    if (tick || changed || !batch.empty()) sync(tick);
    if (!batch.empty()) sweep(batch);
    for (const auto& [camera, jpeg] : pictures) {
      if (cams.count(camera)) publish(snapshot_topic(cfg, camera), jpeg);  // not a removed one
    }
    if (!clears.empty() && Clock::now() >= clear_at) clear_due_states();
  }
  shutdown();
}

bool MqttMonitor::Impl::try_connect() {
  mqtt::connect_options_builder b;
  b.clean_session(true)
      .keep_alive_interval(std::chrono::duration_cast<std::chrono::seconds>(cfg.keepalive))
      .connect_timeout(kConnectTimeout)
      .max_inflight(kMaxInflight)
      .will(mqtt::message(status_topic(cfg), "offline", cfg.qos, true));
  if (!cfg.username.empty()) b.user_name(cfg.username).password(cfg.password);
  if (cfg.tls) {
    mqtt::ssl_options_builder s;
    if (!cfg.tls->ca_file.empty()) s.trust_store(cfg.tls->ca_file);
    if (!cfg.tls->cert_file.empty()) s.key_store(cfg.tls->cert_file).private_key(cfg.tls->key_file);
    s.enable_server_cert_auth(true).verify(!cfg.tls->insecure);
    s.error_handler([this](const std::string& msg) {
      std::lock_guard<std::mutex> lk(mu);
      tls_error = msg;  // OpenSSL's text ends in a newline: one log line, please
      while (!tls_error.empty() && std::isspace(static_cast<unsigned char>(tls_error.back()))) {
        tls_error.pop_back();
      }
    });
    b.ssl(s.finalize());
  }
  {
    std::lock_guard<std::mutex> lk(mu);
    tls_error.clear();
    lost = false;  // before the connect: a loss reported right after it must not be erased
  }
  const mqtt::connect_options opts = b.finalize();
  for (int busy = 0;; ++busy) {
    try {
      mqtt::token_ptr tok = client->connect(opts);
      // Wait in short steps so that a stop does not wait for the connect timeout.
      while (!tok->wait_for(std::chrono::milliseconds(100))) {
        std::lock_guard<std::mutex> lk(mu);
        if (stop) return false;
      }
      return true;
    } catch (const mqtt::exception& e) {
      // Right after a lost connection Paho may still be tearing the old one down and ignores
      // the connect: not a failure worth a log line; try again shortly (up to 5 s).
      if (e.get_return_code() != MQTTASYNC_COMMAND_IGNORED || busy >= 50) throw;
      std::unique_lock<std::mutex> lk(mu);
      if (cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return stop; })) return false;
    }
  }
}

bool MqttMonitor::Impl::connect_once(std::string* why, bool* auth) {
  try {
    return try_connect();
  } catch (const mqtt::exception& e) {
    std::lock_guard<std::mutex> lk(mu);
    *why = connect_failure(e, tls_error);
    *auth = is_auth_failure(e) || !tls_error.empty();  // credentials or TLS: logged as errors
    return false;
  }
}

void MqttMonitor::Impl::on_connected() {
  {
    std::lock_guard<std::mutex> lk(mu);
    retained.clear();
  }
  for (auto& [name, t] : cams) {
    t.announced = false;
    t.subs_announced.clear();
    t.published_state.clear();
  }
  owners.clear();
  publish(status_topic(cfg), "online");
  // Subscribe before announcing: what the broker kept from before comes back (retained) and the
  // sweep deletes what no longer exists; and Home Assistant's birth message.
  try {
    if (cfg.discovery) {
      client->subscribe(cfg.discovery_prefix + "/status", cfg.qos);
      client->subscribe(cfg.discovery_prefix + "/+/" + cfg.node_id + "/+/config", cfg.qos);
    }
    client->subscribe(cfg.base_topic + "/+/state", cfg.qos);
    client->subscribe(cfg.base_topic + "/+/subscribers/+", cfg.qos);
    client->subscribe(cfg.base_topic + "/+/snapshot", cfg.qos);  // the sweep's too
  } catch (const mqtt::exception& e) {
    spdlog::warn("MQTT: subscribing on {} failed: {}", uri, e.what());
  }
  gpu = query_gpu();
  announce_all();
  sync(true);
}

void MqttMonitor::Impl::on_lost() {
  connected = false;
  clears.clear();  // still retained: the next connect's sweep finds them
  if (dropped > 0) {
    spdlog::debug("MQTT: {} message{} dropped so far", dropped, dropped == 1 ? "" : "s");
  }
}

void MqttMonitor::Impl::announce_all() {
  if (!cfg.discovery) return;
  announce("", service_discovery(cfg, gpu.has_value()));
  for (auto& [name, t] : cams) {
    t.announced = false;
    t.subs_announced.clear();
  }
  sync(false);  // announces the cameras and the subscribers seen so far
  for (auto& [name, t] : cams) {
    for (const std::string& sub : t.subs.names()) {
      if (t.subs_announced.insert(sub).second) announce(name, subscriber_discovery(cfg, name, sub));
    }
  }
}

// Publishes a set of discovery configs owned by `owner`, unless one of their ids belongs to
// someone else (two camera names that differ only in characters ids cannot hold).
void MqttMonitor::Impl::announce(const std::string& owner, const std::vector<Discovery>& d) {
  for (const Discovery& x : d) {
    auto it = owners.find(x.object_id);
    if (it != owners.end() && it->second != owner) {
      // The first owner keeps the id; only this entity of the second is left out.
      if (collisions_logged.insert(x.object_id).second) {
        spdlog::warn(
            "MQTT: Home Assistant id '{}' of camera '{}' is already used by camera "
            "'{}'; not announcing it (rename one of them)",
            x.object_id, owner, it->second);
      }
      continue;
    }
    owners[x.object_id] = owner;
    publish(x.message.topic, x.message.payload);
  }
}

void MqttMonitor::Impl::sync(bool full) {
  const ServiceSnapshot snap = snapshot();
  const int64_t now_ns = mono_ns();

  // Cameras gone from the config: their entities and retained states go too.
  for (auto it = cams.begin(); it != cams.end();) {
    bool present = false;
    for (const CameraStatus& c : snap.cameras) present = present || c.name == it->first;
    if (present) {
      ++it;
      continue;
    }
    remove_camera(it->first, it->second);
    it = cams.erase(it);
  }

  for (const CameraStatus& c : snap.cameras) {
    CameraTrack& t = cams[c.name];
    if (cfg.discovery && !t.announced) {
      announce(c.name, camera_discovery(cfg, c.name));
      t.announced = true;
    }
    if (full || c.state != t.published_state) {
      publish(camera_topic(cfg, c.name), camera_state_json(c));
      t.published_state = c.state;
    }
    if (!full) continue;
    for (const SubscriberReport& r : t.subs.update(c.subscriber_stats, now_ns)) {
      if (cfg.discovery && t.subs_announced.insert(r.topic_name).second) {
        announce(c.name, subscriber_discovery(cfg, c.name, r.topic_name));
      }
      publish(subscriber_topic(cfg, c.name, r.topic_name), subscriber_state_json(r));
    }
  }
  if (full) {
    gpu = query_gpu();
    publish(stats_topic(cfg), service_stats_json(cfg, snap, gpu));
  }
}

// A camera gone from the config: its discovery configs are deleted now (Home Assistant removes
// the entities), its retained states kClearStatesAfter later.
void MqttMonitor::Impl::remove_camera(const std::string& name, CameraTrack& t) {
  spdlog::info("MQTT: camera '{}' left the config: deleting its entities and states", name);
  if (cfg.discovery) {
    std::vector<Discovery> all = camera_discovery(cfg, name);
    for (const std::string& sub : t.subs.names()) {
      for (Discovery& d : subscriber_discovery(cfg, name, sub)) all.push_back(std::move(d));
    }
    for (const Discovery& d : all) {
      auto it = owners.find(d.object_id);
      if (it == owners.end() || it->second != name) continue;  // never ours
      delete_config(d.message.topic);
      owners.erase(it);
    }
  }
  clear_state_later(name, camera_topic(cfg, name));
  clear_state_later(name, snapshot_topic(cfg, name));
  for (const std::string& sub : t.subs.names()) {
    clear_state_later(name, subscriber_topic(cfg, name, sub));
  }
}

void MqttMonitor::Impl::delete_config(const std::string& topic) {
  publish(topic, "");
  clear_at = std::max(clear_at, Clock::now() + kClearStatesAfter);
}

void MqttMonitor::Impl::clear_state_later(const std::string& camera, const std::string& topic) {
  clear_at = std::max(clear_at, Clock::now() + kClearStatesAfter);
  clears.emplace_back(camera, topic);
}

void MqttMonitor::Impl::clear_due_states() {
  for (const auto& [camera, topic] : clears) {
    if (cams.count(camera)) continue;  // configured again meanwhile: its states are current
    publish(topic, "");
  }
  clears.clear();
}

// Retained messages the broker kept from before (another run, another config): discovery
// configs and states of cameras that are no longer configured are deleted (the states later,
// as remove_camera does).
void MqttMonitor::Impl::sweep(const std::deque<std::pair<std::string, std::string>>& batch) {
  const std::string& node = cfg.node_id;
  const size_t prefix_levels = levels(cfg.discovery_prefix).size();
  const size_t base_levels = levels(cfg.base_topic).size();
  // A current camera's entities by their exact ids, and its subscribers' (sub_...) by prefix:
  // those of detectors not attached yet this run stay. A prefix alone would keep the entities
  // of a removed camera "front_door" while a camera "front" exists.
  std::set<std::string> camera_ids;
  std::vector<std::string> sub_prefixes;
  for (const auto& [name, t] : cams) {
    for (const Discovery& d : camera_discovery(cfg, name)) camera_ids.insert(d.object_id);
    sub_prefixes.push_back("cuframes_" + node + "_" + ha_id(name) + "_sub_");
  }
  auto current_by_id = [&](const std::string& object_id) {
    if (owners.count(object_id) || camera_ids.count(object_id) ||
        is_service_object_id(cfg, object_id)) {
      return true;
    }
    for (const std::string& p : sub_prefixes) {
      if (object_id.compare(0, p.size(), p) == 0) return true;
    }
    return false;
  };
  for (const auto& [topic, payload] : batch) {
    const std::vector<std::string> l = levels(topic);
    bool stale = false;
    const bool config =
        cfg.discovery && l.size() == prefix_levels + 4 && l.back() == "config" &&
        topic.compare(0, cfg.discovery_prefix.size() + 1, cfg.discovery_prefix + "/") == 0 &&
        l[prefix_levels + 1] == node;
    if (config) {
      stale = !current_by_id(l[prefix_levels + 2]);
    } else if (topic.compare(0, cfg.base_topic.size() + 1, cfg.base_topic + "/") == 0 &&
               l.size() > base_levels) {
      stale = cams.count(l[base_levels]) == 0;
    }
    if (!stale) continue;
    spdlog::info("MQTT: deleting retained {} (no such camera any more)", topic);
    if (config) {
      delete_config(topic);
    } else {  // a state: after the configs (remove_camera says why)
      clear_state_later(l[base_levels], topic);
    }
  }
}

void MqttMonitor::Impl::publish(const std::string& topic, const std::string& payload, bool retain) {
  if (!connected) {
    ++dropped;
    return;
  }
  try {
    client->publish(topic, payload.data(), payload.size(), cfg.qos, retain);
  } catch (const mqtt::exception& e) {
    ++dropped;  // disconnected, or too many in flight: dropped, never queued
    spdlog::debug("MQTT: dropped a message to {}: {}", topic, e.what());
  }
}

void MqttMonitor::Impl::shutdown() {
  if (client && connected) {
    try {
      // The clean way out: "offline" ourselves (the will is only for a crash).
      client->publish(status_topic(cfg), "offline", 7, cfg.qos, true)->wait_for(kShutdownWait);
      client->disconnect(std::chrono::duration_cast<std::chrono::milliseconds>(kShutdownWait))
          ->wait_for(kShutdownWait + std::chrono::seconds(1));
    } catch (const mqtt::exception& e) {
      spdlog::debug("MQTT: disconnecting from {}: {}", uri, e.what());
    }
  }
  connected = false;
  if (client) {
    try {
      // Paho refuses while a connect attempt is still in flight: the callbacks only touch this
      // Impl, which outlives the client, so going on is safe.
      client->disable_callbacks();
    } catch (const mqtt::exception& e) {
      spdlog::debug("MQTT: disabling callbacks: {}", e.what());
    }
    client.reset();
  }
}

}  // namespace cfsvc
