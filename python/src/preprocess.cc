// cuframes.preprocess: frames -> one batch (cuframes_preprocess) in memory of its own, exported
// through DLPack. The C++ half is _BatchBase; cuframes.CuframesBatch adds to_frame() in Python.
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common.h"
#include "dlpack.h"
#include "frame.h"
#include "owned_memory.h"

namespace cfpy {
namespace {

// A str option: its enum value, by the C library's own names (cuframes_dtype_name, ...).
template <class E>
E parse_name(const py::handle& v, const char* what, const char* (*name)(E)) {
  std::string allowed;
  for (int i = 1; i < 64; ++i) {
    const char* n = name(static_cast<E>(i));
    if (std::strcmp(n, "invalid") == 0) break;
    allowed += std::string(allowed.empty() ? "" : ", ") + "'" + n + "'";
  }
  if (!py::isinstance<py::str>(v)) {
    throw py::type_error(std::string(what) + " must be a str (" + allowed + "), got " +
                         std::string(py::str(py::type::of(v).attr("__name__"))));
  }
  const std::string s = py::cast<std::string>(v);
  for (int i = 1; i < 64; ++i) {
    const char* n = name(static_cast<E>(i));
    if (std::strcmp(n, "invalid") == 0) break;
    if (s == n) return static_cast<E>(i);
  }
  throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
               std::string(what) + " must be one of " + allowed + ", got '" + s + "'");
}

float as_float(const py::handle& v, const char* what) {
  if (PyBool_Check(v.ptr()) || !(PyFloat_Check(v.ptr()) || PyIndex_Check(v.ptr()))) {
    throw py::type_error(std::string(what) + " must be a number, got " +
                         std::string(py::str(py::type::of(v).attr("__name__"))));
  }
  return static_cast<float>(py::cast<double>(v));
}

// mean / std: None (keeps the default) or 3 numbers, one per output channel.
void per_channel(const py::object& v, const char* what, float out[3]) {
  if (v.is_none()) return;
  if (py::isinstance<py::str>(v) || !py::isinstance<py::sequence>(v)) {
    throw py::type_error(std::string(what) + " must be None or a sequence of 3 numbers, got " +
                         std::string(py::str(py::type::of(v).attr("__name__"))));
  }
  py::sequence s = py::reinterpret_borrow<py::sequence>(v);
  if (py::len(s) != 3) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                 std::string(what) + " must be None or 3 numbers (one per output channel), got " +
                     std::to_string(py::len(s)));
  }
  for (size_t c = 0; c < 3; ++c) {
    out[c] = as_float(s[c], (std::string(what) + "[" + std::to_string(c) + "]").c_str());
  }
}

// size: (height, width) like the tensor's last two dimensions, or one int for a square.
void parse_size(const py::object& v, uint32_t* width, uint32_t* height) {
  const auto dim = [](const py::handle& d, const char* what) -> uint32_t {
    if (PyBool_Check(d.ptr()) || !PyIndex_Check(d.ptr())) {
      throw py::type_error(std::string("size ") + what + " must be an int");
    }
    const long long n = py::cast<long long>(d);
    if (n < 1 || n > 16384) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   std::string("size ") + what + " " + std::to_string(n) + " is outside 1..16384");
    }
    return static_cast<uint32_t>(n);
  };
  if (PyIndex_Check(v.ptr()) && !PyBool_Check(v.ptr())) {
    *width = *height = dim(v, "");
    return;
  }
  if (py::isinstance<py::str>(v) || !py::isinstance<py::sequence>(v) ||
      py::len(py::reinterpret_borrow<py::sequence>(v)) != 2) {
    throw py::type_error("size must be (height, width) or an int, got " + std::string(py::repr(v)));
  }
  py::sequence s = py::reinterpret_borrow<py::sequence>(v);
  *height = dim(s[0], "height");
  *width = dim(s[1], "width");
}

