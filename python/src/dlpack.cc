// DLPack export: frames, loans and their planes (dlpack_import.cc: publish's sources).
#include "dlpack.h"

#include <pybind11/stl.h>

#include "owned_memory.h"
#include "torch_interop.h"
#include "torch_spares.h"

#include <string>

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cfpy {
namespace {

struct LegacyExport {
  DLManagedTensor managed{};
  std::shared_ptr<void> owner;
  int64_t shape[ExportView::kMaxDims] = {};
  int64_t strides[ExportView::kMaxDims] = {};
};

struct VersionedExport {
  DLManagedTensorVersioned managed{};
  std::shared_ptr<void> owner;
  int64_t shape[ExportView::kMaxDims] = {};
  int64_t strides[ExportView::kMaxDims] = {};
};

// Deleters: no Python API, so they may run on any thread, with or without the GIL. Dropping the
// owner may release a frame's hold (cuframes_frame_release) or abandon a loan: C calls only.
void legacy_deleter(DLManagedTensor* self) {
  delete static_cast<LegacyExport*>(self->manager_ctx);
}
void versioned_deleter(DLManagedTensorVersioned* self) {
  delete static_cast<VersionedExport*>(self->manager_ctx);
}

// Runs when a capsule is collected. A consumed capsule has been renamed ("used_...") and belongs
// to its consumer: nothing to do. The pending exception, if any, is preserved (PyCapsule
// destructors may run while one is set).
void capsule_destructor(PyObject* capsule) {
#if PY_VERSION_HEX >= 0x030C0000
  PyObject* saved = PyErr_GetRaisedException();
#else
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
#endif
  if (PyCapsule_IsValid(capsule, kLegacyName)) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kLegacyName));
    if (m != nullptr && m->deleter != nullptr) m->deleter(m);
  } else if (PyCapsule_IsValid(capsule, kVersionedName)) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(capsule, kVersionedName));
    if (m != nullptr && m->deleter != nullptr) m->deleter(m);
  }
#if PY_VERSION_HEX >= 0x030C0000
  PyErr_SetRaisedException(saved);
#else
  PyErr_Restore(type, value, tb);
#endif
}

template <class Export>
void fill_tensor(Export* e, const ExportView& v) {
  DLTensor& t = e->managed.dl_tensor;
  for (int d = 0; d < v.ndim; ++d) {
    e->shape[d] = v.shape[d];
    e->strides[d] = v.strides[d];
  }
  t.data = v.data;
  t.device = v.device;
  t.ndim = v.ndim;
  t.dtype = v.dtype;
  t.shape = e->shape;
  t.strides = e->strides;
  t.byte_offset = 0;
}

const char* plane_name(Plane p) {
  switch (p) {
    case Plane::kY:
      return "y";
    case Plane::kUV:
      return "uv";
    case Plane::kYUV:
      return "yuv";
  }
  return "?";
}

