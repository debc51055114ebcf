// The publisher side: CuframesPublisher, CuframesLoan, and DLPack sources for publish().
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

namespace cfpy {

py::dict subscriber_stats_dict(const cuframes_subscriber_stats_t& s);  // module.cc
py::dict publisher_stats_dict(const cuframes_publisher_stats_t& s);    // module.cc

namespace {

struct LoanState;

// The C publisher and everything that uses it. Calls on it are serialized by mu (the C ABI wants
// one thread at a time; Python threads may race once the GIL is released). The publisher is
// destroyed on close(), or later if DLPack tensors of its loans still point into the ring
// (pins): then it goes when the last of them is freed.
struct PubCore {
  std::mutex mu;
  cuframes_publisher_t* pub = nullptr;
  bool closing = false;
  int pins = 0;
  std::set<LoanState*> loans;

  ~PubCore() {
    if (pub != nullptr) cuframes_publisher_destroy(pub);
  }
  void destroy_locked() {
    if (pub != nullptr) {
      cuframes_publisher_destroy(pub);
      pub = nullptr;
    }
  }
};

// Held by every DLPack tensor exported from a loan: keeps the ring mapped.
struct ExportPin {
  explicit ExportPin(std::shared_ptr<PubCore> c) : core(std::move(c)) {
    std::lock_guard<std::mutex> lock(core->mu);
    ++core->pins;
  }
  ~ExportPin() {
    std::lock_guard<std::mutex> lock(core->mu);
    if (--core->pins == 0 && core->closing) core->destroy_locked();
  }
  std::shared_ptr<PubCore> core;
};

struct LoanState {
  LoanState(std::shared_ptr<PubCore> c, cuframes_loan_t* l) : core(std::move(c)), loan(l) {
    cuframes_loan_get_info(loan, &info);
    core->loans.insert(this);  // the caller holds core->mu
  }
  ~LoanState() {
    std::lock_guard<std::mutex> lock(core->mu);
    if (loan != nullptr && core->pub != nullptr) cuframes_publisher_abandon(core->pub, loan);
    core->loans.erase(this);
  }
  std::shared_ptr<PubCore> core;
  cuframes_loan_t* loan;  // null once committed or abandoned (guarded by core->mu)
  cuframes_frame_info_t info{};
  StreamSet streams;
};

cuframes_memory_t memory_of(const DLDevice& d) {
  switch (static_cast<int>(d.device_type)) {
    case kDLCPU:
    case kDLCUDAHost: return CUFRAMES_MEMORY_HOST;
    case kDLCUDA:
    case kDLCUDAManaged: return CUFRAMES_MEMORY_CUDA;
    default: break;
  }
  throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
               "frame sources must be in host or CUDA memory (DLPack device type " +
                   std::to_string(static_cast<int>(d.device_type)) + ")");
}

std::string shape_str(int64_t r, int64_t c) {
  return "(" + std::to_string(r) + ", " + std::to_string(c) + ")";
}

// Checks one source array and returns its address and row pitch in bytes.
void source_plane(const DLTensor& t, int64_t rows, int64_t cols, uint32_t bytes_per_sample,
                  const std::string& what, const void** ptr, uint64_t* pitch) {
  const std::string want = shape_str(rows, cols) + (bytes_per_sample == 2 ? " uint16" : " uint8");
  if (t.ndim != 2) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, what + " must be a 2-D array " + want + ", got " +
                                                    std::to_string(t.ndim) + " dimensions");
  }
  if ((t.dtype.code != kDLUInt && t.dtype.code != kDLInt) || t.dtype.lanes != 1 ||
      t.dtype.bits != 8 * bytes_per_sample) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                 what + " must be " + want + ", got a " + std::to_string(t.dtype.bits) +
                     "-bit " + (t.dtype.code == kDLFloat ? "float" : "") + " array");
  }
  if (t.shape[0] != rows || t.shape[1] != cols) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                 what + " must be " + want + ", got shape " + shape_str(t.shape[0], t.shape[1]));
  }
  int64_t row_stride = cols;
  if (t.strides != nullptr) {
    if (cols > 1 && t.strides[1] != 1) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   what + ": the samples of a row must be contiguous (strides[1] == 1), got " +
                       std::to_string(t.strides[1]));
    }
    if (rows > 1) {
      row_stride = t.strides[0];
      if (row_stride < cols) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                     what + ": rows overlap or run backwards (strides[0] = " +
                         std::to_string(row_stride) + ")");
      }
    }
  }
  *ptr = static_cast<const uint8_t*>(t.data) + t.byte_offset;
  *pitch = static_cast<uint64_t>(row_stride) * bytes_per_sample;
}

