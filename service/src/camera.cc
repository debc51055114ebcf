#include "camera.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>

#include "backoff.h"
#include "cuda_device.h"
#include "logging.h"

namespace cfsvc {
namespace {

constexpr size_t kMaxPendingPackets = 512;
constexpr size_t kMaxPendingBytes = 32u << 20;

}  // namespace

std::string mask_credentials(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t host_start = scheme + 3;
  const size_t at = url.find('@', host_start);
  const size_t slash = url.find('/', host_start);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) return url;
  const size_t colon = url.find(':', host_start);
  if (colon != std::string::npos && colon < at) {
    return url.substr(0, colon + 1) + "***" + url.substr(at);
  }
  return url.substr(0, host_start) + "***" + url.substr(at);
}

Camera::Camera(CameraConfig config, std::optional<std::string> runtime_dir,
               std::function<void()> on_change)
    : cfg_(std::move(config)),
      runtime_dir_(std::move(runtime_dir)),
      on_change_(std::move(on_change)),
      log_(camera_logger(cfg_.name)) {
  testsrc_ = cfg_.url.rfind("testsrc://", 0) == 0;
  file_source_ = !testsrc_ && cfg_.url.find("://") == std::string::npos;
  file_source_ = file_source_ || cfg_.url.rfind("file://", 0) == 0;
}

Camera::~Camera() {
  request_stop();
  join();
}

void Camera::start() {
  stop_.store(false);
  thread_ = std::thread(&Camera::run, this);
}

void Camera::request_stop() {
  stop_.store(true);
}

void Camera::join() {
  if (thread_.joinable()) thread_.join();
}

void Camera::set_state(CameraState s, const std::string& error) {
  bool changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = s != state_ || error != error_;
    if (s != state_) {
      if (error.empty()) {
        log_->info("{} -> {}", to_string(state_), to_string(s));
      } else {
        log_->warn("{} -> {}: {}", to_string(state_), to_string(s), error);
      }
    }
    state_ = s;
    error_ = error;
    if (s == CameraState::kStreaming) streaming_since_ns_.store(mono_ns());
  }
  stall_reported_.store(false);  // a real state now: what status() derived is over
  if (changed && on_change_) on_change_();
}