// A plane of a frame or loan as an object of its own, so that numpy.from_dlpack(frame.uv) works
// (numpy takes objects with __dlpack__, not capsules). With a copy (CuframesPlane.compact()), it
// exports that compact copy instead, for consumers that call __dlpack__ without copy=True and
// take compact strides only (JAX).
class PlaneView {
 public:
  PlaneView(py::object owner, Plane plane, std::shared_ptr<const CompactCopy> copy)
      : owner_(std::move(owner)),
        exp_(&owner_.cast<Exportable&>()),
        plane_(plane),
        copy_(std::move(copy)) {}
  // owner_ keeps the object alive: its address is looked up once, not per call.
  Exportable& exp() const { return *exp_; }
  py::capsule dlpack(const py::object& stream, const py::object& max_version,
                     const py::object& dl_device, const py::object& copy) const {
    if (!copy_) return exp_->export_plane(plane_, stream, max_version, dl_device, copy);
    const CompactCopy& c = *copy_;
    ExportRequest req = parse_export_args(c.view.device, stream, max_version, dl_device, copy);
    if (req.copy) {  // a copy of its own, as copy=True always gives
      return exp_->export_plane(plane_, stream, max_version, dl_device, copy);
    }
#ifdef CUFRAMES_WITH_CUDA
    if (c.view.device.device_type == kDLCUDA) {
      if (req.has_stream) {
        // The consumer's stream after the copy (nothing when it is the copy's own stream), and
        // the memory freed only after the work queued there.
        order_after(req.stream, c.stream, c.view.device.device_id, "ordering a compact copy");
        c.memory->streams().add(req.stream);
      } else if (req.unordered) {  // stream=-1: the consumer orders nothing, so wait for it
        py::gil_scoped_release nogil;
        DeviceScope scope(c.view.device.device_id);
        const cudaError_t e = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(c.stream));
        if (e != cudaSuccess) {
          py::gil_scoped_acquire gil;
          throw_status(CUFRAMES_ERR_DEVICE_LOST, cuda_message(e, "waiting for a compact copy"));
        }
      }
    }
#endif
    return make_capsule(c.view, c.memory, req.versioned, /*read_only=*/false, /*copied=*/true);
  }
  ExportView view() const {
    return copy_ ? copy_->view : plane_view(exp_->frame_info(), plane_);
  }
  py::object owner() const {
    return owner_;
  }
  Plane plane() const {
    return plane_;
  }
  bool compact() const {
    return copy_ != nullptr;
  }

 private:
  py::object owner_;
  Exportable* exp_;
  Plane plane_;
  std::shared_ptr<const CompactCopy> copy_;
};

}  // namespace

int64_t as_int64(const py::handle& h, const char* what) {
  try {
    return py::cast<int64_t>(h);
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(what) + " must be an int");
  }
}

DLDevice frame_device(const cuframes_frame_info_t& info) {
  DLDevice d{};
  if (info.memory == CUFRAMES_MEMORY_CUDA) {
    d.device_type = kDLCUDA;
    d.device_id = info.device;
  } else {
    d.device_type = kDLCPU;
    d.device_id = 0;
  }
  return d;
}

ExportView plane_view(const cuframes_frame_info_t& info, Plane plane) {
  const cuframes_geometry_t& g = info.geometry;
  const uint32_t bps = g.bytes_per_sample == 0 ? 1 : g.bytes_per_sample;
  ExportView v;
  v.device = frame_device(info);
  v.dtype.code = kDLUInt;
  v.dtype.bits = static_cast<uint8_t>(8 * bps);
  v.dtype.lanes = 1;
  v.shape[1] = g.width;
  v.strides[1] = 1;
  uint32_t pitch = g.pitch_y;
  switch (plane) {
    case Plane::kY:
      v.data = info.plane_y;
      v.shape[0] = g.height;
      break;
    case Plane::kUV:
      if (g.num_planes < 2 || info.plane_uv == nullptr) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                     std::string(cuframes_format_name(g.format)) + " frames have no UV plane");
      }
      v.data = info.plane_uv;
      v.shape[0] = g.height_uv;
      pitch = g.pitch_uv;
      break;
    case Plane::kYUV:
      v.data = info.plane_y;
      v.shape[0] = g.height;
      if (g.num_planes == 2) {
        if (g.pitch_uv != g.pitch_y || g.offset_uv != g.offset_y + uint64_t{g.pitch_y} * g.height) {
          throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                       "the UV plane does not follow the Y rows with the same pitch; export the "
                       "planes one by one");
        }
        v.shape[0] = g.height + g.height_uv;
      }
      break;
  }
  if (pitch % bps != 0) {
    throw py::buffer_error("row pitch " + std::to_string(pitch) +
                           " is not a whole number of samples");
  }
  v.strides[0] = pitch / bps;
  return v;
}

