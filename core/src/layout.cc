#include "layout.h"

#include <bit>

namespace cuframes::detail {

cuframes_geometry_t read_geometry(const RingHeader& h) {
  cuframes_geometry_t g{};
  const uint32_t format = rd(h.format);  // from shared memory: checked before it becomes an enum
  g.format = format >= CUFRAMES_FORMAT_NV12 && format <= CUFRAMES_FORMAT_GRAY8
                 ? static_cast<cuframes_format_t>(format)
                 : CUFRAMES_FORMAT_INVALID;
  g.width = rd(h.width);
  g.height = rd(h.height);
  g.bytes_per_sample = rd(h.bytes_per_sample);
  g.num_planes = rd(h.num_planes);
  g.pitch_y = rd(h.pitch_y);
  g.pitch_uv = rd(h.pitch_uv);
  g.height_uv = rd(h.height_uv);
  g.offset_y = rd(h.offset_y);
  g.offset_uv = rd(h.offset_uv);
  g.frame_bytes = rd(h.frame_bytes);
  return g;
}

void write_geometry(RingHeader& h, const cuframes_geometry_t& g) {
  wr(h.format, g.format);
  wr(h.width, g.width);
  wr(h.height, g.height);
  wr(h.bytes_per_sample, g.bytes_per_sample);
  wr(h.num_planes, g.num_planes);
  wr(h.pitch_y, g.pitch_y);
  wr(h.pitch_uv, g.pitch_uv);
  wr(h.height_uv, g.height_uv);
  wr(h.offset_y, g.offset_y);
  wr(h.offset_uv, g.offset_uv);
  wr(h.frame_bytes, g.frame_bytes);
}

void copy_counters(const SubscriberCounters& from, SubscriberCounters* to) {
  for (uint32_t k = 0; k < kCounterCount; ++k) wr(to->v[k], rd(from.v[k]));
}

bool read_entry(const EntryView& view, const SubscriberCounters& counters, uint64_t holds,
                uint32_t index, uint64_t newest_published_seq, uint64_t slot_mask,
                cuframes_subscriber_stats_t* out) {
  const uint32_t gen = view.generation.load(std::memory_order_acquire);
  if (view.state.load(std::memory_order_acquire) != kEntryActive) return false;
  cuframes_subscriber_stats_t s{};
  std::string name = load_string(view.name, CUFRAMES_NAME_MAX);
  name.copy(s.name, CUFRAMES_NAME_MAX);
  s.pid = rd(view.pid);
  s.mode = rd(view.mode) == CUFRAMES_MODE_STRICT_ORDER ? CUFRAMES_MODE_STRICT_ORDER
                                                       : CUFRAMES_MODE_NEWEST_ONLY;
  s.attached_ns = rd(view.attached_ns);
  const auto c = [&counters](Counter k) { return rd(counters.v[k]); };
  s.frames_received = c(kFramesReceived);
  s.timeouts = c(kTimeouts);
  s.errors = c(kErrors);
  s.gaps = c(kGaps);
  s.overruns = c(kOverruns);
  s.last_seq = c(kLastSeq);
  s.last_frame_pts_ns = static_cast<int64_t>(c(kLastFramePtsNs));
  s.last_latency_ns = static_cast<int64_t>(c(kLastLatencyNs));
  s.heartbeat_ns = static_cast<int64_t>(c(kHeartbeatNs));
  s.lag = newest_published_seq > s.last_seq ? newest_published_seq - s.last_seq : 0;
  s.held_frames = static_cast<uint32_t>(std::popcount(holds & slot_mask));
  s.slot_index = index;
  std::atomic_thread_fence(std::memory_order_acquire);
  if (view.state.load(std::memory_order_relaxed) != kEntryActive ||
      view.generation.load(std::memory_order_relaxed) != gen) {
    return false;
  }
  *out = s;
  return true;
}

}  // namespace cuframes::detail
