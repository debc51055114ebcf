// Retry delays: exponential backoff with jitter, as the service's camera reconnects and its MQTT
// connection use it (docs/configuration.md: reconnect). Not installed.
#ifndef CUFRAMES_COMMON_BACKOFF_H_
#define CUFRAMES_COMMON_BACKOFF_H_

#include <chrono>
#include <random>

namespace cfcommon {

// `d` scaled by a uniform factor in [0.8, 1.2] (+-20%), so that many clients that failed at
// once do not all retry at once.
std::chrono::milliseconds jittered(std::chrono::milliseconds d);

// The delays of one series of retries: initial, doubling up to max; each wait() is jittered.
// reset() starts the series again (after a connection that worked).
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max), next_(initial) {}
  // The delay to wait now (jittered), and doubles the next one, up to max.
  std::chrono::milliseconds next();
  void reset() { next_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_, next_;
};

}  // namespace cfcommon

#endif  // CUFRAMES_COMMON_BACKOFF_H_