void Camera::run() {
  // "cam:NAME" in top, /proc/PID/task/*/comm and the bench's account of threads (15 bytes).
  pthread_setname_np(pthread_self(), ("cam:" + cfg_.name).substr(0, 15).c_str());
  cpu_.start();
  cfcommon::Backoff backoff(cfg_.reconnect.initial, cfg_.reconnect.max);
  bool looping = false;  // a file starting over: not a reconnect, the state stays
  auto retry_later = [&](CameraState state, const std::string& why) {
    set_state(state, why);
    reconnects_.fetch_add(1);
    const int64_t wait_ns = std::chrono::nanoseconds(backoff.next()).count();
    const bool go_on = sleep_until(mono_ns() + wait_ns, &stop_);
    cpu_.lap(CpuStage::kOpen);
    return go_on;
  };
  while (!stop_.load()) {
    // Where the ring lives: a GPU that was not usable may be by the next attempt.
    const bool gpu = cuda_device_usable(cfg_.cuda_device);
    if (cfg_.memory == MemoryChoice::kCuda && !gpu) {
      if (!retry_later(CameraState::kError, "memory: cuda, but CUDA device " +
                                                std::to_string(cfg_.cuda_device) +
                                                " is not usable")) {
        break;
      }
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);  // status() reads it
      memory_ =
          cfg_.memory == MemoryChoice::kHost || !gpu ? CUFRAMES_MEMORY_HOST : CUFRAMES_MEMORY_CUDA;
    }
    SourceOptions opt;
    opt.cuda_usable = gpu;
    opt.cuda_device = cfg_.cuda_device;
    opt.host_ring = memory_ == CUFRAMES_MEMORY_HOST;
    opt.cpu = &cpu_;
    if (!looping) set_state(CameraState::kConnecting);
    const bool restarting_loop = looping;
    looping = false;
    std::unique_ptr<Source> src = testsrc_ ? make_test_source(cfg_, &stop_, &cpu_)
                                           : make_ffmpeg_source(cfg_, opt, &stop_, log_);
    std::string err;
    pending_.clear();  // packets of an earlier attempt that never made a frame
    pending_bytes_ = 0;
    cpu_.lap(CpuStage::kOther);
    const bool opened = src->open(&err);
    cpu_.lap(CpuStage::kOpen);
    if (!opened) {
      if (stop_.load()) break;
      if (!retry_later(CameraState::kError, err)) break;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      codec_ = src->codec();
      decoder_ = src->decoder();
    }
    attempt_frames_.store(0);
    if (!restarting_loop) rate_.clear();  // a file starting over keeps its rate: it never stopped
    publish_error_.clear();
    const Outcome outcome = src->run(this, &err);
    cpu_.lap(CpuStage::kOther);
    src.reset();  // close the connection before waiting
    cpu_.lap(CpuStage::kOpen);
    if (attempt_frames_.load() > 0) backoff.reset();  // it worked for a while
    if (!publish_error_.empty()) err = publish_error_;
    if (outcome == Outcome::kStopped || stop_.load()) break;
    if (outcome == Outcome::kEnd && file_source_) {
      if (cfg_.loop && attempt_frames_.load() > 0) {  // start over at once
        std::string repeated;
        if (reopen_log_.allow(mono_ns(), &repeated)) {
          log_->info("{}: opening it again{}", err, repeated);
        }
        looping = true;
        continue;
      }
      if (cfg_.loop) {  // a file with no decodable frame: do not spin on it
        if (!retry_later(CameraState::kError, "no frame in the file")) break;
        continue;
      }
      set_state(CameraState::kStopped, "end of file");
      while (sleep_until(mono_ns() + 100000000, &stop_)) {
      }
      break;
    }
    if (!retry_later(outcome == Outcome::kError ? CameraState::kError : CameraState::kStalled,
                     err)) {
      break;
    }
  }
  set_state(CameraState::kStopped);
  cpu_.finish();
  std::lock_guard<std::mutex> lock(mu_);
  pub_.reset();  // subscribers see PUBLISHER_GONE
}

