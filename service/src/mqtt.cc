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
#include "mqtt_monitor.h"
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

}  // namespace

std::string server_uri(const MqttConfig& m) {
  const std::string host = m.host.find(':') != std::string::npos ? "[" + m.host + "]" : m.host;
  return std::string(m.tls ? "ssl://" : "tcp://") + host + ":" + std::to_string(m.port);
}

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
