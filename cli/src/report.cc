#include "report.h"

#include <cstring>

#include "text.h"

namespace cli {
namespace {

using cfcommon::Json;
using cfcommon::significant;

// A fixed-size char array of the C API as a string (to its NUL, or all of it).
template <size_t N>
std::string text(const char (&a)[N]) {
  return std::string(a, strnlen(a, N));
}

// "-" for timestamps never set.
std::optional<int64_t> age_ns(int64_t then_ns, int64_t now_ns) {
  if (then_ns <= 0) return std::nullopt;
  return now_ns > then_ns ? now_ns - then_ns : 0;
}

std::optional<double> ms(std::optional<int64_t> ns) {
  if (!ns) return std::nullopt;
  return static_cast<double>(*ns) / 1e6;
}

}  // namespace

std::string memory_name(cuframes_memory_t memory, int32_t device) {
  const char* name = cuframes_memory_name(memory);
  return memory == CUFRAMES_MEMORY_CUDA ? strf("%s:%d", name, device) : name;
}

std::optional<double> average_fps(const cuframes_ring_status_t& ring, int64_t now_ns) {
  const int64_t age = now_ns - ring.created_ns;
  if (ring.created_ns <= 0 || age < 100'000'000) return std::nullopt;
  return static_cast<double>(ring.stats.published) * 1e9 / static_cast<double>(age);
}

Json ring_json(const cuframes_ring_status_t& r, int64_t now_ns, std::optional<double> fps,
               std::optional<double> window_s) {
  const cuframes_geometry_t& g = r.geometry;
  const cuframes_publisher_stats_t& s = r.stats;
  Json j;
  j["key"] = text(r.key);
  j["publisher_pid"] = r.publisher_pid;
  j["epoch"] = r.epoch;
  j["format"] = cuframes_format_name(g.format);
  j["width"] = g.width;
  j["height"] = g.height;
  j["bytes_per_sample"] = g.bytes_per_sample;
  j["pitch_y"] = g.pitch_y;
  j["pitch_uv"] = g.pitch_uv;
  j["frame_bytes"] = g.frame_bytes;
  j["memory"] = cuframes_memory_name(r.memory);
  j["device"] = r.device;
  j["transport"] = text(r.transport);
  j["policy"] = cuframes_policy_name(r.policy);
  j["slots"] = s.slots;
  j["held_slots"] = s.held_slots;
  j["subscribers"] = s.subscribers;
  j["max_subscribers"] = r.max_subscribers;
  j["published"] = s.published;
  j["dropped"] = s.dropped;
  j["last_seq"] = s.last_seq;
  j["blocked_ns"] = s.blocked_ns;
  j["waiting"] = s.waiting != 0;
  j["packet_ring"] = r.has_packet_ring != 0;
  j["created_ns"] = r.created_ns;
  j["age_s"] = significant(static_cast<double>(now_ns - r.created_ns) / 1e9);
  j["last_publish_ns"] = s.last_publish_ns;
  j["last_publish_age_ms"] = significant(ms(age_ns(s.last_publish_ns, now_ns)));
  j["fps"] = significant(fps);
  j["fps_window_s"] = significant(window_s);
  j["fps_average"] = significant(average_fps(r, now_ns));
  return j;
}

Json subscriber_json(const cuframes_subscriber_stats_t& s, int64_t now_ns,
                     std::optional<double> fps) {
  Json j;
  j["name"] = text(s.name);
  j["pid"] = s.pid;
  j["mode"] = cuframes_mode_name(s.mode);
  j["frames"] = s.frames_received;
  j["fps"] = significant(fps);
  j["gaps"] = s.gaps;
  j["timeouts"] = s.timeouts;
  j["errors"] = s.errors;
  j["overruns"] = s.overruns;
  j["lag"] = s.lag;
  j["last_seq"] = s.last_seq;
  j["last_latency_ns"] = s.last_latency_ns;
  j["held"] = s.held_frames;
  j["heartbeat_ns"] = s.heartbeat_ns;
  j["heartbeat_age_ms"] = significant(ms(age_ns(s.heartbeat_ns, now_ns)));
  j["attached_ns"] = s.attached_ns;
  j["table_index"] = s.slot_index;
  return j;
}

std::string ring_text(const cuframes_ring_status_t& r, int64_t now_ns, std::optional<double> fps,
                      std::optional<double> window_s) {
  const cuframes_geometry_t& g = r.geometry;
  const cuframes_publisher_stats_t& s = r.stats;
  std::string out;
  auto row = [&](const char* name, const std::string& value) {
    out += strf("  %-12s %s\n", name, value.c_str());
  };
  out += strf("%s: publisher pid %d, up %s\n", r.key, r.publisher_pid,
              human_duration(now_ns - r.created_ns).c_str());
  std::string geometry =
      strf("%s %ux%u, %u byte%s/sample, pitch Y %u", cuframes_format_name(g.format), g.width,
           g.height, g.bytes_per_sample, g.bytes_per_sample == 1 ? "" : "s", g.pitch_y);
  if (g.num_planes > 1) geometry += strf(" UV %u", g.pitch_uv);
  geometry += strf(", %llu bytes/frame", static_cast<unsigned long long>(g.frame_bytes));
  row("geometry", geometry);
  row("memory", memory_name(r.memory, r.device) + ", transport " + r.transport);
  row("policy", cuframes_policy_name(r.policy));
  row("slots", strf("%u, %u held (occupancy %u%%)", s.slots, s.held_slots,
                    s.slots ? s.held_slots * 100 / s.slots : 0));
  std::string published = strf("%llu", static_cast<unsigned long long>(s.published));
  if (std::optional<int64_t> a = age_ns(s.last_publish_ns, now_ns)) {
    published += strf(", last seq %llu, %s ago", static_cast<unsigned long long>(s.last_seq),
                      human_duration(*a).c_str());
  }
  row("published", published);
  row("dropped", strf("%llu", static_cast<unsigned long long>(s.dropped)));
  std::string rate = "average " + human_fps(average_fps(r, now_ns)) + " since start";
  if (fps && window_s) {
    rate = strf("%s over %.2f s (%s)", human_fps(fps).c_str(), *window_s, rate.c_str());
  }
  row("fps", rate);
  std::string waiting = s.waiting ? "yes (publisher blocked on a full ring)" : "no";
  if (s.blocked_ns) {
    waiting += ", blocked " + human_duration(static_cast<int64_t>(s.blocked_ns)) + " in all";
  }
  row("waiting", waiting);
  row("packets", r.has_packet_ring ? "packet ring present" : "no packet ring");
  row("subscribers", strf("%u of %u", s.subscribers, r.max_subscribers));
  return out;
}

std::string subscribers_text(const std::vector<cuframes_subscriber_stats_t>& subs, int64_t now_ns,
                             const std::optional<std::vector<std::optional<double>>>& fps) {
  if (subs.empty()) return "  (no subscribers)\n";
  std::vector<std::string> header = {"NAME", "PID", "MODE", "FRAMES"};
  if (fps) header.push_back("FPS");
  for (const char* h :
       {"GAPS", "TIMEOUTS", "ERRORS", "OVERRUNS", "LAG", "LATENCY", "HELD", "HEARTBEAT"}) {
    header.push_back(h);
  }
  Table t(std::move(header), 1);
  auto u = [](uint64_t v) { return std::to_string(v); };
  for (size_t i = 0; i < subs.size(); ++i) {
    const cuframes_subscriber_stats_t& s = subs[i];
    std::vector<std::string> row = {s.name, std::to_string(s.pid), cuframes_mode_name(s.mode),
                                    u(s.frames_received)};
    if (fps) row.push_back(human_fps(i < fps->size() ? (*fps)[i] : std::nullopt));
    std::optional<int64_t> hb = age_ns(s.heartbeat_ns, now_ns);
    for (std::string cell : {u(s.gaps), u(s.timeouts), u(s.errors), u(s.overruns), u(s.lag),
                             s.last_seq ? human_duration(s.last_latency_ns) : std::string("-"),
                             u(s.held_frames), hb ? human_duration(*hb) + " ago" : "-"}) {
      row.push_back(std::move(cell));
    }
    t.add(std::move(row));
  }
  return t.render("  ");
}

}  // namespace cli