bool Camera::ensure_ring(const VideoFrame& f, std::string* error) {
  if (pub_ && f.width == ring_w_ && f.height == ring_h_ && f.format == ring_format_ &&
      memory_ == ring_memory_) {
    return true;
  }
  cuframes::Publisher::Options o;
  o.runtime_dir = runtime_dir_ ? runtime_dir_->c_str() : nullptr;
  o.width = f.width;
  o.height = f.height;
  o.format = f.format;
  o.slots = cfg_.slots;
  o.memory = memory_;
  o.cuda_device = cfg_.cuda_device;
  o.policy =
      cfg_.policy == RingPolicy::kStrictWait ? CUFRAMES_POLICY_STRICT_WAIT : CUFRAMES_POLICY_DROP;
  o.wait_timeout_ms = static_cast<int32_t>(cfg_.wait_timeout.count());
  o.packet_ring_bytes = cfg_.packet_ring_bytes;
  // A cuda ring takes the decoder's pitch (NVDEC: 256-byte aligned rows) so that each frame is
  // one linear device-to-device copy.
  const uint64_t row = uint64_t{f.width} * (f.format == CUFRAMES_FORMAT_P010 ? 2 : 1);
  if (memory_ == CUFRAMES_MEMORY_CUDA && f.planes.memory == CUFRAMES_MEMORY_CUDA &&
      f.planes.pitches[0] == f.planes.pitches[1] && f.planes.pitches[0] >= row &&
      f.planes.pitches[0] % 256 == 0 && f.planes.pitches[0] < (1u << 20)) {
    o.pitch = static_cast<uint32_t>(f.planes.pitches[0]);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (pub_) {
    log_->warn(
        "picture changed from {}x{} {} to {}x{} {} (or the GPU came or went): new ring "
        "(subscribers reattach)",
        ring_w_, ring_h_, cuframes_format_name(ring_format_), f.width, f.height,
        cuframes_format_name(f.format));
    pub_.reset();
  }
  try {
    pub_ = std::make_unique<cuframes::Publisher>(cfg_.key(), o);
  } catch (const cuframes::Error& e) {
    if (error) *error = e.what();
    return false;
  }
  ring_w_ = f.width;
  ring_h_ = f.height;
  ring_format_ = f.format;
  ring_memory_ = memory_;
  codec_pending_ = codec_params_.has_value();  // a new ring's packet ring needs them too
  log_->info("ring '{}': {} {}x{} (pitch {}), {} slots in {} memory", cfg_.key(),
             cuframes_format_name(f.format), f.width, f.height, pub_->geometry().pitch_y,
             cfg_.slots, cuframes_memory_name(memory_));
  return true;
}

bool Camera::on_frame(const VideoFrame& f) {
  cpu_.count_frame();
  if (!ensure_ring(f, &publish_error_)) return false;
  if (!pending_.empty() || codec_pending_) flush_pending_packets();
  if (decoder_ != f.decoder) {  // what really decodes (NVDEC may hand a stream back)
    std::lock_guard<std::mutex> lock(mu_);
    decoder_ = f.decoder;
  }
  uint64_t seq = 0;  // 0: dropped, counted by the ring
  try {
    seq = pub_->publish(f.planes, mono_ns());
  } catch (const cuframes::Error& e) {
    if (e.status() != CUFRAMES_ERR_FRAME_TIMEOUT) {  // STRICT_WAIT timeouts are counted drops
      publish_error_ = e.what();
      return false;
    }
  }
  if (seq != 0) {  // in the ring: what fps and the stall rule count
    const int64_t now = mono_ns();
    const int64_t before = last_frame_ns_.exchange(now);
    rate_.add(now);
    if (stall_reported_.exchange(false)) {
      log_->info("frames reach the ring again, after {:.1f} s without", (now - before) / 1e9);
      if (on_change_) on_change_();
    }
  }
  frames_.fetch_add(1);
  if (attempt_frames_.fetch_add(1) == 0) set_state(CameraState::kStreaming);
  return true;
}

void Camera::on_codec(const cuframes_codec_params_t& params) {
  extradata_.assign(params.extradata, params.extradata + params.extradata_size);
  codec_params_ = params;
  codec_params_->extradata = extradata_.empty() ? nullptr : extradata_.data();
  codec_pending_ = true;
  if (pub_) flush_pending_packets();
}

void Camera::flush_pending_packets() {
  if (!pub_ || cfg_.packet_ring_bytes == 0) {
    pending_.clear();
    pending_bytes_ = 0;
    return;
  }
  try {
    if (codec_pending_ && codec_params_) {
      pub_->set_codec(*codec_params_);
      codec_pending_ = false;
    }
    for (PendingPacket& p : pending_) {
      p.meta.data = p.data.data();
      pub_->write_packet(p.meta);
    }
  } catch (const cuframes::Error& e) {
    log_->warn("packet ring: {}", e.what());
  }
  pending_.clear();
  pending_bytes_ = 0;
}

void Camera::on_packet(const cuframes_packet_t& packet) {
  if (cfg_.packet_ring_bytes == 0) return;
  if (!pub_) {  // the ring comes with the first decoded frame: keep what arrives before it
    if (pending_.size() >= kMaxPendingPackets || pending_bytes_ + packet.size > kMaxPendingBytes) {
      return;
    }
    PendingPacket p;
    p.data.assign(packet.data, packet.data + packet.size);
    p.meta = packet;
    pending_bytes_ += packet.size;
    pending_.push_back(std::move(p));
    return;
  }
  try {
    pub_->write_packet(packet);
  } catch (const cuframes::Error& e) {
    std::string repeated;
    if (packet_log_.allow(mono_ns(), &repeated)) {
      log_->warn("packet ring: {}{}", e.what(), repeated);
    }
  }
}

void Camera::on_decode_error(const std::string& what) {
  const uint64_t n = decode_errors_.fetch_add(1) + 1;
  std::string repeated;
  if (decode_error_log_.allow(mono_ns(), &repeated)) {
    log_->warn("decode error #{}: {}{}", n, what, repeated);
  }
}

void Camera::on_timestamp_jump(int64_t jump_ns) {
  std::string repeated;
  if (jump_log_.allow(mono_ns(), &repeated)) {
    log_->warn(
        "timestamps jumped {} by {:.3f} s: pacing re-anchored, the frames go on at the "
        "stream's rate{}",
        jump_ns < 0 ? "back" : "forward", std::abs(static_cast<double>(jump_ns)) / 1e9, repeated);
  }
}

uint64_t Camera::next_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pub_ ? pub_->stats().published + 1 : 1;
}