class Batch {
 public:
  Batch(const py::object& frames, const py::object& size, const py::object& dtype,
        const py::object& layout, const py::object& channels, const py::object& resize,
        const py::object& pad_value, const py::object& scale, const py::object& mean,
        const py::object& std, const py::object& stream) {
    // Every frame's hold, kept until the work is queued: a frame released meanwhile by another
    // thread is then only given back after it (its release joins the stream recorded below).
    std::vector<std::shared_ptr<FrameHold>> holds;
    std::vector<cuframes_frame_t*> handles;
    uintptr_t consumer_stream = 0;
    const auto add = [&](const py::handle& item, size_t i) {
      if (!py::isinstance<Frame>(item)) {
        throw py::type_error("frames[" + std::to_string(i) + "] is a " +
                             std::string(py::str(py::type::of(item).attr("__name__"))) +
                             ", not a CuframesFrame");
      }
      const Frame& f = item.cast<const Frame&>();
      if (f.released()) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, "frames[" + std::to_string(i) + "] (seq " +
                                                        std::to_string(f.frame_info().seq) +
                                                        ") was released");
      }
      if (holds.empty()) consumer_stream = f.consumer_stream();
      holds.push_back(f.hold());
      handles.push_back(f.hold()->handle());
      sizes_.emplace_back(f.frame_info().geometry.width, f.frame_info().geometry.height);
    };
    if (py::isinstance<Frame>(frames)) {
      add(frames, 0);
    } else if (py::isinstance<py::str>(frames) || !py::isinstance<py::sequence>(frames)) {
      throw py::type_error("frames must be a CuframesFrame or a sequence of them, got " +
                           std::string(py::str(py::type::of(frames).attr("__name__"))));
    } else {
      py::sequence seq = py::reinterpret_borrow<py::sequence>(frames);
      for (size_t i = 0; i < py::len(seq); ++i) add(seq[i], i);
    }
    if (handles.empty()) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   "frames is empty: give one CuframesFrame or a sequence of them");
    }

    cuframes_preprocess_options_t o;
    cuframes_preprocess_options_init(&o);
    parse_size(size, &o.width, &o.height);
    o.dtype = parse_name(dtype, "dtype", &cuframes_dtype_name);
    o.layout = parse_name(layout, "layout", &cuframes_layout_name);
    o.channels = parse_name(channels, "channels", &cuframes_channels_name);
    o.resize = parse_name(resize, "resize", &cuframes_resize_name);
    o.pad_value = as_float(pad_value, "pad_value");
    o.scale = as_float(scale, "scale");
    per_channel(mean, "mean", o.mean);
    per_channel(std, "std", o.std);
    opts_ = o;

    const cuframes_frame_info_t& first = holds[0]->info();
    device_ = first.memory == CUFRAMES_MEMORY_CUDA ? first.device : -1;
    const size_t bytes = cuframes_preprocess_bytes(&o, handles.size());
    if (device_ < 0) {
      if (!stream.is_none()) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                     "stream must be None for frames in host memory (the batch is made on the "
                     "CPU)");
      }
      if (bytes != 0) mem_ = OwnedMemory::host(bytes, "preprocess");
    } else {
#ifdef CUFRAMES_WITH_CUDA
      if (py::isinstance<py::int_>(stream) && py::cast<long long>(stream) < 0) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                     "stream " + std::string(py::str(stream)) + " is not a cudaStream_t");
      }
      const uintptr_t s =
          dlpack_stream_value(stream.is_none() ? consumer_stream : parse_stream(stream, "stream"));
      stream_ = s;
      o.cuda_stream = reinterpret_cast<void*>(s);
      if (bytes != 0) mem_ = OwnedMemory::device(bytes, device_, s, "preprocess");
#else
      throw_status(CUFRAMES_ERR_DEVICE_LOST, "frames[0] is on cuda device " +
                                                 std::to_string(device_) +
                                                 ", but this cuframes was built without CUDA");
