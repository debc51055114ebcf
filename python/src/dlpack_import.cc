// DLPack import: the sources handed to CuframesPublisher.publish, taken from their producers
// (one __dlpack__ call; torch tensors: read through torch's C shim, or its C export).
#include <string>
#include <vector>

#include "dlpack.h"
#include "owned_memory.h"
#include "torch_interop.h"

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cfpy {
namespace {

// Interned names and constant arguments of the __dlpack__ call, made once (never freed: they
// must outlive every call, also those during interpreter shutdown).
struct DlpackCallNames {
  PyObject* dlpack = PyUnicode_InternFromString("__dlpack__");
  PyObject* dlpack_device = PyUnicode_InternFromString("__dlpack_device__");
  PyObject* max_version = Py_BuildValue("(ii)", kDLPackMajor, kDLPackMinor);
  PyObject* kw_stream_version = Py_BuildValue("(ss)", "stream", "max_version");
  PyObject* kw_version = Py_BuildValue("(s)", "max_version");
  PyObject* kw_stream = Py_BuildValue("(s)", "stream");
  PyObject* legacy_stream = PyLong_FromLong(1);
};
const DlpackCallNames& call_names() {
  static const DlpackCallNames* names = new DlpackCallNames();
  return *names;
}

// Producer types whose __dlpack__ refused max_version (DLPack < 1.0, e.g. PyTorch before 2.9):
// asked without it from then on, so that a publish() costs no failed call and no exception.
// Strong references: a type stays in the set for the process's life (the GIL guards it).
std::vector<PyObject*>& legacy_producers() {
  static auto* types = new std::vector<PyObject*>();
  return *types;
}
bool is_legacy_producer(PyObject* type) {
  for (PyObject* t : legacy_producers()) {
    if (t == type) return true;
  }
  return false;
}

// publish()'s shortcut for torch tensors. torch.Tensor.__dlpack__ is Python: its checks, two
// torch.cuda.Stream objects and their comparison, an event made per call when the streams
// differ. Here the tensor is read through torch's C shim (torch_tensor_view: no export at all),
// or else exported by torch's C export (torch._C._to_dlpack), and the stream ordering is the
// same as __dlpack__(stream=) gives: the copy's stream waits for torch's current stream
// (torch._C._cuda_getCurrentRawStream) through a cached event, and nothing when they are one.
enum class TorchImport {
  kProtocol,  // not a plain torch.Tensor, one torch refuses to export, a CUDA tensor without the
              // current-stream lookup or without CUDA here: __dlpack__ is asked
  kView,      // *view filled through the shim
  kCapsule,   // *cap: torch's C export
};
TorchImport torch_import(const py::handle& obj, uintptr_t stream, DLTensor* view, py::object* cap) {
  const TorchEntry* t = torch_entry();
  if (t == nullptr || reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr())) != t->tensor_type) {
    return TorchImport::kProtocol;
  }
  // A lazy negation's memory does not hold its values, and torch exports that memory as it is
  // (__dlpack__ and the C export alike): the frame would be wrong, so it is refused here.
  if (torch_is_neg(t, obj.ptr())) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                 "the source tensor has its negative bit set (a lazy negation): its memory does "
                 "not hold its values; publish tensor.resolve_neg()");
  }
  TorchImport how = TorchImport::kView;
  DLDevice d{};
  if (torch_tensor_view(obj.ptr(), view)) {
    d = view->device;
  } else {
    // __dlpack__ refuses a conjugate view (set on complex tensors only, which the shim's view
    // never takes): its error, then
    if (truth_or_throw(PyObject_CallMethodNoArgs(obj.ptr(), t->is_conj))) {
      return TorchImport::kProtocol;
    }
    *cap = steal_or_throw(PyObject_CallOneArg(t->to_dlpack, obj.ptr()));
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap->ptr(), kLegacyName));
    if (m == nullptr) throw py::error_already_set();
    d = m->dl_tensor.device;
    how = TorchImport::kCapsule;
  }
  if (d.device_type != kDLCUDA) return how;  // host memory: nothing to order
#ifdef CUFRAMES_WITH_CUDA
  if (t->current_stream != nullptr) {
    const uintptr_t current = torch_current_stream(t, d.device_id);
    // 0 on both sides is the legacy default stream (torch's default stream)
    const cudaError_t e = stream_wait(stream, current, d.device_id);
    if (e != cudaSuccess) {
      throw_status(CUFRAMES_ERR_DEVICE_LOST,
                   cuda_message(e, "ordering the copy after torch's current stream"));
    }
    return how;
  }