class Loan;

class Publisher {
 public:
  Publisher(const std::string& key, uint32_t width, uint32_t height, const py::object& format,
            uint32_t slots, const py::object& memory, int cuda_device, const py::object& policy,
            uint32_t pitch, int wait_timeout_ms, uint32_t max_subscribers,
            uint64_t packet_ring_bytes, uint32_t packet_ring_entries,
            const py::object& runtime_dir)
      : key_(key) {
    cuframes_publisher_options_t o;
    cuframes_publisher_options_init(&o);
    std::string dir = runtime_dir.is_none() ? std::string() : py::cast<std::string>(py::str(runtime_dir));
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

  uint64_t publish(const py::object& source, std::optional<int64_t> pts_ns,
                   const py::object& stream, const py::object& matrix, const py::object& range) {
    std::shared_ptr<PubCore> core = open_core();
    const uintptr_t s = stream.is_none() ? 0 : parse_stream(stream, "stream");
    const cuframes_geometry_t& g = geometry_;
    const int64_t w = g.width;
    const int64_t h = g.height;
    const int64_t huv = g.height_uv;
    const uint32_t bps = g.bytes_per_sample;

    cuframes_source_t src;
    cuframes_source_init(&src);
    src.cuda_stream = reinterpret_cast<void*>(s);
    src.color_matrix = static_cast<cuframes_color_matrix_t>(enum_value(matrix, "color_matrix"));
    src.color_range = static_cast<cuframes_color_range_t>(enum_value(range, "color_range"));
    std::vector<std::unique_ptr<ImportedTensor>> tensors;
    const bool pair = py::isinstance<py::tuple>(source) || py::isinstance<py::list>(source);
    if (pair) {
      py::sequence seq = py::reinterpret_borrow<py::sequence>(source);
      const size_t want = g.num_planes;
      if (py::len(seq) != want) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                     std::string(cuframes_format_name(g.format)) + " takes " +
                         std::to_string(want) + " plane array(s), got " +
                         std::to_string(py::len(seq)));
      }
      for (size_t i = 0; i < want; ++i) {
        tensors.push_back(std::make_unique<ImportedTensor>(seq[i], s));
        const DLTensor& t = tensors.back()->tensor();
        source_plane(t, i == 0 ? h : huv, w, bps, i == 0 ? "the Y plane" : "the UV plane",
                     &src.planes[i], &src.pitches[i]);
      }
    } else {
      tensors.push_back(std::make_unique<ImportedTensor>(source, s));
      const DLTensor& t = tensors.back()->tensor();
      source_plane(t, h + huv, w, bps, std::string("a ") + cuframes_format_name(g.format) + " " +
                                          std::to_string(w) + "x" + std::to_string(h) + " frame",
                   &src.planes[0], &src.pitches[0]);
      if (g.num_planes == 2) {
        src.planes[1] = static_cast<const uint8_t*>(src.planes[0]) + src.pitches[0] * h;
        src.pitches[1] = src.pitches[0];
      }
    }
    src.memory = memory_of(tensors[0]->tensor().device);
    for (const auto& t : tensors) {
      if (memory_of(t->tensor().device) != src.memory) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, "the planes are in different memories");
      }
    }
    const int64_t pts = pts_ns ? *pts_ns : cuframes_now_ns();
    uint64_t seq = 0;
    call_locked(core, [&](cuframes_publisher_t* p) {
      return cuframes_publisher_publish(p, &src, pts, &seq);
    });
    tensors.clear();  // the sources' deleters, with the GIL (also on the error path, unwinding)
    return seq;
  }

  std::unique_ptr<Loan> loan(const py::object& stream);

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
    call_locked(core, [&](cuframes_publisher_t* pub) { return cuframes_publisher_set_codec(pub, &p); });
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
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   "unknown codec '" + py::cast<std::string>(codec) +
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
};