ExportRequest parse_export_args(const DLDevice& device, const py::object& stream,
                                const py::object& max_version, const py::object& dl_device,
                                const py::object& copy) {
  ExportRequest r;
  if (!copy.is_none()) {
    r.copy = py::cast<bool>(copy);
    r.no_copy = !r.copy;
  }
  if (!dl_device.is_none()) {
    py::tuple t = py::cast<py::tuple>(dl_device);
    if (t.size() != 2) throw py::type_error("dl_device must be a (device_type, device_id) tuple");
    if (as_int64(t[0], "dl_device[0]") != device.device_type ||
        as_int64(t[1], "dl_device[1]") != device.device_id) {
      throw py::buffer_error("cuframes cannot export this frame to another device");
    }
  }
  if (!max_version.is_none()) {
    py::tuple t = py::cast<py::tuple>(max_version);
    if (t.size() < 1) throw py::type_error("max_version must be a (major, minor) tuple");
    r.versioned = as_int64(t[0], "max_version[0]") >= static_cast<int64_t>(kDLPackMajor);
  }
  if (!stream.is_none()) {
    const int64_t s = as_int64(stream, "stream");
    if (device.device_type == kDLCPU) {
      if (s != -1) throw py::buffer_error("stream must be None for host memory frames");
    } else if (s == 0) {
      throw py::buffer_error(
          "stream=0 is ambiguous in DLPack: pass 1 for the legacy default stream, 2 for the "
          "per-thread default stream, or the stream's handle");
    } else if (s != -1) {
      r.has_stream = true;
      r.stream = static_cast<uintptr_t>(s);
    } else {
      r.unordered = true;
    }
  }
  return r;
}

void refuse_copy(const ExportRequest& req, const char* what) {
  if (req.copy) {
    throw py::buffer_error(std::string(what) +
                           " is exported without copying: copy=True is not "
                           "supported (frames are: CuframesFrame, "
                           "CuframesPlane)");
  }
}

py::capsule make_capsule(const ExportView& view, std::shared_ptr<void> owner, bool versioned,
                         bool read_only, bool copied) {
  PyObject* cap = nullptr;
  if (versioned) {
    auto* e = new VersionedExport();
    e->owner = std::move(owner);
    fill_tensor(e, view);
    e->managed.version.major = kDLPackMajor;
    e->managed.version.minor = kDLPackMinor;
    e->managed.manager_ctx = e;
    e->managed.deleter = &versioned_deleter;
    e->managed.flags = (read_only ? DLPACK_FLAG_BITMASK_READ_ONLY : 0) |
                       (copied ? DLPACK_FLAG_BITMASK_IS_COPIED : 0);
    cap = PyCapsule_New(&e->managed, kVersionedName, &capsule_destructor);
    if (cap == nullptr) {
      delete e;
      throw py::error_already_set();
    }
  } else {
    auto* e = new LegacyExport();
    e->owner = std::move(owner);
    fill_tensor(e, view);
    e->managed.manager_ctx = e;
    e->managed.deleter = &legacy_deleter;
    cap = PyCapsule_New(&e->managed, kLegacyName, &capsule_destructor);
    if (cap == nullptr) {
      delete e;
      throw py::error_already_set();
    }
  }
  return py::reinterpret_steal<py::capsule>(cap);
}

void StreamSet::reserve(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.reserve(n);
}

void StreamSet::add(uintptr_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  for (uintptr_t s : streams_) {
    if (s == stream) return;
  }
  streams_.push_back(stream);
}

bool StreamSet::empty() {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.empty();
}

size_t StreamSet::copy_to(uintptr_t* out, size_t cap) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < streams_.size() && i < cap; ++i) out[i] = streams_[i];
  return streams_.size();
}

uintptr_t StreamSet::join(int device) {
  std::vector<uintptr_t> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (streams_.size() <= 1) return streams_.empty() ? 0 : streams_[0];  // no copy, no event
    s = streams_;
  }
#ifdef CUFRAMES_WITH_CUDA
  if (s.size() > 1 && device >= 0) {
    for (size_t i = 1; i < s.size(); ++i) {
      if (stream_wait(s[0], s[i], device) != cudaSuccess) {
        (void)cudaGetLastError();
        DeviceScope scope(device);
        (void)cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(s[i]));  // slow but safe
      }
    }
  }