#endif
    }
    std::vector<cuframes_transform_t> tf(handles.size());
    cuframes_status_t st;
    std::string msg;
    {
      py::gil_scoped_release nogil;
      st = cuframes_preprocess(handles.data(), handles.size(), &o, mem_ ? mem_->data() : nullptr,
                               bytes, tf.data());
      if (st != CUFRAMES_OK) msg = cuframes_last_error();
    }
    if (st != CUFRAMES_OK) throw_status(st, msg);
    if (device_ >= 0) {
      // The frames' releases (now or whenever) are ordered after the kernel.
      for (const auto& h : holds) h->streams().add(stream_);
    }
    for (const cuframes_transform_t& t : tf) {
      transforms_.emplace_back(t.scale_x, t.scale_y, t.pad_x, t.pad_y);
    }
    count_ = handles.size();
  }

  ExportView view() const {
    ExportView v;
    v.data = mem_->data();
    if (device_ >= 0) {
      v.device.device_type = kDLCUDA;
      v.device.device_id = device_;
    } else {
      v.device.device_type = kDLCPU;
      v.device.device_id = 0;
    }
    v.dtype.code = opts_.dtype == CUFRAMES_DTYPE_UINT8 ? kDLUInt : kDLFloat;
    v.dtype.bits = static_cast<uint8_t>(opts_.dtype == CUFRAMES_DTYPE_UINT8     ? 8
                                        : opts_.dtype == CUFRAMES_DTYPE_FLOAT16 ? 16
                                                                                : 32);
    v.dtype.lanes = 1;
    v.ndim = 4;
    const int64_t h = opts_.height, w = opts_.width;
    const auto s = shape();
    for (int d = 0; d < 4; ++d) v.shape[d] = s[d];
    if (opts_.layout == CUFRAMES_LAYOUT_NCHW) {
      const int64_t st[4] = {3 * h * w, h * w, w, 1};
      std::copy(st, st + 4, v.strides);
    } else {
      const int64_t st[4] = {3 * h * w, 3 * w, 3, 1};
      std::copy(st, st + 4, v.strides);
    }
    return v;
  }

  std::vector<int64_t> shape() const {
    const int64_t n = static_cast<int64_t>(count_), h = opts_.height, w = opts_.width;
    if (opts_.layout == CUFRAMES_LAYOUT_NCHW) return {n, 3, h, w};
    return {n, h, w, 3};
  }

  py::capsule dlpack(const py::object& stream, const py::object& max_version,
                     const py::object& dl_device, const py::object& copy) {
    const ExportView v = view();
    const ExportRequest req = parse_export_args(v.device, stream, max_version, dl_device, copy);
    refuse_copy(req, "a batch (compact already)");
#ifdef CUFRAMES_WITH_CUDA
    if (device_ >= 0) {
      // DLPack: the consumer's stream must see the batch written. None is the legacy default
      // stream; -1 asks for no ordering.
      const uintptr_t consumer = req.has_stream ? req.stream : stream.is_none() ? kLegacyStream : 0;
      if (consumer != 0) {
        order_after(consumer, stream_, device_,
                    "preprocess: ordering the consumer's stream after the batch");
        mem_->streams().add(consumer);  // the memory is freed after its work there
      }
    }
#endif
    return make_capsule(v, mem_, req.versioned, /*read_only=*/false);
  }

  py::tuple dlpack_device() const {
    if (device_ >= 0) return py::make_tuple(static_cast<int>(kDLCUDA), device_);
    return py::make_tuple(static_cast<int>(kDLCPU), 0);
  }

  size_t count() const {
    return count_;
  }
  const cuframes_preprocess_options_t& options() const {
    return opts_;
  }
  int device() const {
    return device_;
  }
  py::object stream() const {
    return device_ >= 0 ? py::object(py::int_(stream_)) : py::none();
  }
  const std::vector<std::tuple<float, float, float, float>>& transforms() const {
    return transforms_;
  }
  const std::vector<std::pair<uint32_t, uint32_t>>& frame_sizes() const {
    return sizes_;
  }
  uintptr_t ptr() const {
    return reinterpret_cast<uintptr_t>(mem_->data());
  }
  size_t nbytes() const {
    return cuframes_preprocess_bytes(&opts_, count_);
  }

 private:
  std::shared_ptr<OwnedMemory> mem_;
  cuframes_preprocess_options_t opts_{};
  size_t count_ = 0;
  int device_ = -1;
  uintptr_t stream_ = 0;
  std::vector<std::tuple<float, float, float, float>> transforms_;
  std::vector<std::pair<uint32_t, uint32_t>> sizes_;
};

}  // namespace