// A slot lent for writing in place; published by commit() (or leaving the with block).
class Loan : public Exportable {
 public:
  Loan(std::shared_ptr<LoanState> state, std::string key, uintptr_t stream)
      : st_(std::move(state)), key_(std::move(key)), stream_(stream) {
    info_ = st_->info;
  }
  ~Loan() override = default;

  const cuframes_frame_info_t& frame_info() const override { return info_; }

  py::capsule export_plane(Plane plane, const py::object& stream, const py::object& max_version,
                           const py::object& dl_device, const py::object& copy) override {
    require_pending();
    ExportView view = plane_view(info_, plane);
    ExportRequest req = parse_export_args(view.device, stream, max_version, dl_device, copy);
    if (req.has_stream) st_->streams.add(req.stream);
    return make_capsule(view, std::make_shared<ExportPin>(st_->core), req.versioned,
                        /*read_only=*/false);
  }

  uint64_t commit(std::optional<int64_t> pts_ns, const py::object& stream) {
    require_pending();
    const int64_t pts = pts_ns ? *pts_ns : pts_ ? *pts_ : cuframes_now_ns();
    uintptr_t s = stream_;
    if (!stream.is_none()) s = parse_stream(stream, "stream");
    else if (s == 0) s = st_->streams.join(info_.device);
    std::shared_ptr<LoanState> st = std::move(st_);
    st_.reset();
    uint64_t seq = 0;
    cuframes_status_t rc;
    std::string msg;
    {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(st->core->mu);
      if (st->loan == nullptr || st->core->pub == nullptr) {
        rc = CUFRAMES_ERR_INVALID_ARGUMENT;
        msg = "the publisher of '" + key_ + "' was closed: the loan was abandoned";
      } else {
        rc = cuframes_publisher_commit(st->core->pub, st->loan, pts, reinterpret_cast<void*>(s),
                                       &seq);
        st->loan = nullptr;  // consumed, also on failure
        if (rc != CUFRAMES_OK) msg = cuframes_last_error();
      }
    }
    {
      py::gil_scoped_release nogil;
      st.reset();  // takes core->mu
    }
    if (rc != CUFRAMES_OK) {
      state_ = "failed";
      throw_status(rc, msg);
    }
    seq_ = seq;
    pts_ = pts;
    state_ = "committed";
    return seq;
  }

  void abandon() {
    if (!st_) return;
    std::shared_ptr<LoanState> st = std::move(st_);
    st_.reset();
    state_ = "abandoned";
    py::gil_scoped_release nogil;
    st.reset();  // ~LoanState abandons it
  }

  uint64_t seq() const { return seq_; }
  const char* state() const { return state_; }
  std::optional<int64_t> pts() const { return pts_; }
  void set_pts(std::optional<int64_t> v) { pts_ = v; }
  // The colour description commit publishes with the frame.
  void set_color(const py::object& matrix, const py::object& range) {
    require_pending();
    const auto m = static_cast<cuframes_color_matrix_t>(enum_value(matrix, "color_matrix"));
    const auto r = static_cast<cuframes_color_range_t>(enum_value(range, "color_range"));
    cuframes_status_t rc = CUFRAMES_ERR_INVALID_ARGUMENT;
    std::string msg = "the publisher of '" + key_ + "' was closed: the loan was abandoned";
    {
      py::gil_scoped_release nogil;  // the lock may be held by a publish() waiting for a slot
      std::lock_guard<std::mutex> lock(st_->core->mu);
      if (st_->loan != nullptr) {
        rc = cuframes_loan_set_color(st_->loan, m, r);
        if (rc != CUFRAMES_OK) msg = cuframes_last_error();
      }
    }
    if (rc != CUFRAMES_OK) throw_status(rc, msg);
    info_.color_matrix = m;
    info_.color_range = r;
  }

