// torch's C entry points, looked up once torch is imported, so that the per-frame paths skip
// torch's Python: publish() of a torch.Tensor (its C export, dlpack_import.cc) and
// CuframesFrame/CuframesLoan.torch() (its C import of a plane's capsule, torch_interop.cc).
#pragma once

#include <memory>

#include "common.h"
#include "dlpack.h"
#include "raw_method.h"

namespace cfpy {

struct TorchEntry {
  PyObject* tensor_type = nullptr;  // torch.Tensor (exactly: subclasses take the protocol)
  PyObject* to_dlpack = nullptr;    // torch._C._to_dlpack
  PyObject* from_dlpack = nullptr;  // torch._C._from_dlpack (absent: .torch() takes the protocol)
  PyObject* current_stream = nullptr;  // torch._C._cuda_getCurrentRawStream(device) -> int
  PyObject* inference_mode = nullptr;  // torch._C.is_inference_mode_enabled() -> bool
  PyObject* is_neg = nullptr;          // the methods' names
  PyObject* is_conj = nullptr;
  PyCFunction is_neg_c = nullptr;  // torch.Tensor.is_neg's C function (METH_NOARGS), or null
};

// tensor.is_neg() (tensor: exactly torch.Tensor): its C function called directly where torch
// defines it so, else the method. Throws the Python error.
bool torch_is_neg(const TorchEntry* t, PyObject* tensor);

// torch's entry points; null when torch is not imported, lacks them (another torch), or the
// shortcut is off (_torch_fast_path(False): benchmarks and tests compare against the protocol).
const TorchEntry* torch_entry();

// A new reference as a py::object, or the pending Python error thrown.
py::object steal_or_throw(PyObject* o);

// A new reference's truth (the reference consumed), or the pending Python error thrown.
bool truth_or_throw(PyObject* o);

// "y", "uv" or "yuv" (the names of the plane properties), else ValueError.
Plane parse_plane(const py::handle& name);

// The docstring of .torch() on frames and loans, its text signature first.
extern const char* const kTorchDoc;

// torch.from_dlpack(<plane of owner>) without torch's Python: ordered on `stream` (None: torch's
// current stream on the frame's device, as torch.from_dlpack orders it). owner: a CuframesFrame or
// CuframesLoan, whose C++ object is e. ModuleNotFoundError when torch cannot be imported.
py::object torch_tensor(Exportable& e, const py::handle& owner, Plane plane,
                        const py::handle& stream);

// <frame or loan>.torch(plane="y", stream=None) as a raw method (raw_method.h) of T's class.
template <class T>
PyObject* torch_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return raw_call([&] {
    PyObject* a[2];
    parse_args("torch", args, nargs, kwnames, {"plane", "stream"}, a);
    const Plane plane = a[0] == nullptr ? Plane::kY : parse_plane(a[0]);
    return torch_tensor(self_as<T>(self), self, plane, a[1] == nullptr ? Py_None : a[1])
        .release()
        .ptr();
  });
}

// Adds .torch() to T's class.
template <class T>
void add_torch_method(const py::handle& cls) {
  add_raw_method(cls, "torch", torch_method<T>, kTorchDoc);
}

// torch._C._from_dlpack of a read-only capsule over view that owns owner, versioned unless this
// torch takes legacy capsules only: a new reference, or null with the Python error set. For
// tensors made ahead (torch_spares.h); t: torch_entry(), not null.
PyObject* torch_import_view(const TorchEntry* t, const ExportView& view,
                            std::shared_ptr<void> owner);

// torch's inference mode on this thread: 1 or 0, or -1 where this torch cannot say.
int torch_inference_mode(const TorchEntry* t);

// torch's current CUDA stream on device, as torch._C._cuda_getCurrentRawStream(device) gives it
// (0: the legacy default stream); t->current_stream not null. Throws the Python error.
uintptr_t torch_current_stream(const TorchEntry* t, int device);

// publish()'s view of a torch.Tensor (obj: exactly that type) through torch's C shim, without
// its DLPack export: data pointer, dtype, device, shape and strides (borrowed from the tensor:
// valid while it lives unchanged). False where the shim is not in use (not found, not checked,
// _torch_view(False)) or for what publish() does not take (not strided, a dtype other than
// [u]int8/[u]int16, a device other than CPU and CUDA): torch's export then. Never calls Python.
bool torch_tensor_view(PyObject* obj, DLTensor* out);

// Asks torch's C functions (where they are in use) for the current stream on device and the
// inference mode, and drops the answers: warms what .torch() will ask (spin windows,
// subscriber.cc). Never calls Python, never fails.
void torch_warm(int device);

// Registers _torch_fast_path, _torch_native, _torch_view and _torch_native_used.
void register_torch_interop(py::module_& m);

}  // namespace cfpy
