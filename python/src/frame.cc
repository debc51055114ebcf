// CuframesFrame.
#include "frame.h"

#include <cstring>
#include <string>
#include <utility>

#include "owned_memory.h"
#include "raw_method.h"
#include "torch_interop.h"

namespace cfpy {

FrameHold::FrameHold(cuframes_frame_t* frame) : frame_(frame) {
  cuframes_frame_get_info(frame_, &info_);
}

void FrameHold::attach(cuframes_frame_t* frame) {
  frame_ = frame;
  cuframes_frame_get_info(frame_, &info_);
}

FrameHold::~FrameHold() {
  (void)release(nullptr);
}

cuframes_status_t FrameHold::release(std::string* message) {
  if (frame_ == nullptr) return CUFRAMES_OK;
  const uintptr_t stream = streams_.join(info_.device);
  cuframes_status_t st = cuframes_frame_release(frame_, reinterpret_cast<void*>(stream));
  frame_ = nullptr;
  if (st != CUFRAMES_OK && message != nullptr) *message = cuframes_last_error();
  return st;
}

Frame::Frame(cuframes_frame_t* frame, uintptr_t consumer_stream,
             std::shared_ptr<TorchSpares> spares)
    : hold_(std::make_shared<FrameHold>(frame)),
      consumer_stream_(consumer_stream),
      spares_(std::move(spares)) {
  info_ = hold_->info();
}

Frame::Frame(uintptr_t consumer_stream, std::shared_ptr<TorchSpares> spares,
             std::shared_ptr<FrameRecycler> recycler)
    : hold_(std::make_shared<FrameHold>()),
      consumer_stream_(consumer_stream),
      spares_(std::move(spares)),
      recycler_(std::move(recycler)) {}

void Frame::attach(cuframes_frame_t* frame) {
  hold_->attach(frame);
  info_ = hold_->info();
}

void Frame::recycle() {
  hold_ = std::make_shared<FrameHold>();  // released: the old hold is its tensors' alone
  info_ = cuframes_frame_info_t{};
}

void Frame::release_and_give_back(const py::handle& self, const py::object& stream) {
  release(stream);
  if (recycler_ && !hold_) recycler_->keep(self.ptr());
}

PyObject* Frame::take_spare(Plane plane, const ExportView& view, uintptr_t stream) {
  if (!spares_ || !hold_) return nullptr;
  return spares_->take(info_.slot, plane, view, hold_, stream);
}

void Frame::want_spare(Plane plane, const ExportView& view) {
  if (spares_ && hold_) spares_->want(info_.slot, plane, view);
}

void Frame::require_held() const {
  if (!hold_) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, "frame " + std::to_string(info_.seq) +
                                                    " was released; its memory is no longer ours");
  }
}

py::capsule Frame::export_plane(Plane plane, const py::object& stream,
                                const py::object& max_version, const py::object& dl_device,
                                const py::object& copy) {
  require_held();
  ExportView view = plane_view(info_, plane);
  ExportRequest req = parse_export_args(view.device, stream, max_version, dl_device, copy);
  if (req.copy) {
    CompactCopy c = copy_view(view, req);
    return make_capsule(c.view, c.memory, req.versioned, /*read_only=*/false, /*copied=*/true);
  }
  if (req.has_stream) hold_->streams().add(req.stream);
  // Subscribers read: host frames are even mapped read-only. Legacy capsules cannot say so.
  return make_capsule(view, hold_, req.versioned, /*read_only=*/true);
}

CompactCopy Frame::compact_copy(Plane plane) {
  require_held();
  return copy_view(plane_view(info_, plane), ExportRequest{});
}

