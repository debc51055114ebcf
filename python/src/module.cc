// cuframes._cuframes: the module, its enums and helpers, and the free functions.
#include <poll.h>

#include <pybind11/stl.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common.h"

namespace cfpy {
namespace {

// The IntEnum classes, created at import and kept for the process's life.
PyObject* g_mode_cls = nullptr;
PyObject* g_format_cls = nullptr;
PyObject* g_policy_cls = nullptr;
PyObject* g_matrix_cls = nullptr;
PyObject* g_range_cls = nullptr;

// An IntEnum of `values`, each member named as the core names it, upper-cased
// (cuframes_mode_name's "newest_only" is SubscriberMode.NEWEST_ONLY).
template <typename E>
PyObject* make_int_enum(py::module_& m, const char* name, std::initializer_list<E> values,
                        const char* (*name_of)(E), const char* doc) {
  py::list items;
  for (E v : values) {
    std::string n = name_of(v);
    for (char& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    items.append(py::make_tuple(n, static_cast<int>(v)));
  }
  py::object cls =
      py::module_::import("enum").attr("IntEnum")(name, items, py::arg("module") = "cuframes");
  cls.attr("__doc__") = doc;
  m.attr(name) = cls;
  return cls.release().ptr();
}

py::object enum_member(PyObject* cls, int value) {
  try {
    return py::reinterpret_borrow<py::object>(cls)(value);
  } catch (py::error_already_set&) {
    return py::int_(value);  // a value newer than this module knows
  }
}

}  // namespace

py::object subscriber_mode(cuframes_mode_t mode) {
  return enum_member(g_mode_cls, mode);
}
py::object pixel_format(cuframes_format_t format) {
  return enum_member(g_format_cls, format);
}
py::object publisher_policy(cuframes_policy_t policy) {
  return enum_member(g_policy_cls, policy);
}
py::str enum_name(const py::object& member) {
  return member.attr("name");
}
py::object color_matrix(cuframes_color_matrix_t matrix) {
  return enum_member(g_matrix_cls, matrix);
}
py::object color_range(cuframes_color_range_t range) {
  return enum_member(g_range_cls, range);
}

int32_t enum_value(const py::handle& value, const char* what) {
  if (PyBool_Check(value.ptr()) || !PyIndex_Check(value.ptr())) {
    throw py::type_error(std::string(what) + " must be one of the cuframes enums (an int), got " +
                         std::string(py::str(py::type::of(value))));
  }
  const long long v =
      py::cast<long long>(py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr())));
  if (v < 0 || v > INT32_MAX) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                 std::string("invalid ") + what + " value " + std::to_string(v));
  }
  return static_cast<int32_t>(v);
}

const char* memory_name(cuframes_memory_t memory) {
  return memory == CUFRAMES_MEMORY_CUDA ? "cuda" : "host";
}

cuframes_memory_t parse_memory(const py::handle& value) {
  if (py::isinstance<py::str>(value)) {
    std::string s = py::cast<std::string>(value);
    if (s == "cuda") return CUFRAMES_MEMORY_CUDA;
    if (s == "host") return CUFRAMES_MEMORY_HOST;
  }
  throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
               "memory must be \"cuda\" or \"host\", got " + std::string(py::repr(value)));
}

uintptr_t parse_stream(const py::handle& value, const char* what) {
  if (value.is_none()) return 0;
  py::object v = py::reinterpret_borrow<py::object>(value);
  if (!PyIndex_Check(v.ptr())) {
    if (py::hasattr(v, "__cuda_stream__")) {
      py::tuple t = py::cast<py::tuple>(v.attr("__cuda_stream__")());
      v = t[1];
    } else if (py::hasattr(v, "cuda_stream")) {
      v = v.attr("cuda_stream");  // torch.cuda.Stream
    } else if (py::hasattr(v, "ptr")) {
      v = v.attr("ptr");  // cupy.cuda.Stream
    } else {
      throw py::type_error(std::string(what) +
                           " must be a cudaStream_t as an int, or a torch/cupy stream");
    }
  }
  const long long s = py::cast<long long>(v);
  return static_cast<uintptr_t>(s);
}