 private:
  void require_pending() const {
    if (!st_) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   std::string("the loan is ") + state_ + ": its slot is no longer lent to you");
    }
    bool dead;
    {
      py::gil_scoped_release nogil;  // a STRICT_WAIT publish may hold mu for a while
      std::lock_guard<std::mutex> lock(st_->core->mu);
      dead = st_->loan == nullptr;
    }
    if (dead) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   "the publisher of '" + key_ + "' was closed: the loan was abandoned");
    }
  }

  std::shared_ptr<LoanState> st_;
  std::string key_;
  uintptr_t stream_ = 0;
  cuframes_frame_info_t info_{};
  uint64_t seq_ = 0;
  const char* state_ = "pending";
  std::optional<int64_t> pts_;
};

std::unique_ptr<Loan> Publisher::loan(const py::object& stream) {
  std::shared_ptr<PubCore> core = open_core();
  const uintptr_t s = stream.is_none() ? 0 : parse_stream(stream, "stream");
  std::shared_ptr<LoanState> state;
  cuframes_status_t st;
  std::string msg;
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(core->mu);
    cuframes_loan_t* l = nullptr;
    if (core->pub == nullptr) {
      st = CUFRAMES_ERR_INVALID_ARGUMENT;
      msg = "publisher of '" + key_ + "' is closed";
    } else {
      st = cuframes_publisher_loan(core->pub, &l);
      if (st != CUFRAMES_OK) msg = cuframes_last_error();
      else state = std::make_shared<LoanState>(core, l);
    }
  }
  if (st != CUFRAMES_OK) throw_status(st, msg);
  return std::make_unique<Loan>(std::move(state), key_, s);
}

template <class T>
void frame_like_properties(py::class_<T, Exportable>& c) {
  c.def_property_readonly(
       "cuda_ptr", [](const T& f) { return reinterpret_cast<uintptr_t>(f.frame_info().plane_y); },
       "Address of the Y plane (device pointer for cuda rings).")
      .def_property_readonly(
          "uv_ptr", [](const T& f) { return reinterpret_cast<uintptr_t>(f.frame_info().plane_uv); })
      .def_property_readonly("format",
                             [](const T& f) { return pixel_format(f.frame_info().geometry.format); })
      .def_property_readonly("width", [](const T& f) { return f.frame_info().geometry.width; })
      .def_property_readonly("height", [](const T& f) { return f.frame_info().geometry.height; })
      .def_property_readonly("pitch_y", [](const T& f) { return f.frame_info().geometry.pitch_y; })
      .def_property_readonly("pitch_uv",
                             [](const T& f) { return f.frame_info().geometry.pitch_uv; })
      .def_property_readonly("bytes_per_sample",
                             [](const T& f) { return f.frame_info().geometry.bytes_per_sample; })
      .def_property_readonly("memory", [](const T& f) { return memory_name(f.frame_info().memory); })
      .def_property_readonly("device", [](const T& f) { return f.frame_info().device; })
      .def_property_readonly("slot", [](const T& f) { return f.frame_info().slot; })
      .def("dlpack_y",
           [](T& f, const py::object& stream, const py::object& max_version) {
             return f.export_plane(Plane::kY, stream, max_version, py::none(), py::none());
           },
           py::arg("stream") = py::none(), py::arg("max_version") = py::none())
      .def("dlpack_uv",
           [](T& f, const py::object& stream, const py::object& max_version) {
             return f.export_plane(Plane::kUV, stream, max_version, py::none(), py::none());
           },
           py::arg("stream") = py::none(), py::arg("max_version") = py::none())
      .def("__dlpack__",
           [](T& f, const py::object& stream, const py::object& max_version,
              const py::object& dl_device, const py::object& copy) {
             return f.export_plane(Plane::kY, stream, max_version, dl_device, copy);
           },
           py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
           py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__dlpack_device__", &Exportable::dlpack_device)
      .def_property_readonly("y", [](py::object self) { return make_plane(self, Plane::kY); })
      .def_property_readonly("uv", [](py::object self) {
        plane_view(self.cast<T&>().frame_info(), Plane::kUV);
        return make_plane(self, Plane::kUV);
      })
      .def_property_readonly("yuv", [](py::object self) { return make_plane(self, Plane::kYUV); });
}

}  // namespace

