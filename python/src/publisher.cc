// CuframesPublisher: a key, its ring of frame slots and its packet ring (loan.cc: CuframesLoan;
// source.cc: the frames publish() takes).
#include <pybind11/stl.h>

#include <cctype>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common.h"
#include "dlpack.h"
#include "loan.h"
#include "raw_method.h"
#include "source.h"

namespace cfpy {

py::dict subscriber_stats_dict(const cuframes_subscriber_stats_t& s);  // module.cc
py::dict publisher_stats_dict(const cuframes_publisher_stats_t& s);    // module.cc

namespace {

bool g_publish_probe = false;  // _publish_probe(True): publish() notes its parts' times

class Publisher {
 public:
  Publisher(const std::string& key, uint32_t width, uint32_t height, const py::object& format,
            uint32_t slots, const py::object& memory, int cuda_device, const py::object& policy,
            uint32_t pitch, int wait_timeout_ms, uint32_t max_subscribers,
            uint64_t packet_ring_bytes, uint32_t packet_ring_entries, const py::object& runtime_dir)
      : key_(key) {
    cuframes_publisher_options_t o;
    cuframes_publisher_options_init(&o);
    std::string dir =
        runtime_dir.is_none() ? std::string() : py::cast<std::string>(py::str(runtime_dir));
    o.runtime_dir = runtime_dir.is_none() ? nullptr : dir.c_str();
    o.format = static_cast<cuframes_format_t>(enum_value(format, "format"));
    o.width = width;
    o.height = height;
    o.pitch = pitch;
    o.slots = slots;
    o.memory = parse_memory(memory);
    o.cuda_device = cuda_device;
    o.policy = static_cast<cuframes_policy_t>(enum_value(policy, "policy"));
    o.wait_timeout_ms = wait_timeout_ms;
    o.max_subscribers = max_subscribers;
    o.packet_ring_bytes = packet_ring_bytes;
    if (packet_ring_entries != 0) o.packet_ring_entries = packet_ring_entries;
    memory_ = o.memory;
    cuda_device_ = cuda_device;
    policy_ = o.policy;
    has_packets_ = packet_ring_bytes != 0;

    core_ = std::make_shared<PubCore>();
    cuframes_status_t st;
    std::string msg;
    {
      py::gil_scoped_release nogil;
      st = cuframes_publisher_create(key_.c_str(), &o, &core_->pub);
      if (st != CUFRAMES_OK) msg = cuframes_last_error();
    }
    if (st != CUFRAMES_OK) {
      core_.reset();
      throw_status(st, msg);
    }
    cuframes_publisher_get_geometry(core_->pub, &geometry_);
    snapshot();
  }

  ~Publisher() {
    try {
      close();
    } catch (...) {
    }
  }

  void close() {
    if (!core_) return;
    snapshot();
    std::shared_ptr<PubCore> core = std::move(core_);
    core_.reset();
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(core->mu);
    core->closing = true;
    for (LoanState* l : core->loans) {
      if (l->loan != nullptr && core->pub != nullptr) {
        cuframes_publisher_abandon(core->pub, l->loan);
        l->loan = nullptr;
      }
    }
    if (core->pins == 0) core->destroy_locked();
  }

  bool closed() const { return !core_; }
  const std::string& key() const { return key_; }
  const cuframes_geometry_t& geometry() const { return geometry_; }
  cuframes_memory_t memory() const { return memory_; }
  int cuda_device() const { return cuda_device_; }
  cuframes_policy_t policy() const { return policy_; }
  bool has_packet_ring() const { return has_packets_; }

  // publish(source, pts_ns=None, *, stream=None, color_matrix=UNKNOWN, color_range=UNKNOWN),
  // a raw method (publish_raw): null where an argument was not given.
  uint64_t publish(PyObject* source, PyObject* pts_ns, PyObject* stream, PyObject* matrix,
                   PyObject* range) {
    if (g_publish_probe) probe_ = {cuframes_now_ns(), 0, 0};
    std::shared_ptr<PubCore> core = open_core();
    const uintptr_t s = stream == nullptr || stream == Py_None ? 0 : parse_stream(stream, "stream");
    const auto matrix_v = static_cast<cuframes_color_matrix_t>(
        matrix == nullptr ? CUFRAMES_COLOR_MATRIX_UNKNOWN : enum_value(matrix, "color_matrix"));
    const auto range_v = static_cast<cuframes_color_range_t>(
        range == nullptr ? CUFRAMES_COLOR_RANGE_UNKNOWN : enum_value(range, "color_range"));
    const int64_t pts = pts_ns == nullptr || pts_ns == Py_None
                            ? cuframes_now_ns()
                            : int64_arg(pts_ns, "publish", "pts_ns");
    FrameSource fs(py::reinterpret_borrow<py::object>(source), geometry_, s);
    cuframes_source_t& src = fs.source();
    src.color_matrix = matrix_v;
    src.color_range = range_v;
    uint64_t seq = 0;
    call_locked(core, [&](cuframes_publisher_t* p) {
      if (g_publish_probe) probe_.core = cuframes_now_ns();
      const cuframes_status_t st = cuframes_publisher_publish(p, &src, pts, &seq);
      if (g_publish_probe) probe_.done = cuframes_now_ns();
      return st;
    });
    fs.release();  // the sources' deleters, with the GIL (also on the error path, unwinding)
    return seq;
  }