#endif
  *cap = py::object();  // an unconsumed capsule frees itself; the protocol is asked instead
  return TorchImport::kProtocol;
}

}  // namespace

ImportedTensor::ImportedTensor(const py::handle& obj, uintptr_t stream) {
  py::object cap;
  if (PyCapsule_CheckExact(obj.ptr())) {
    cap = py::reinterpret_borrow<py::object>(obj);
  } else if (const TorchImport how = torch_import(obj, stream, &view_, &cap);
             how == TorchImport::kView) {
    owner_ = obj.inc_ref().ptr();  // the tensor the view borrows from, alive until released
    tensor_ = &view_;
    return;
  } else if (how == TorchImport::kCapsule) {
    // torch's own export, ordered on `stream`
  } else {
    const DlpackCallNames& n = call_names();
    PyObject* dlpack = PyObject_GetAttr(obj.ptr(), n.dlpack);
    PyObject* device_fn =
        dlpack == nullptr ? nullptr : PyObject_GetAttr(obj.ptr(), n.dlpack_device);
    if (device_fn == nullptr) {
      Py_XDECREF(dlpack);
      if (!PyErr_ExceptionMatches(PyExc_AttributeError)) throw py::error_already_set();
      PyErr_Clear();
      throw py::type_error(
          "a frame source must support DLPack (__dlpack__ and __dlpack_device__: numpy, torch, "
          "cupy arrays), got " +
          std::string(py::str(py::type::of(obj))));
    }
    py::object method = py::reinterpret_steal<py::object>(dlpack);
    py::object device = py::reinterpret_steal<py::object>(device_fn);
    py::tuple dev = py::cast<py::tuple>(steal_or_throw(PyObject_CallNoArgs(device.ptr())));
    const int64_t type = as_int64(dev[0], "__dlpack_device__()[0]");
    const bool cuda = type == kDLCUDA || type == kDLCUDAManaged;
    py::object s =
        cuda
            ? (stream == 0 ? py::reinterpret_borrow<py::object>(n.legacy_stream)
                           : py::reinterpret_steal<py::object>(PyLong_FromUnsignedLongLong(stream)))
            : py::object();
    // One vectorcall with keyword names (no dict): __dlpack__(stream=s, max_version=(1, 0)),
    // without max_version for producers known to refuse it.
    PyObject* type_obj = reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr()));
    const auto call = [&](bool with_version) {
      PyObject* values[2];
      size_t count = 0;
      if (cuda) values[count++] = s.ptr();
      if (with_version) values[count++] = n.max_version;
      PyObject* kwnames = cuda ? (with_version ? n.kw_stream_version : n.kw_stream)
                               : (with_version ? n.kw_version : nullptr);
      return PyObject_Vectorcall(method.ptr(), values, 0, kwnames);
    };
    const bool legacy = is_legacy_producer(type_obj);
    PyObject* r = call(!legacy);
    if (r == nullptr && !legacy && PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_Clear();  // a producer that predates DLPack 1.0: never ask it for max_version again
      r = call(false);
      if (r != nullptr) {
        Py_INCREF(type_obj);
        legacy_producers().push_back(type_obj);
      }
    }
    cap = steal_or_throw(r);
  }
  if (PyCapsule_IsValid(cap.ptr(), kVersionedName)) {
    auto* m =
        static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap.ptr(), kVersionedName));
    if (m == nullptr || PyCapsule_SetName(cap.ptr(), kUsedVersionedName) != 0) {
      throw py::error_already_set();
    }
    versioned_ = m;  // ours from here on
    if (m->version.major > kDLPackMajor) {
      throw py::buffer_error("the source's DLPack version " + std::to_string(m->version.major) +
                             " is newer than this cuframes understands");
    }
    tensor_ = &m->dl_tensor;
  } else if (PyCapsule_IsValid(cap.ptr(), kLegacyName)) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap.ptr(), kLegacyName));
    if (m == nullptr || PyCapsule_SetName(cap.ptr(), kUsedLegacyName) != 0) {
      throw py::error_already_set();
    }
    legacy_ = m;
    tensor_ = &m->dl_tensor;
  } else {
    throw py::type_error(
        "a frame source must be a DLPack producer or an unconsumed DLPack capsule");
  }
}

ImportedTensor::~ImportedTensor() {
  Py_XDECREF(owner_);
  if (versioned_ != nullptr && versioned_->deleter != nullptr) versioned_->deleter(versioned_);
  if (legacy_ != nullptr && legacy_->deleter != nullptr) legacy_->deleter(legacy_);
}

}  // namespace cfpy