CompactCopy Frame::copy_view(const ExportView& view, const ExportRequest& req) {
  const size_t sample = view.dtype.bits / 8;
  const size_t row = static_cast<size_t>(view.shape[1]) * sample;
  const size_t rows = static_cast<size_t>(view.shape[0]);
  const size_t pitch = static_cast<size_t>(view.strides[0]) * sample;
  ExportView out = view;
  out.strides[0] = view.shape[1];  // compact: rows follow each other
  std::shared_ptr<OwnedMemory> mem;
  uintptr_t copy_stream = 0;
  if (view.device.device_type == kDLCPU) {
    mem = OwnedMemory::host(row * rows, "copy of a frame plane");
    py::gil_scoped_release nogil;  // 12 MB for a 4K frame
    auto* dst = static_cast<uint8_t*>(mem->data());
    const auto* src = static_cast<const uint8_t*>(view.data);
    for (size_t r = 0; r < rows; ++r) std::memcpy(dst + r * row, src + r * pitch, row);
  } else {
#ifdef CUFRAMES_WITH_CUDA
    // On the consumer's stream (stream=None: the subscriber's consumer_stream), so the copy is
    // ordered before the consumer's work without an event; the frame's release waits for it.
    const uintptr_t s = dlpack_stream_value(req.has_stream ? req.stream : consumer_stream_);
    const int device = view.device.device_id;
    mem = OwnedMemory::device(row * rows, device, s, "copy of a frame plane");
    DeviceScope scope(device);
    cudaError_t e = cudaMemcpy2DAsync(mem->data(), row, view.data, pitch, row, rows,
                                      cudaMemcpyDeviceToDevice, reinterpret_cast<cudaStream_t>(s));
    if (e != cudaSuccess) {
      throw_status(CUFRAMES_ERR_DEVICE_LOST, cuda_message(e, "copying a frame plane"));
    }
    hold_->streams().add(s);
    copy_stream = s;
    if (req.unordered) {  // stream=-1: the consumer orders nothing, so the copy is done on return
      py::gil_scoped_release nogil;
      e = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(s));
      if (e != cudaSuccess) {
        throw_status(CUFRAMES_ERR_DEVICE_LOST, cuda_message(e, "copying a frame plane"));
      }
    }
#else
    (void)req;
    throw_status(CUFRAMES_ERR_DEVICE_LOST, "this cuframes was built without CUDA");
#endif
  }
  out.data = mem->data();
  return CompactCopy{std::move(mem), out, copy_stream};
}

void Frame::release(const py::object& stream) {
  if (!hold_) return;
  if (!stream.is_none()) {
    const uintptr_t s = parse_stream(stream, "stream");
    if (s != 0 && info_.memory == CUFRAMES_MEMORY_CUDA) hold_->streams().add(s);
  }
  std::shared_ptr<FrameHold> hold = std::move(hold_);
  hold_.reset();
  if (hold.use_count() == 1) {  // no DLPack tensor left: release now and report failures
    // With the GIL: a release never waits (host: an atomic; cuda: a stream query, at most a
    // host-function launch), and giving the GIL away would let another thread keep it for up
    // to its switch interval before this one got it back.
    std::string msg;
    const cuframes_status_t st = hold->release(&msg);
    if (st != CUFRAMES_OK) throw_status(st, msg);
  }
}

void Frame::synchronize() {
  require_held();
  if (info_.memory != CUFRAMES_MEMORY_CUDA) return;  // a host frame's work is the caller's own
#ifdef CUFRAMES_WITH_CUDA
  // The consumer stream first (0: the legacy default stream), then the exports' streams; the
  // busy ones are gathered at the front. Exported to more than kMax: the whole device.
  constexpr size_t kMax = 8;
  uintptr_t streams[kMax + 1];
  streams[0] = dlpack_stream_value(consumer_stream_);
  const size_t exported = hold_->streams().copy_to(streams + 1, kMax);
  DeviceScope scope(info_.device);
  const bool device = exported > kMax;
  size_t busy = 0;
  for (size_t i = 0; !device && i <= exported; ++i) {
    if (i > 0 && streams[i] == streams[0]) continue;
    const cudaError_t e = cudaStreamQuery(reinterpret_cast<cudaStream_t>(streams[i]));
    if (e == cudaErrorNotReady) {
      streams[busy++] = streams[i];
    } else if (e != cudaSuccess) {
      throw_status(CUFRAMES_ERR_DEVICE_LOST, cuda_message(e, "synchronizing the frame's streams"));
    }
  }
  if (!device && busy == 0) return;  // the common case: the frame's work is done, the GIL kept
  cudaError_t e = cudaSuccess;
  {
    py::gil_scoped_release nogil;
    if (device) e = cudaDeviceSynchronize();
    for (size_t i = 0; i < busy && e == cudaSuccess; ++i) {
      e = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(streams[i]));
    }
  }
  if (e != cudaSuccess) {
    throw_status(CUFRAMES_ERR_DEVICE_LOST, cuda_message(e, "synchronizing the frame's streams"));
  }
#endif
}