void register_preprocess(py::module_& m) {
  py::class_<Batch>(m, "_BatchBase", "The C++ half of CuframesBatch (use cuframes.preprocess()).")
      .def(py::init<const py::object&, const py::object&, const py::object&, const py::object&,
                    const py::object&, const py::object&, const py::object&, const py::object&,
                    const py::object&, const py::object&, const py::object&>(),
           py::arg("frames"), py::arg("size") = py::make_tuple(640, 640), py::kw_only(),
           py::arg("dtype") = "float16", py::arg("layout") = "nchw", py::arg("channels") = "rgb",
           py::arg("resize") = "letterbox", py::arg("pad_value") = 114,
           py::arg("scale") = 1.0 / 255.0, py::arg("mean") = py::none(),
           py::arg("std") = py::none(), py::arg("stream") = py::none())
      .def("__dlpack__", &Batch::dlpack, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
           py::arg("copy") = py::none(),
           "DLPack protocol: the batch, (N, 3, H, W) or (N, H, W, 3), compact, writable. "
           "stream: the consumer's CUDA stream, made to wait for the batch's kernel (None: the "
           "legacy default stream; -1: no ordering); the memory is freed after the work queued "
           "there.")
      .def("__dlpack_device__", &Batch::dlpack_device,
           "(2, device) for a batch of cuda frames (kDLCUDA), (1, 0) for host frames (kDLCPU).")
      .def("__len__", &Batch::count, "The number of frames (images) in the batch.")
      .def_property_readonly(
          "shape", [](const Batch& b) { return py::tuple(py::cast(b.shape())); },
          "(N, 3, H, W) for nchw, (N, H, W, 3) for nhwc.")
      .def_property_readonly(
          "dtype", [](const Batch& b) { return cuframes_dtype_name(b.options().dtype); },
          "\"uint8\", \"float16\" or \"float32\".")
      .def_property_readonly(
          "layout", [](const Batch& b) { return cuframes_layout_name(b.options().layout); },
          "\"nchw\" or \"nhwc\".")
      .def_property_readonly(
          "channels", [](const Batch& b) { return cuframes_channels_name(b.options().channels); },
          "\"rgb\" or \"bgr\".")
      .def_property_readonly(
          "resize", [](const Batch& b) { return cuframes_resize_name(b.options().resize); },
          "\"letterbox\" or \"stretch\".")
      .def_property_readonly("device", &Batch::device,
                             "CUDA device of the batch; -1 for host memory.")
      .def_property_readonly("stream", &Batch::stream,
                             "The cudaStream_t the batch was written on (None for host memory).")
      .def_property_readonly("transforms", &Batch::transforms,
                             "Per frame, (scale_x, scale_y, pad_x, pad_y): tensor x = frame x * "
                             "scale_x + pad_x, tensor y = frame y * scale_y + pad_y.")
      .def_property_readonly("frame_sizes", &Batch::frame_sizes,
                             "Per frame, its (width, height) in pixels.")
      .def_property_readonly("ptr", &Batch::ptr,
                             "Address of the first value (a device pointer for cuda batches).")
      .def_property_readonly("nbytes", &Batch::nbytes, "Bytes of the batch.")
      .def("__repr__", [](const Batch& b) {
        std::string shape;
        for (int64_t d : b.shape()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
        return "<CuframesBatch (" + shape + ") " + cuframes_dtype_name(b.options().dtype) + " " +
               (b.device() >= 0 ? "cuda:" + std::to_string(b.device()) : std::string("host")) + ">";
      });
}

}  // namespace cfpy