  // _publish_probe(True): (entered, core, done): CLOCK_MONOTONIC when the last publish() was
  // entered, when its core call began (the source imported, the GIL given up, the lock taken)
  // and when that call returned.
  py::tuple publish_probe() const {
    return py::make_tuple(probe_.entered, probe_.core, probe_.done);
  }

  std::unique_ptr<Loan> loan(const py::object& stream) {
    return lend(open_core(), key_, stream.is_none() ? 0 : parse_stream(stream, "stream"));
  }

  void set_codec(const py::object& codec, uint32_t width, uint32_t height,
                 const py::object& time_base, const py::bytes& extradata) {
    std::shared_ptr<PubCore> core = open_core();
    cuframes_codec_params_t p{};
    p.codec = parse_codec(codec);
    p.width = width;
    p.height = height;
    py::tuple tb = py::cast<py::tuple>(time_base);
    if (tb.size() != 2) throw py::type_error("time_base must be a (num, den) tuple");
    p.time_base_num = py::cast<int32_t>(tb[0]);
    p.time_base_den = py::cast<int32_t>(tb[1]);
    std::string ed = extradata;
    p.extradata = ed.empty() ? nullptr : reinterpret_cast<const uint8_t*>(ed.data());
    p.extradata_size = static_cast<uint32_t>(ed.size());
    call_locked(core,
                [&](cuframes_publisher_t* pub) { return cuframes_publisher_set_codec(pub, &p); });
  }

  void write_packet(const py::object& data, int64_t pts, const py::object& dts, bool keyframe) {
    std::shared_ptr<PubCore> core = open_core();
    Py_buffer view;
    if (PyObject_GetBuffer(data.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    cuframes_packet_t pkt{};
    pkt.data = static_cast<const uint8_t*>(view.buf);
    pkt.size = static_cast<uint32_t>(view.len);
    pkt.flags = keyframe ? CUFRAMES_PACKET_KEY : 0;
    pkt.pts = pts;
    pkt.dts = dts.is_none() ? pts : py::cast<int64_t>(dts);
    try {
      if (static_cast<uint64_t>(view.len) > UINT32_MAX) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, "packet too large");
      }
      call_locked(core, [&](cuframes_publisher_t* pub) {
        return cuframes_publisher_write_packet(pub, &pkt);
      });
    } catch (...) {
      PyBuffer_Release(&view);
      throw;
    }
    PyBuffer_Release(&view);
  }

  py::dict stats() {
    snapshot();
    py::dict d = publisher_stats_dict(stats_);
    d["key"] = key_;
    d["closed"] = closed();
    return d;
  }

  py::list subscribers() {
    py::list out;
    if (!core_) return out;
    std::vector<cuframes_subscriber_stats_t> v(CUFRAMES_MAX_SUBSCRIBERS,
                                               sized<cuframes_subscriber_stats_t>());
    size_t n = 0;
    {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(core_->mu);
      if (core_->pub != nullptr) {
        cuframes_publisher_read_subscribers(core_->pub, v.data(), v.size(), &n);
      }
    }
    for (size_t i = 0; i < n && i < v.size(); ++i) out.append(subscriber_stats_dict(v[i]));
    return out;
  }

  std::shared_ptr<PubCore> open_core() const {
    if (!core_) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, "publisher of '" + key_ + "' is closed");
    }
    return core_;
  }

  template <class Fn>
  void call_locked(const std::shared_ptr<PubCore>& core, Fn&& fn) {
    cuframes_status_t st;
    std::string msg;
    {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(core->mu);
      if (core->pub == nullptr) {
        st = CUFRAMES_ERR_INVALID_ARGUMENT;
        msg = "publisher of '" + key_ + "' is closed";
      } else {
        st = fn(core->pub);
        if (st != CUFRAMES_OK) msg = cuframes_last_error();
      }
    }
    if (st != CUFRAMES_OK) throw_status(st, msg);
  }

