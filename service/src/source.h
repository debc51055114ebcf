// Frame sources of a camera: the FFmpeg one (network streams and files, NVDEC or software
// decode) and the built-in testsrc. A source runs on its camera's ingest thread and hands
// decoded frames, stream parameters and encoded packets to the camera (SourceSink).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "config.h"
#include "cpu_account.h"
#include "cuframes/cuframes.h"

namespace spdlog {
class logger;
}

namespace cfsvc {

// A decoded frame, ready to copy into a ring.
struct VideoFrame {
  cuframes_source_t planes{};  // plane pointers, pitches, memory, CUDA stream
  uint32_t width = 0, height = 0;
  cuframes_format_t format = CUFRAMES_FORMAT_NV12;
  int device = -1;           // CUDA device of device planes
  const char* decoder = "";  // what decoded it: "nvdec", "software", "testsrc"
};

class SourceSink {
 public:
  virtual ~SourceSink() = default;
  // Each decoded frame, in order. false: it could not be published (the source stops with
  // Outcome::kError; the camera has the reason).
  virtual bool on_frame(const VideoFrame& frame) = 0;
  // The stream's parameters (after every open) and its encoded packets.
  virtual void on_codec(const cuframes_codec_params_t& params) = 0;
  virtual void on_packet(const cuframes_packet_t& packet) = 0;
  // A packet the decoder rejected, or a frame it reported corrupt.
  virtual void on_decode_error(const std::string& what) = 0;
  // A paced source's timestamps jumped by jump_ns (< 0: back) between two frames: the pacing
  // was re-anchored (the frames go on at the stream's rate).
  virtual void on_timestamp_jump(int64_t jump_ns) = 0;
  // The seq the next published frame will get (frames the ring drops get none).
  virtual uint64_t next_seq() const = 0;
};

// Why Source::run returned.
enum class Outcome {
  kEnd,      // end of a file (loop handles it) or of a stream the server closed
  kStalled,  // no video packet for stall_timeout
  kError,    // a read or decoder failure (message set)
  kStopped   // the camera is stopping
};

class Source {
 public:
  virtual ~Source() = default;
  // Connects/opens within open_timeout. false with *error when it cannot.
  virtual bool open(std::string* error) = 0;
  // Reads and decodes until something ends it (see Outcome).
  virtual Outcome run(SourceSink* sink, std::string* error) = 0;
  virtual std::string codec() const = 0;  // "h264", "hevc", ..., "testsrc"
  // What decodes it as set up: "nvdec", "software", "testsrc". (Each frame says what actually
  // decoded it: NVDEC may hand a stream it cannot take back to software.)
  virtual std::string decoder() const = 0;
};

// Where frames may go, decided by the camera before it opens a source.
struct SourceOptions {
  bool cuda_usable = false;  // a CUDA device is usable for decode (NVDEC) and rings
  int cuda_device = 0;
  bool host_ring = false;     // frames go to a host ring: NVDEC only when asked for, downloaded
  CpuAccount* cpu = nullptr;  // the ingest thread's CPU account: the source laps its stages
};

std::unique_ptr<Source> make_ffmpeg_source(const CameraConfig& config, const SourceOptions& opt,
                                           const std::atomic<bool>* stop,
                                           std::shared_ptr<spdlog::logger> log);
std::unique_ptr<Source> make_test_source(const CameraConfig& config, const std::atomic<bool>* stop,
                                         CpuAccount* cpu = nullptr);

// CLOCK_MONOTONIC now, ns.
int64_t mono_ns();
// Waits until deadline_ns (CLOCK_MONOTONIC) or until *stop; false when stopped.
bool sleep_until(int64_t deadline_ns, const std::atomic<bool>* stop);

}  // namespace cfsvc