namespace {

// frame.synchronize(), a raw method (raw_method.h): a detector's per-frame call.
PyObject* synchronize_raw(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames) {
  return raw_call([&] {
    parse_args("synchronize", args, nargs, kwnames, {}, nullptr);
    self_as<Frame>(self).synchronize();
    Py_INCREF(Py_None);
    return Py_None;
  });
}

// frame.release(stream=None), a raw method (raw_method.h): a detector's per-frame call.
PyObject* release_raw(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return raw_call([&] {
    PyObject* stream = nullptr;
    parse_args("release", args, nargs, kwnames, {"stream"}, &stream);
    self_as<Frame>(self).release_and_give_back(
        self, py::reinterpret_borrow<py::object>(stream == nullptr ? Py_None : stream));
    Py_INCREF(Py_None);
    return Py_None;
  });
}

// frame.__exit__(exc_type, exc_value, traceback), a raw method: the end of a detector's
// `with sub.next_frame() as frame:` block, each frame.
PyObject* exit_raw(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return raw_call([&] {
    (void)args;
    if (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) != 0) {
      throw py::type_error("__exit__() takes no keyword arguments");
    }
    if (nargs != 3) {
      throw py::type_error("__exit__() takes exactly 3 arguments (" + std::to_string(nargs) +
                           " given)");
    }
    self_as<Frame>(self).release_and_give_back(self, py::none());
    Py_INCREF(Py_False);
    return Py_False;
  });
}

const char* const kExitDoc =
    "__exit__($self, exc_type, exc_value, traceback, /)\n--\n\n"
    "Releases the frame (release()) at the end of a with block; exceptions propagate.";

const char* const kReleaseDoc =
    "release($self, /, stream=None)\n--\n\n"
    "Gives the frame back (idempotent). DLPack tensors exported from it keep the slot held until "
    "they are freed. Cuda frames: the hold is dropped once the work queued on the streams the "
    "tensors were exported to (or ``stream``, or the subscriber's consumer_stream) has finished.";

const char* const kSynchronizeDoc =
    "synchronize($self, /)\n--\n\n"
    "Waits until the work queued so far on the frame's CUDA streams has finished: the "
    "subscriber's consumer_stream (the legacy default stream without one) and every stream its "
    "tensors were ordered on (.torch(), DLPack exports). The frame's pixels are complete when "
    "next_frame() returns it; this gives the host a point where the work queued on it is done, "
    "as stream.synchronize() on those streams would, keeping the GIL when they are idle "
    "already. Host frames: returns at once. CuframesInvalidArgument once released.";

}  // namespace