 private:
  static cuframes_codec_t parse_codec(const py::object& codec) {
    if (py::isinstance<py::str>(codec)) {
      std::string name = py::cast<std::string>(codec);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name == "h265") name = "hevc";
      if (name == "avc") name = "h264";
      for (int i = CUFRAMES_CODEC_UNKNOWN; i <= CUFRAMES_CODEC_MJPEG; ++i) {
        if (name == cuframes_codec_name(static_cast<cuframes_codec_t>(i))) {
          return static_cast<cuframes_codec_t>(i);
        }
      }
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown codec '" + py::cast<std::string>(codec) +
                                                      "' (h264, hevc, av1, vp9, mjpeg)");
    }
    return static_cast<cuframes_codec_t>(enum_value(codec, "codec"));
  }

  void snapshot() {
    if (!core_) return;
    py::gil_scoped_release nogil;  // a STRICT_WAIT publish may hold mu for a while
    std::lock_guard<std::mutex> lock(core_->mu);
    if (core_->pub != nullptr) cuframes_publisher_get_stats(core_->pub, &stats_);
  }

  std::shared_ptr<PubCore> core_;
  std::string key_;
  cuframes_geometry_t geometry_{};
  cuframes_publisher_stats_t stats_ = sized<cuframes_publisher_stats_t>();
  cuframes_memory_t memory_ = CUFRAMES_MEMORY_HOST;
  int cuda_device_ = 0;
  cuframes_policy_t policy_ = CUFRAMES_POLICY_DROP;
  bool has_packets_ = false;
  struct {
    int64_t entered = 0, core = 0, done = 0;
  } probe_;
};

// The arguments of CuframesPublisher() and publish(), written once: `def` is called with them.
// Their defaults are the core's (cuframes_publisher_options_init), memory aside: from Python a
// ring is on the GPU unless asked otherwise.
template <typename Def>
void publisher_args(Def&& def) {
  cuframes_publisher_options_t d;
  cuframes_publisher_options_init(&d);
  def(py::arg("key"), py::arg("width"), py::arg("height"),
      py::arg("format") = pixel_format(d.format), py::arg("slots") = d.slots,
      py::arg("memory") = "cuda", py::arg("cuda_device") = d.cuda_device,
      py::arg("policy") = publisher_policy(d.policy), py::kw_only(), py::arg("pitch") = d.pitch,
      py::arg("wait_timeout_ms") = d.wait_timeout_ms,
      py::arg("max_subscribers") = d.max_subscribers,
      py::arg("packet_ring_bytes") = d.packet_ring_bytes,
      py::arg("packet_ring_entries") = d.packet_ring_entries, py::arg("runtime_dir") = py::none());
}

// pub.publish(...), a raw method (raw_method.h): a producer's per-frame call.
PyObject* publish_raw(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return raw_call([&] {
    PyObject* a[5];
    parse_args("publish", args, nargs, kwnames,
               {"source", "pts_ns", "stream", "color_matrix", "color_range"}, a, 2);
    if (a[0] == nullptr) throw py::type_error("publish() missing required argument 'source'");
    const uint64_t seq = self_as<Publisher>(self).publish(a[0], a[1], a[2], a[3], a[4]);
    return PyLong_FromUnsignedLongLong(seq);
  });
}

const char* const kPublishDoc =
    "publish($self, /, source, pts_ns=None, *, stream=None, "
    "color_matrix=cuframes.ColorMatrix.UNKNOWN, color_range=cuframes.ColorRange.UNKNOWN)\n--\n\n"
    "Copies a frame into a free slot and publishes it; returns its seq. source: any DLPack array "
    "(numpy, torch, cupy) holding the whole frame, (height * 3 // 2, width) for NV12 (uint8) and "
    "P010 (uint16), (height, width) for GRAY8, any row stride, host or device memory; or a "
    "(y, uv) pair of plane arrays. pts_ns defaults to CLOCK_MONOTONIC now. Returns 0 when the "
    "DROP policy dropped the frame (every slot held); STRICT_WAIT raises CuframesFrameTimeout "
    "after wait_timeout_ms. stream: the CUDA stream to copy on (default: the legacy default "
    "stream). color_matrix, color_range: the frame's colour description (ColorMatrix, "
    "ColorRange), published with it.";

}  // namespace

