// A camera: one ingest thread that opens its source, decodes, and publishes every frame into the
// ring "cam-<name>" (and every packet into its packet ring), with a watchdog and reconnects.
//
// States: connecting -> streaming; a stream that goes quiet for stall_timeout is "stalled" and
// reconnected; a source that cannot be opened is "error" and retried with exponential backoff
// (+-20% jitter); "stopped" when the camera is removed, the service stops, or a file ends with
// loop: false. One camera failing never touches another.
//
// What status() reports is computed when it is called: fps over the last 2 s (RateMeter), and a
// streaming camera whose last frame published into the ring is older than stall_timeout is
// reported "stalled", whatever holds the frames up (network, demuxer, decoder, pacing, ring).
//
// The ring outlives reconnects: subscribers stay attached through an outage. It is recreated (a
// new publisher instance: subscribers get PUBLISHER_GONE and subscribe again) only when the
// picture's size or format changes.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "camera_state.h"
#include "config.h"
#include "cpu_account.h"
#include "cuframes/cuframes.hpp"
#include "logging.h"
#include "rate_meter.h"
#include "source.h"

namespace cfsvc {

struct CameraStatus {
  std::string name, key, url, state, error, codec, decoder, format, memory;
  uint32_t width = 0, height = 0;
  double fps = 0;
  uint64_t frames = 0, dropped = 0, decode_errors = 0, reconnects = 0;
  uint32_t subscribers = 0, occupancy = 0, slots = 0;
  int64_t last_frame_age_ms = -1;  // since the last frame published into the ring; -1: none
  std::vector<cuframes_subscriber_stats_t> subscriber_stats;
  CpuSnapshot cpu;  // the ingest thread's CPU by stage (cpu_account.h)
};

// The consumer name of the service's own snapshot reader on each ring (snapshot.h): status()
// leaves it out of the subscribers it reports.
inline constexpr char kSnapshotConsumer[] = "cuframes-service-snapshot";

// rtsp://user:secret@host/... -> rtsp://user:***@host/...
std::string mask_credentials(const std::string& url);

class Camera final : public SourceSink {
 public:
  // on_change is called (from the ingest thread) whenever the state changes.
  Camera(CameraConfig config, std::optional<std::string> runtime_dir,
         std::function<void()> on_change);
  ~Camera() override;  // stops and joins
  Camera(const Camera&) = delete;
  Camera& operator=(const Camera&) = delete;

  void start();
  void request_stop();  // returns at once; join() (or the destructor) waits
  void join();

  const CameraConfig& config() const { return cfg_; }
  CameraStatus status() const;

  // SourceSink (ingest thread)
  bool on_frame(const VideoFrame& frame) override;
  void on_codec(const cuframes_codec_params_t& params) override;
  void on_packet(const cuframes_packet_t& packet) override;
  void on_decode_error(const std::string& what) override;
  void on_timestamp_jump(int64_t jump_ns) override;
  uint64_t next_seq() const override;

 private:
  void run();
  void set_state(CameraState s, const std::string& error = {});
  bool ensure_ring(const VideoFrame& f, std::string* error);
  void flush_pending_packets();

  const CameraConfig cfg_;
  const std::optional<std::string> runtime_dir_;
  std::function<void()> on_change_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  bool file_source_ = false;
  bool testsrc_ = false;

  mutable std::mutex mu_;                            // guards everything below that status() reads
  cuframes_memory_t memory_ = CUFRAMES_MEMORY_HOST;  // the ring's memory this attempt
  CameraState state_ = CameraState::kConnecting;     // from creation: never "stopped" before it ran
  std::string error_, codec_, decoder_;
  std::unique_ptr<cuframes::Publisher> pub_;
  uint32_t ring_w_ = 0, ring_h_ = 0;
  cuframes_format_t ring_format_ = CUFRAMES_FORMAT_INVALID;
  cuframes_memory_t ring_memory_ = CUFRAMES_MEMORY_HOST;

  // Ingest-thread state.
  std::optional<cuframes_codec_params_t> codec_params_;  // the stream's, kept for new rings
  bool codec_pending_ = false;                           // not yet given to the current ring
  std::vector<uint8_t> extradata_;
  struct PendingPacket {
    std::vector<uint8_t> data;
    cuframes_packet_t meta{};
  };
  std::deque<PendingPacket> pending_;  // packets before the ring exists (bounded)
  size_t pending_bytes_ = 0;
  std::string publish_error_;
  // Repeated log lines, one throttle per cause.
  LogThrottle reopen_log_, jump_log_, decode_error_log_, packet_log_;

  std::atomic<uint64_t> frames_{0}, decode_errors_{0}, reconnects_{0}, attempt_frames_{0};
  std::atomic<int64_t> last_frame_ns_{0};            // the last frame published into the ring
  std::atomic<int64_t> streaming_since_ns_{0};       // when the state last became streaming
  RateMeter rate_;                                   // frames published into the ring
  mutable std::atomic<bool> stall_reported_{false};  // status() says stalled; logged once
  CpuAccount cpu_;                                   // the ingest thread's CPU by stage
};

}  // namespace cfsvc