int64_t deadline_after(int timeout_ms) {
  if (timeout_ms < 0) return INT64_MAX;
  return cuframes_now_ns() + int64_t{timeout_ms} * 1000000;
}

void def_switch(py::module_& m, const char* name, bool* flag, const char* doc) {
  m.def(
      name,
      [flag](std::optional<bool> enabled) {
        if (enabled) *flag = *enabled;
        return *flag;
      },
      py::arg("enabled") = py::none(), doc);
}

int ms_left(int64_t deadline_ns) {
  if (deadline_ns == INT64_MAX) return -1;
  const int64_t left = deadline_ns - cuframes_now_ns();
  if (left <= 0) return 0;
  const int64_t ms = (left + 999999) / 1000000;
  return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

bool wait_readable(int fd, int timeout_ms) {
  const int64_t deadline = deadline_after(timeout_ms);
  for (;;) {
    const int left = ms_left(deadline);
    if (left == 0) return false;
    const int slice = left < 0 ? kWaitSliceMs : std::min(left, kWaitSliceMs);
    int rc;
    {
      py::gil_scoped_release nogil;
      pollfd p{fd, POLLIN, 0};
      rc = ::poll(&p, 1, slice);
      if (rc < 0 && errno == EINTR) rc = 0;
    }
    if (rc > 0) return true;
    if (rc < 0) throw_status(CUFRAMES_ERR_SHM, std::string("poll: ") + std::strerror(errno));
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

void attach_in_slices(int connect_timeout_ms,
                      const std::function<std::pair<cuframes_status_t, std::string>(int)>& attach) {
  const int64_t deadline = deadline_after(connect_timeout_ms);
  for (;;) {
    const int left = ms_left(deadline);
    const int slice = left < 0 ? kWaitSliceMs : std::min(left, kWaitSliceMs);
    std::pair<cuframes_status_t, std::string> r;
    {
      py::gil_scoped_release nogil;
      r = attach(slice);
    }
    auto& [st, msg] = r;
    if (st == CUFRAMES_OK) return;
    if (st != CUFRAMES_ERR_PUBLISHER_GONE || ms_left(deadline) == 0) {
      // The core said how long this slice waited ("... within 200 ms"): say the whole wait.
      const std::string said = " within " + std::to_string(slice) + " ms";
      if (st == CUFRAMES_ERR_PUBLISHER_GONE && connect_timeout_ms > 0 &&
          msg.size() >= said.size() &&
          msg.compare(msg.size() - said.size(), said.size(), said) == 0) {
        msg.replace(msg.size() - said.size(), said.size(),
                    " within " + std::to_string(connect_timeout_ms) + " ms");
      }
      throw_status(st, msg);
    }
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

py::dict publisher_stats_dict(const cuframes_publisher_stats_t& s) {
  py::dict d;
  d["published"] = s.published;
  d["dropped"] = s.dropped;
  d["blocked_ns"] = s.blocked_ns;
  d["last_seq"] = s.last_seq;
  d["slots"] = s.slots;
  d["held_slots"] = s.held_slots;
  d["ring_occupancy"] = s.held_slots;
  d["subscribers"] = s.subscribers;
  d["waiting"] = s.waiting != 0;
  d["last_publish_ns"] = s.last_publish_ns;
  return d;
}

py::dict subscriber_stats_dict(const cuframes_subscriber_stats_t& s) {
  py::dict d;
  d["consumer_name"] = std::string(s.name);
  d["pid"] = s.pid;
  d["mode"] = enum_name(subscriber_mode(s.mode));
  d["frames_received"] = s.frames_received;
  d["timeouts"] = s.timeouts;
  d["errors"] = s.errors;
  d["gap_count"] = s.gaps;
  d["overruns"] = s.overruns;
  d["last_seq"] = s.last_seq;
  d["last_frame_pts_ns"] = s.last_frame_pts_ns;
  d["last_latency_ns"] = s.last_latency_ns;
  d["heartbeat_ns"] = s.heartbeat_ns;
  d["attached_ns"] = s.attached_ns;
  d["lag"] = s.lag;
  d["held_frames"] = s.held_frames;
  return d;
}

namespace {

py::list list_publishers(const py::object& runtime_dir) {
  std::string dir =
      runtime_dir.is_none() ? std::string() : py::cast<std::string>(py::str(runtime_dir));
  cuframes_key_list_t* list = nullptr;
  cuframes_status_t st;
  std::string msg;
  {
    py::gil_scoped_release nogil;
    st = cuframes_list_publishers(runtime_dir.is_none() ? nullptr : dir.c_str(), &list);
    if (st != CUFRAMES_OK) msg = cuframes_last_error();
  }
  if (st != CUFRAMES_OK) throw_status(st, msg);
  py::list out;
  for (size_t i = 0; i < cuframes_key_list_size(list); ++i) {
    out.append(py::str(cuframes_key_list_get(list, i)));
  }
  cuframes_key_list_destroy(list);
  return out;
}

std::string runtime_dir(const py::object& runtime_dir) {
  std::string dir =
      runtime_dir.is_none() ? std::string() : py::cast<std::string>(py::str(runtime_dir));
  char out[CUFRAMES_PATH_MAX];
  check(cuframes_runtime_dir(runtime_dir.is_none() ? nullptr : dir.c_str(), out, sizeof out,
                             nullptr));
  return out;
}

py::dict observe(const std::string& key, int connect_timeout_ms, const py::object& runtime_dir) {
  std::string dir =
      runtime_dir.is_none() ? std::string() : py::cast<std::string>(py::str(runtime_dir));
  cuframes_ring_status_t ring = sized<cuframes_ring_status_t>();
  std::vector<cuframes_subscriber_stats_t> subs(CUFRAMES_MAX_SUBSCRIBERS,
                                                sized<cuframes_subscriber_stats_t>());
  size_t n = 0;
  cuframes_status_t st;
  std::string msg;
  {
    py::gil_scoped_release nogil;
    cuframes_observer_t* o = nullptr;
    st = cuframes_observer_create(key.c_str(), runtime_dir.is_none() ? nullptr : dir.c_str(),
                                  connect_timeout_ms, &o);
    if (st == CUFRAMES_OK) {
      st = cuframes_observer_read(o, &ring, subs.data(), subs.size(), &n);
      if (st != CUFRAMES_OK) msg = cuframes_last_error();
      cuframes_observer_destroy(o);
    } else {
      msg = cuframes_last_error();
    }
  }
  if (st != CUFRAMES_OK) throw_status(st, msg);
  py::dict d;
  d["key"] = std::string(ring.key);
  d["epoch"] = ring.epoch;
  d["publisher_pid"] = ring.publisher_pid;
  d["memory"] = memory_name(ring.memory);
  d["device"] = ring.device;
  d["policy"] = enum_name(publisher_policy(ring.policy));
  d["format"] = enum_name(pixel_format(ring.geometry.format));
  d["width"] = ring.geometry.width;
  d["height"] = ring.geometry.height;
  d["pitch_y"] = ring.geometry.pitch_y;
  d["pitch_uv"] = ring.geometry.pitch_uv;
  d["created_ns"] = ring.created_ns;
  d["max_subscribers"] = ring.max_subscribers;
  d["has_packet_ring"] = ring.has_packet_ring != 0;
  d["transport"] = std::string(ring.transport, strnlen(ring.transport, sizeof ring.transport));
  d["stats"] = publisher_stats_dict(ring.stats);
  py::list l;
  for (size_t i = 0; i < n && i < subs.size(); ++i) l.append(subscriber_stats_dict(subs[i]));
  d["subscribers"] = l;
  return d;
}

}  // namespace
}  // namespace cfpy

PYBIND11_MODULE(_cuframes, m) {
  using namespace cfpy;
  m.doc() = "cuframes C ABI bindings (private: import cuframes instead).";

  register_errors(m);
  g_mode_cls = make_int_enum(
      m, "SubscriberMode", {CUFRAMES_MODE_NEWEST_ONLY, CUFRAMES_MODE_STRICT_ORDER},
      cuframes_mode_name,
      "NEWEST_ONLY: next_frame returns the newest frame, frames skipped in between are counted "
      "as gaps. STRICT_ORDER: every frame in order; CuframesOverrun when the publisher lapped "
      "the subscriber.");
  g_format_cls = make_int_enum(m, "PixelFormat",
                               {CUFRAMES_FORMAT_NV12, CUFRAMES_FORMAT_P010, CUFRAMES_FORMAT_GRAY8},
                               cuframes_format_name,
                               "Pixel formats: NV12 (8-bit 4:2:0, Y plane then interleaved UV), "
                               "P010 (10-bit in 16-bit samples, value in the high bits), GRAY8.");
  g_policy_cls = make_int_enum(
      m, "PublisherPolicy", {CUFRAMES_POLICY_DROP, CUFRAMES_POLICY_STRICT_WAIT},
      cuframes_policy_name,
      "What a publisher does when every slot is held: DROP the new frame (counted), or "
      "STRICT_WAIT for a slot up to wait_timeout_ms.");
  g_matrix_cls = make_int_enum(
      m, "ColorMatrix",
      {CUFRAMES_COLOR_MATRIX_UNKNOWN, CUFRAMES_COLOR_MATRIX_BT601, CUFRAMES_COLOR_MATRIX_BT709,
       CUFRAMES_COLOR_MATRIX_BT2020},
      cuframes_color_matrix_name,
      "A frame's YUV -> RGB matrix, as its publisher described it. UNKNOWN: preprocess() "
      "takes BT709 for frames at least 720 rows high, BT601 below.");
  g_range_cls = make_int_enum(
      m, "ColorRange",
      {CUFRAMES_COLOR_RANGE_UNKNOWN, CUFRAMES_COLOR_RANGE_LIMITED, CUFRAMES_COLOR_RANGE_FULL},
      cuframes_color_range_name,
      "A frame's sample range: LIMITED (Y 16..235, \"TV\") or FULL (0..255, \"PC\"), 10-bit "
      "values 4x. UNKNOWN: preprocess() takes LIMITED (FULL for GRAY8).");

  register_dlpack(m);
  register_frame(m);
  register_subscriber(m);
  register_publisher(m);
  register_packets(m);
  register_preprocess(m);

  m.def(
      "version_string", [] { return std::string(cuframes_version_string()); },
      "The libcuframes version, e.g. \"0.5.0\".");
  m.def(
      "protocol_version", [] { return cuframes_protocol_version(); },
      "The socket/shared-memory protocol version spoken by this build.");
  m.def(
      "now_ns", [] { return cuframes_now_ns(); },
      "CLOCK_MONOTONIC now in nanoseconds: the clock of pts_ns and the stats' timestamps.");
  m.def("list_publishers", &list_publishers, py::arg("runtime_dir") = py::none(),
        "The keys of the live publishers in the runtime directory, sorted (none where the "
        "directory is not there; nothing is created).");
  m.def("runtime_dir", &runtime_dir, py::arg("runtime_dir") = py::none(),
        "The runtime directory a subscriber looks in for runtime_dir (None: $CUFRAMES_RUNTIME_DIR, "
        "/run/cuframes, $XDG_RUNTIME_DIR/cuframes, /tmp/cuframes-<uid>). Creates nothing.");
  m.def("observe", &observe, py::arg("key"), py::arg("connect_timeout_ms") = 0, py::kw_only(),
        py::arg("runtime_dir") = py::none(),
        "A read-only snapshot of key's ring (geometry, publisher counters, occupancy) and of "
        "its subscribers' counters, without subscribing.");

  // Stop callback threads before the interpreter starts tearing down.
  py::module_::import("atexit").attr("register")(m.attr("_stop_all_callbacks"));
}