void register_publisher(py::module_& m) {
  def_switch(m, "_publish_probe", &g_publish_probe,
             "publish() notes when its parts began (off by default; "
             "CuframesPublisher._publish_probe() reads it). For benchmarks.");
  register_loan(m);
  py::class_<Publisher> pub(
      m, "CuframesPublisher",
      "Owns a key and its ring of frame slots (use cuframes.publish()). Calls may come from any "
      "thread; they are serialized.");
  // the per-frame call, without pybind11's dispatcher
  add_raw_method(pub, "publish", publish_raw, kPublishDoc);
  publisher_args([&pub](auto&&... args) {
    pub.def(py::init<const std::string&, uint32_t, uint32_t, const py::object&, uint32_t,
                     const py::object&, int, const py::object&, uint32_t, int, uint32_t, uint64_t,
                     uint32_t, const py::object&>(),
            args...);
  });
  pub.def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](Publisher& p, const py::object&, const py::object&, const py::object&) {
             p.close();
             return false;
           })
      .def("close", &Publisher::close,
           "Stops serving the key (idempotent): subscribers get CuframesPublisherGone, pending "
           "loans are abandoned. Frames subscribers still hold stay readable to them.")
      .def_property_readonly("closed", &Publisher::closed)
      .def_property_readonly("key", &Publisher::key)
      .def_property_readonly("width", [](const Publisher& p) { return p.geometry().width; })
      .def_property_readonly("height", [](const Publisher& p) { return p.geometry().height; })
      .def_property_readonly("format",
                             [](const Publisher& p) { return pixel_format(p.geometry().format); })
      .def_property_readonly("pitch_y", [](const Publisher& p) { return p.geometry().pitch_y; })
      .def_property_readonly("pitch_uv", [](const Publisher& p) { return p.geometry().pitch_uv; })
      .def_property_readonly("frame_bytes",
                             [](const Publisher& p) { return p.geometry().frame_bytes; })
      .def_property_readonly("memory", [](const Publisher& p) { return memory_name(p.memory()); })
      .def_property_readonly("cuda_device", &Publisher::cuda_device)
      .def_property_readonly("policy",
                             [](const Publisher& p) { return publisher_policy(p.policy()); })
      .def_property_readonly("has_packet_ring", &Publisher::has_packet_ring)
      .def("_publish_probe", &Publisher::publish_probe,
           "(entered_ns, core_ns, done_ns): CLOCK_MONOTONIC when the last publish() was "
           "entered, when its core call began and when it returned; zeros until "
           "_publish_probe(True). For benchmarks.")
      .def("loan", &Publisher::loan, py::arg("stream") = py::none(),
           "Lends a free slot for writing in place: ``with pub.loan() as frame:`` fill "
           "frame.y / frame.uv (writable DLPack), published on leaving the block (abandoned on "
           "an exception). Raises CuframesFrameTimeout when no slot is free (DROP: at once; "
           "STRICT_WAIT: after wait_timeout_ms), the frame counting as dropped.")
      .def("stats", &Publisher::stats,
           "Publisher counters as a dict: published, dropped, blocked_ns, last_seq, slots, "
           "held_slots (ring occupancy), subscribers, waiting, last_publish_ns.")
      .def("subscribers", &Publisher::subscribers,
           "The attached subscribers' counters (a list of dicts), read from the shared table.")
      .def("set_codec", &Publisher::set_codec, py::arg("codec"), py::arg("width"),
           py::arg("height"), py::arg("time_base") = py::make_tuple(1, 90000),
           py::arg("extradata") = py::bytes(),
           "Packet ring: sets the encoded stream's parameters (codec \"h264\", \"hevc\", "
           "\"av1\", \"vp9\" or \"mjpeg\"; time_base (num, den) seconds per pts unit).")
      .def("write_packet", &Publisher::write_packet, py::arg("data"), py::arg("pts"),
           py::arg("dts") = py::none(), py::arg("keyframe") = false,
           "Packet ring: appends one access unit (bytes-like) and notifies readers. dts "
           "defaults to pts.")
      .def("__repr__", [](const Publisher& p) {
        return "<CuframesPublisher key='" + p.key() + "' " +
               cuframes_format_name(p.geometry().format) + " " +
               std::to_string(p.geometry().width) + "x" + std::to_string(p.geometry().height) +
               " " + memory_name(p.memory()) + (p.closed() ? " closed>" : ">");
      });

  publisher_args([&m](auto&&... args) {
    m.def(
        "publish",
        [](const std::string& key, uint32_t width, uint32_t height, const py::object& format,
           uint32_t slots, const py::object& memory, int cuda_device, const py::object& policy,
           uint32_t pitch, int wait_timeout_ms, uint32_t max_subscribers,
           uint64_t packet_ring_bytes, uint32_t packet_ring_entries,
           const py::object& runtime_dir) {
          return std::make_unique<Publisher>(key, width, height, format, slots, memory, cuda_device,
                                             policy, pitch, wait_timeout_ms, max_subscribers,
                                             packet_ring_bytes, packet_ring_entries, runtime_dir);
        },
        args...,
        "Creates a ring and starts serving key; returns a CuframesPublisher. memory: \"cuda\" "
        "(device memory on cuda_device) or \"host\" (memfd). policy: what to do when every slot "
        "is held (DROP: drop the new frame; STRICT_WAIT: wait up to wait_timeout_ms). pitch: "
        "bytes per row, 0 = aligned automatically. packet_ring_bytes > 0 adds a packet ring "
        "(64 KiB .. 1 GiB). Raises CuframesShmError if another live publisher holds the key, "
        "CuframesDeviceLost when memory=\"cuda\" and no usable GPU is there.");
  });
}

}  // namespace cfpy