#else
  (void)device;
#endif
  return s[0];
}

PyObject* Exportable::take_spare(Plane, const ExportView&, uintptr_t) {
  return nullptr;
}

void Exportable::want_spare(Plane, const ExportView&) {}

CompactCopy Exportable::compact_copy(Plane) {
  throw py::buffer_error(
      "compact(): only frame planes are copied (a loan is written in place, exported without "
      "copying)");
}

py::object Exportable::dlpack_device() const {
  if (!device_) {
    const DLDevice d = frame_device(frame_info());
    device_ = py::make_tuple(static_cast<int>(d.device_type), d.device_id);
  }
  return device_;
}

void register_dlpack(py::module_& m) {
  register_torch_interop(m);
  register_torch_spares(m);
  py::class_<PlaneView>(m, "CuframesPlane",
                        "One plane (or the whole frame) of a CuframesFrame or CuframesLoan, as a "
                        "DLPack producer: numpy.from_dlpack(frame.uv), torch.from_dlpack(frame.y)."
                        " It exports through its frame, so it is valid while the frame is.")
      .def("__dlpack__", &PlaneView::dlpack, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
           py::arg("copy") = py::none(),
           "A DLPack capsule of this plane (see CuframesFrame.__dlpack__).")
      .def("__dlpack_device__", [](const PlaneView& p) { return p.exp().dlpack_device(); })
      .def_property_readonly(
          "name", [](const PlaneView& p) { return plane_name(p.plane()); },
          "\"y\", \"uv\" or \"yuv\".")
      .def_property_readonly("frame", &PlaneView::owner, "The frame or loan this plane is of.")
      .def_property_readonly(
          "shape",
          [](const PlaneView& p) {
            ExportView v = p.view();
            return py::make_tuple(v.shape[0], v.shape[1]);
          },
          "(rows, samples per row).")
      .def_property_readonly(
          "strides",
          [](const PlaneView& p) {
            ExportView v = p.view();
            return py::make_tuple(v.strides[0], v.strides[1]);
          },
          "DLPack strides, in samples: (pitch // bytes_per_sample, 1); (width, 1) for "
          "compact() planes.")
      .def_property_readonly(
          "dtype",
          [](const PlaneView& p) { return p.view().dtype.bits == 16 ? "uint16" : "uint8"; },
          "\"uint8\" or \"uint16\" (P010).")
      .def_property_readonly(
          "ptr", [](const PlaneView& p) { return reinterpret_cast<uintptr_t>(p.view().data); },
          "Address of the first sample (a device pointer for cuda frames); for compact() "
          "planes, the copy's.")
      .def(
          "compact",
          [](const PlaneView& p) {
            auto copy = std::make_shared<const CompactCopy>(p.exp().compact_copy(p.plane()));
            return make_plane(p.owner(), p.plane(), std::move(copy));
          },
          "A compact copy of this plane (rows of width samples, strides (width, 1)), made now "
          "(cuda frames: on the subscriber's consumer_stream), as a DLPack producer: its "
          "__dlpack__ exports that copy (ordered before the consumer's stream), ptr is its "
          "address, and it holds nothing of the ring. For consumers that take compact arrays "
          "only: jax.numpy.from_dlpack(frame.y.compact()).")
      .def_property_readonly("is_compact", &PlaneView::compact,
                             "True for compact() planes (exported as compact copies).")
      .def("__repr__", [](const PlaneView& p) {
        ExportView v = p.view();
        return "<CuframesPlane " + std::string(plane_name(p.plane())) + " " +
               std::to_string(v.shape[0]) + "x" + std::to_string(v.shape[1]) +
               (p.compact() ? " compact>" : ">");
      });
}

py::object make_plane(py::object owner, Plane plane, std::shared_ptr<const CompactCopy> copy) {
  return py::cast(PlaneView(std::move(owner), plane, std::move(copy)));
}

}  // namespace cfpy