void register_frame(py::module_& m) {
  register_frame_recycler(m);
  py::class_<Exportable>(m, "_Exportable");
  py::class_<Frame, Exportable> cls(
      m, "CuframesFrame",
      "A frame held by a subscriber. The publisher never overwrites it until it is released: by "
      "release(), leaving the ``with`` block, or garbage collection, and only once every DLPack "
      "tensor exported from it has been freed too. Belongs to one thread at a time. A frame "
      "object of next_frame() that its user released and no longer refers to may be reused by "
      "a later next_frame() (frame_recycler.h).");
  add_torch_method<Frame>(cls);
  add_raw_method(cls, "synchronize", synchronize_raw, kSynchronizeDoc);
  add_raw_method(cls, "release", release_raw, kReleaseDoc);
  add_raw_method(cls, "__exit__", exit_raw, kExitDoc);
  cls.def("__enter__", [](py::object self) { return self; })
      .def_property_readonly("released", &Frame::released,
                             "True once release() was called (or the with block left).")
      .def_property_readonly(
          "cuda_ptr",
          [](const Frame& f) { return reinterpret_cast<uintptr_t>(f.frame_info().plane_y); },
          "Address of the Y plane: a device pointer for cuda frames, a host pointer for host "
          "frames. Valid until released.")
      .def_property_readonly(
          "uv_ptr",
          [](const Frame& f) { return reinterpret_cast<uintptr_t>(f.frame_info().plane_uv); },
          "Address of the UV plane (0 for GRAY8).")
      .def_property_readonly(
          "format", [](const Frame& f) { return pixel_format(f.frame_info().geometry.format); })
      .def_property_readonly("width", [](const Frame& f) { return f.frame_info().geometry.width; })
      .def_property_readonly("height",
                             [](const Frame& f) { return f.frame_info().geometry.height; })
      .def_property_readonly(
          "pitch_y", [](const Frame& f) { return f.frame_info().geometry.pitch_y; },
          "Bytes between rows of the Y plane (may be larger than width * bytes_per_sample).")
      .def_property_readonly(
          "pitch_uv", [](const Frame& f) { return f.frame_info().geometry.pitch_uv; },
          "Bytes between rows of the UV plane (0 for GRAY8).")
      .def_property_readonly(
          "bytes_per_sample",
          [](const Frame& f) { return f.frame_info().geometry.bytes_per_sample; },
          "1 (NV12, GRAY8) or 2 (P010).")
      .def_property_readonly(
          "seq", [](const Frame& f) { return f.frame_info().seq; },
          "The publisher's sequence number, from 1.")
      .def_property_readonly(
          "pts_ns", [](const Frame& f) { return f.frame_info().pts_ns; },
          "Presentation time given by the publisher (CLOCK_MONOTONIC ns by "
          "default).")
      .def_property_readonly(
          "publish_ns", [](const Frame& f) { return f.frame_info().publish_ns; },
          "CLOCK_MONOTONIC when it was published.")
      .def_property_readonly(
          "memory", [](const Frame& f) { return memory_name(f.frame_info().memory); },
          "\"cuda\" or \"host\".")
      .def_property_readonly(
          "device", [](const Frame& f) { return f.frame_info().device; },
          "CUDA device of the pointers; -1 for host frames.")
      .def_property_readonly("slot", [](const Frame& f) { return f.frame_info().slot; })
      .def_property_readonly(
          "color_matrix", [](const Frame& f) { return color_matrix(f.frame_info().color_matrix); },
          "ColorMatrix the publisher described the frame with (UNKNOWN if it did not).")
      .def_property_readonly(
          "color_range", [](const Frame& f) { return color_range(f.frame_info().color_range); },
          "ColorRange the publisher described the frame with (UNKNOWN if it did not).")
      .def(
          "dlpack_y",
          [](Frame& f, const py::object& stream, const py::object& max_version) {
            return f.export_plane(Plane::kY, stream, max_version, py::none(), py::none());
          },
          py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
          "A DLPack capsule of the Y plane: shape (height, width), strides (pitch, 1) in "
          "samples, uint8 (uint16 for P010).")
      .def(
          "dlpack_uv",
          [](Frame& f, const py::object& stream, const py::object& max_version) {
            return f.export_plane(Plane::kUV, stream, max_version, py::none(), py::none());
          },
          py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
          "A DLPack capsule of the interleaved UV plane: shape (height // 2, width). "
          "CuframesInvalidArgument for GRAY8.")
      .def(
          "__dlpack__",
          [](Frame& f, const py::object& stream, const py::object& max_version,
             const py::object& dl_device, const py::object& copy) {
            return f.export_plane(Plane::kY, stream, max_version, dl_device, copy);
          },
          py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
          py::arg("dl_device") = py::none(), py::arg("copy") = py::none(),
          "DLPack protocol: the Y plane. stream: the consumer's CUDA stream (the hold is "
          "released only after the work queued on it); max_version >= (1, 0) gives a "
          "\"dltensor_versioned\" capsule flagged read-only, else a legacy \"dltensor\" one. "
          "copy=True: a compact copy of the consumer's own (rows of width samples), made on "
          "its stream.")
      .def("__dlpack_device__", &Exportable::dlpack_device,
           "(2, device) for cuda frames (kDLCUDA), (1, 0) for host frames (kDLCPU).")
      .def_property_readonly(
          "y", [](py::object self) { return make_plane(self, Plane::kY); },
          "The Y plane as a DLPack producer (CuframesPlane).")
      .def_property_readonly(
          "uv",
          [](py::object self) {
            plane_view(self.cast<Frame&>().frame_info(), Plane::kUV);  // raises for GRAY8
            return make_plane(self, Plane::kUV);
          },
          "The UV plane as a DLPack producer (CuframesPlane).")
      .def_property_readonly(
          "yuv", [](py::object self) { return make_plane(self, Plane::kYUV); },
          "The whole frame as one (height * 3 // 2, width) DLPack producer: Y rows then UV "
          "rows, the layout publish() takes (just Y for GRAY8).")
      .def("__repr__", [](const Frame& f) {
        const cuframes_frame_info_t& i = f.frame_info();
        return "<CuframesFrame seq=" + std::to_string(i.seq) + " " +
               cuframes_format_name(i.geometry.format) + " " + std::to_string(i.geometry.width) +
               "x" + std::to_string(i.geometry.height) + " " + memory_name(i.memory) +
               (f.released() ? " released>" : ">");
      });
}

}  // namespace cfpy