void register_publisher(py::module_& m) {
  py::class_<Publisher> pub(
      m, "CuframesPublisher",
      "Owns a key and its ring of frame slots (use cuframes.publish()). Calls may come from any "
      "thread; they are serialized.");
  pub.def(py::init<const std::string&, uint32_t, uint32_t, const py::object&, uint32_t,
                   const py::object&, int, const py::object&, uint32_t, int, uint32_t, uint64_t,
                   uint32_t, const py::object&>(),
          py::arg("key"), py::arg("width"), py::arg("height"),
          py::arg("format") = pixel_format(CUFRAMES_FORMAT_NV12), py::arg("slots") = 8,
          py::arg("memory") = "cuda", py::arg("cuda_device") = 0,
          py::arg("policy") = publisher_policy(CUFRAMES_POLICY_DROP), py::kw_only(),
          py::arg("pitch") = 0, py::arg("wait_timeout_ms") = 1000,
          py::arg("max_subscribers") = CUFRAMES_MAX_SUBSCRIBERS,
          py::arg("packet_ring_bytes") = 0, py::arg("packet_ring_entries") = 1024,
          py::arg("runtime_dir") = py::none())
      .def("__enter__", [](py::object self) { return self; })
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
      .def("publish", &Publisher::publish, py::arg("source"), py::arg("pts_ns") = py::none(),
           py::kw_only(), py::arg("stream") = py::none(),
           py::arg("color_matrix") = color_matrix(CUFRAMES_COLOR_MATRIX_UNKNOWN),
           py::arg("color_range") = color_range(CUFRAMES_COLOR_RANGE_UNKNOWN),
           "Copies a frame into a free slot and publishes it; returns its seq. source: any "
           "DLPack array (numpy, torch, cupy) holding the whole frame, (height * 3 // 2, width) "
           "for NV12 (uint8) and P010 (uint16), (height, width) for GRAY8, any row stride, host "
           "or device memory; or a (y, uv) pair of plane arrays. pts_ns defaults to "
           "CLOCK_MONOTONIC now. Returns 0 when the DROP policy dropped the frame (every slot "
           "held); STRICT_WAIT raises CuframesFrameTimeout after wait_timeout_ms. stream: the "
           "CUDA stream to copy on (default: the legacy default stream). color_matrix, "
           "color_range: the frame's colour description (ColorMatrix, ColorRange), published "
           "with it.")
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

  m.def(
      "publish",
      [](const std::string& key, uint32_t width, uint32_t height, const py::object& format,
         uint32_t slots, const py::object& memory, int cuda_device, const py::object& policy,
         uint32_t pitch, int wait_timeout_ms, uint32_t max_subscribers,
         uint64_t packet_ring_bytes, uint32_t packet_ring_entries, const py::object& runtime_dir) {
        return std::make_unique<Publisher>(key, width, height, format, slots, memory, cuda_device,
                                           policy, pitch, wait_timeout_ms, max_subscribers,
                                           packet_ring_bytes, packet_ring_entries, runtime_dir);
      },
      py::arg("key"), py::arg("width"), py::arg("height"),
      py::arg("format") = pixel_format(CUFRAMES_FORMAT_NV12), py::arg("slots") = 8,
      py::arg("memory") = "cuda", py::arg("cuda_device") = 0,
      py::arg("policy") = publisher_policy(CUFRAMES_POLICY_DROP), py::kw_only(),
      py::arg("pitch") = 0, py::arg("wait_timeout_ms") = 1000,
      py::arg("max_subscribers") = CUFRAMES_MAX_SUBSCRIBERS, py::arg("packet_ring_bytes") = 0,
      py::arg("packet_ring_entries") = 1024, py::arg("runtime_dir") = py::none(),
      "Creates a ring and starts serving key; returns a CuframesPublisher. memory: \"cuda\" "
      "(device memory on cuda_device) or \"host\" (memfd). policy: what to do when every slot "
      "is held (DROP: drop the new frame; STRICT_WAIT: wait up to wait_timeout_ms). pitch: "
      "bytes per row, 0 = aligned automatically. packet_ring_bytes > 0 adds a packet ring "
      "(64 KiB .. 1 GiB). Raises CuframesShmError if another live publisher holds the key, "
      "CuframesDeviceLost when memory=\"cuda\" and no usable GPU is there.");

  py::class_<Loan, Exportable> loan(
      m, "CuframesLoan",
      "A slot lent for writing (CuframesPublisher.loan()). Its DLPack exports are writable. "
      "Published by commit() or on leaving the with block; abandoned by abandon(), an exception "
      "in the block, or garbage collection. Do not write through its tensors after that.");
  loan.def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](Loan& l, const py::object& exc_type, const py::object&, const py::object&) {
             if (std::string(l.state()) != "pending") return false;
             if (exc_type.is_none()) l.commit(std::nullopt, py::none());
             else l.abandon();
             return false;
           })
      .def("commit", &Loan::commit, py::arg("pts_ns") = py::none(), py::arg("stream") = py::none(),
           "Publishes the slot; returns its seq. pts_ns: this, else the pts_ns attribute, else "
           "now. Cuda rings: it is published once the work queued on stream (default: the "
           "streams the loan was exported to with DLPack, else the stream given to loan(), else "
           "the default stream) has completed.")
      .def("abandon", &Loan::abandon, "Gives the slot back unpublished (idempotent).")
      .def_property("pts_ns", &Loan::pts, &Loan::set_pts,
                    "The pts the frame is published with (None: CLOCK_MONOTONIC at commit).")
      .def_property(
          "color_matrix", [](const Loan& l) { return color_matrix(l.frame_info().color_matrix); },
          [](Loan& l, const py::object& v) {
            l.set_color(v, color_range(l.frame_info().color_range));
          },
          "The ColorMatrix the frame is published with (default UNKNOWN).")
      .def_property(
          "color_range", [](const Loan& l) { return color_range(l.frame_info().color_range); },
          [](Loan& l, const py::object& v) {
            l.set_color(color_matrix(l.frame_info().color_matrix), v);
          },
          "The ColorRange the frame is published with (default UNKNOWN).")
      .def_property_readonly("seq", &Loan::seq, "The published seq; 0 until committed.")
      .def_property_readonly("state", &Loan::state,
                             "\"pending\", \"committed\", \"abandoned\" or \"failed\".")
      .def_property_readonly("committed",
                             [](const Loan& l) { return std::string(l.state()) == "committed"; })
      .def("__repr__", [](const Loan& l) {
        const cuframes_frame_info_t& i = l.frame_info();
        return "<CuframesLoan slot=" + std::to_string(i.slot) + " " +
               cuframes_format_name(i.geometry.format) + " " + std::to_string(i.geometry.width) +
               "x" + std::to_string(i.geometry.height) + " " + l.state() + ">";
      });
  frame_like_properties(loan);
}

}  // namespace cfpy