CameraStatus Camera::status() const {
  CameraStatus s;
  s.name = cfg_.name;
  s.key = cfg_.key();
  s.url = mask_credentials(cfg_.url);
  s.frames = frames_.load();
  s.decode_errors = decode_errors_.load();
  s.reconnects = reconnects_.load();
  s.cpu = cpu_.snapshot();
  const int64_t now = mono_ns();
  const int64_t last = last_frame_ns_.load();
  s.last_frame_age_ms = last == 0 ? -1 : std::max<int64_t>(now - last, 0) / 1000000;
  const int64_t stall_ms = cfg_.stall_timeout.count();
  int64_t quiet_ns = 0;  // streaming, and no frame into the ring since then or since the last
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.state = to_string(state_);
    s.error = error_;
    s.codec = codec_;
    s.decoder = decoder_;
    s.memory = cuframes_memory_name(memory_);
    if (state_ == CameraState::kStreaming) {
      quiet_ns = now - std::max(last, streaming_since_ns_.load());
      s.fps = rate_.rate(now);
    }
    if (pub_) {
      const cuframes_publisher_stats_t ps = pub_->stats();
      s.dropped = ps.dropped;
      s.subscribers = ps.subscribers;
      s.occupancy = ps.held_slots;
      s.slots = ps.slots;
      s.width = ring_w_;
      s.height = ring_h_;
      s.format = cuframes_format_name(ring_format_);
      s.subscriber_stats = pub_->subscribers();
    }
  }
  // The service's own snapshot reader is not one of the camera's subscribers.
  const auto own = std::remove_if(
      s.subscriber_stats.begin(), s.subscriber_stats.end(),
      [](const cuframes_subscriber_stats_t& x) {
        return x.pid == ::getpid() && std::strncmp(x.name, kSnapshotConsumer, sizeof x.name) == 0;
      });
  s.subscribers -= std::min<uint32_t>(
      s.subscribers, static_cast<uint32_t>(std::distance(own, s.subscriber_stats.end())));
  s.subscriber_stats.erase(own, s.subscriber_stats.end());
  // Whatever holds the frames up (the network, the demuxer, the decoder, the pacing, the ring),
  // a camera whose frames stopped reaching the ring is not streaming.
  if (quiet_ns > stall_ms * 1000000) {
    s.state = to_string(CameraState::kStalled);
    s.error = "no frame reached the ring for more than " + std::to_string(stall_ms) +
              " ms (stall_timeout)";
    s.fps = 0;
    if (!stall_reported_.exchange(true)) {
      log_->warn("no frame reached the ring for {} ms: reported stalled until frames come again",
                 quiet_ns / 1000000);
      if (on_change_) on_change_();  // the status file and MQTT say so now
    }
  }
  return s;
}

}  // namespace cfsvc
