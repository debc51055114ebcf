// torch's C entry points (torch_interop.h): looked up once, used by publish()'s export of torch
// tensors and by .torch(), which imports a plane the way torch.from_dlpack does, minus its Python.
#include "torch_interop.h"

#include <dlfcn.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "owned_memory.h"

namespace cfpy {
namespace {

bool g_fast = true;  // _torch_fast_path(False) turns both shortcuts off
// torch._C._from_dlpack refused a "dltensor_versioned" capsule (a torch before DLPack 1.0): the
// planes are exported as "dltensor" from then on, as torch.from_dlpack itself asks for them.
bool g_torch_legacy = false;

// The two queries every .torch() makes (its current stream, its inference mode) cost a call into
// torch's Python bindings each, which after a wait runs with cold caches (docs/python.md). The
// same answers come from torch's own C functions: aoti_torch_get_current_cuda_stream (the
// extern "C" shim torch keeps ABI-stable for AOTInductor, torch >= 2.2) and
// c10::InferenceMode::is_enabled() (static, no arguments, a bool). Found in torch's libraries,
// already loaded by `import torch` (dlopen RTLD_NOLOAD: never loads anything); each one used only
// after its first answer matched the Python call's. Where absent or different, the Python call.
struct Native {
  using StreamFn = int32_t (*)(int32_t device, void** stream);
  using InferenceFn = bool (*)();
  StreamFn stream = nullptr;
  InferenceFn inference = nullptr;
  bool stream_checked = false, inference_checked = false;
};
Native g_native;
bool g_native_on = true;  // _torch_native(False): the Python calls only (benchmarks compare)

// publish()'s read of a torch.Tensor: its data pointer, shape, strides, dtype and device from
// torch's AOTI shim (extern "C", in libtorch_cpu), given the at::Tensor inside the Python object
// (an AtenTensorHandle is an at::Tensor*). That saves torch._C._to_dlpack (its argument parser,
// a heap-allocated DLManagedTensor, a capsule and its deleter): most of publish()'s own cost on
// a frame after a wait. Where the at::Tensor sits in a torch.Tensor object differs between torch
// versions (a c10::MaybeOwned in some, a plain at::Tensor in others), so it is found, never
// assumed: the TensorImpl pointer of a probe tensor, read from a handle torch allocates for it
// (torch._C._aoti.unsafe_alloc_void_ptr_from_tensor), is looked for among the object's first
// words, and the shim's answers through that offset must match the probes' Python attributes.
// Where anything is missing or differs, publish() takes torch's C export as before.
struct TensorShim {
  using Handle = void*;  // AtenTensorHandle
  using PtrFn = int32_t (*)(Handle, void**);
  using I64Fn = int32_t (*)(Handle, int64_t*);
  using ArrayFn = int32_t (*)(Handle, int64_t**);
  using I32Fn = int32_t (*)(Handle, int32_t*);
  using CodeFn = int32_t (*)();
  using DeleteFn = int32_t (*)(Handle);
  PtrFn data_ptr = nullptr;
  I64Fn dim = nullptr;
  ArrayFn sizes = nullptr, strides = nullptr;
  I32Fn dtype = nullptr, device_type = nullptr, device_index = nullptr, layout = nullptr;
  DeleteFn free_handle = nullptr;
  // torch's codes for what publish() takes (-1: not in this torch)
  int32_t u8 = -1, i8 = -1, u16 = -1, i16 = -1, cpu = -1, cuda = -1, strided = -1;
  size_t offset = 0;  // of the at::Tensor in a torch.Tensor object; 0 until checked
};
TensorShim g_shim;
bool g_view_on = true;  // _torch_view(False): torch's C export (benchmarks compare)

// The shim in use: found, its offset checked, and _torch_view on; else null.
const TensorShim* native_tensor() {
  return g_view_on && g_shim.offset != 0 ? &g_shim : nullptr;
}

// The C functions in use: found, their first answer agreed, and _torch_native on; else null.
Native::StreamFn native_stream() {
  return g_native_on && g_native.stream_checked ? g_native.stream : nullptr;
}
Native::InferenceFn native_inference() {
  return g_native_on && g_native.inference_checked ? g_native.inference : nullptr;
}

void* loaded_symbol(const std::string& dir, const char* lib, const char* name) {
  void* h = dlopen((dir + lib).c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) return nullptr;
  void* f = dlsym(h, name);
  dlclose(h);  // NOLOAD took a reference; torch's own keeps the library loaded
  return f;
}

void find_native(PyObject* torch) {
  PyObject* file = PyObject_GetAttrString(torch, "__file__");
  const char* path = file != nullptr && PyUnicode_Check(file) ? PyUnicode_AsUTF8(file) : nullptr;
  if (path == nullptr) {
    PyErr_Clear();
    Py_XDECREF(file);
    return;
  }
  std::string dir(path);
  dir = dir.substr(0, dir.rfind('/') + 1) + "lib/";  // torch/__init__.py -> torch/lib/
  Py_DECREF(file);
  g_native.stream = reinterpret_cast<Native::StreamFn>(
      loaded_symbol(dir, "libtorch_cuda.so", "aoti_torch_get_current_cuda_stream"));
  g_native.inference = reinterpret_cast<Native::InferenceFn>(
      loaded_symbol(dir, "libc10.so", "_ZN3c1013InferenceMode10is_enabledEv"));
  const auto fn = [&](const char* name) { return loaded_symbol(dir, "libtorch_cpu.so", name); };
  const auto code = [&](const char* name) {
    auto f = reinterpret_cast<TensorShim::CodeFn>(fn(name));
    return f != nullptr ? f() : -1;
  };
  TensorShim& s = g_shim;
  s.data_ptr = reinterpret_cast<TensorShim::PtrFn>(fn("aoti_torch_get_data_ptr"));
  s.dim = reinterpret_cast<TensorShim::I64Fn>(fn("aoti_torch_get_dim"));
  s.sizes = reinterpret_cast<TensorShim::ArrayFn>(fn("aoti_torch_get_sizes"));
  s.strides = reinterpret_cast<TensorShim::ArrayFn>(fn("aoti_torch_get_strides"));
  s.dtype = reinterpret_cast<TensorShim::I32Fn>(fn("aoti_torch_get_dtype"));
  s.device_type = reinterpret_cast<TensorShim::I32Fn>(fn("aoti_torch_get_device_type"));
  s.device_index = reinterpret_cast<TensorShim::I32Fn>(fn("aoti_torch_get_device_index"));
  s.layout = reinterpret_cast<TensorShim::I32Fn>(fn("aoti_torch_get_layout"));
  s.free_handle = reinterpret_cast<TensorShim::DeleteFn>(fn("aoti_torch_delete_tensor_object"));
  s.u8 = code("aoti_torch_dtype_uint8");
  s.i8 = code("aoti_torch_dtype_int8");
  s.u16 = code("aoti_torch_dtype_uint16");
  s.i16 = code("aoti_torch_dtype_int16");
  s.cpu = code("aoti_torch_device_type_cpu");
  s.cuda = code("aoti_torch_device_type_cuda");
  s.strided = code("aoti_torch_layout_strided");
}

// The DLPack dtype and device of a tensor through the shim; false for what publish() never
// takes (torch's export then names it in the error).
bool shim_dtype_device(const TensorShim& s, TensorShim::Handle h, DLDataType* dt, DLDevice* d) {
  int32_t dtype = -1, dev = -1, layout = -1;
  if (s.layout(h, &layout) != 0 || layout != s.strided || s.dtype(h, &dtype) != 0 ||
      s.device_type(h, &dev) != 0) {
    return false;
  }
  if (dtype == s.u8 || dtype == s.i8) {
    *dt = {static_cast<uint8_t>(dtype == s.u8 ? kDLUInt : kDLInt), 8, 1};
  } else if (dtype == s.u16 || dtype == s.i16) {
    *dt = {static_cast<uint8_t>(dtype == s.u16 ? kDLUInt : kDLInt), 16, 1};
  } else {
    return false;
  }
  if (dev == s.cpu) {
    *d = {kDLCPU, 0};
    return true;
  }
  int32_t index = -1;
  if (dev != s.cuda || s.device_index(h, &index) != 0) return false;
  *d = {kDLCUDA, index};
  return true;
}

bool shim_view(const TensorShim& s, PyObject* obj, DLTensor* out) {
  TensorShim::Handle h = reinterpret_cast<char*>(obj) + s.offset;
  int64_t ndim = 0;
  int64_t* sizes = nullptr;
  int64_t* strides = nullptr;
  void* data = nullptr;
  if (!shim_dtype_device(s, h, &out->dtype, &out->device) || s.dim(h, &ndim) != 0 ||
      s.sizes(h, &sizes) != 0 || s.strides(h, &strides) != 0 || s.data_ptr(h, &data) != 0) {
    return false;
  }
  out->data = data;
  out->ndim = static_cast<int32_t>(ndim);
  out->shape = sizes;
  out->strides = strides;
  out->byte_offset = 0;
  return true;
}

// The at::Tensor's offset in probe's object, or 0: the first word after the object header that
// holds the probe's TensorImpl pointer (the at::Tensor's only member).
size_t find_tensor_offset(const TensorShim& s, const py::module_& torch, PyObject* probe) {
  py::object cap =
      torch.attr("_C").attr("_aoti").attr("unsafe_alloc_void_ptr_from_tensor")(py::handle(probe));
  // a capsule of the pointer (pybind11's void*), or an int in torches that give one
  void* handle = PyLong_Check(cap.ptr())
                     ? PyLong_AsVoidPtr(cap.ptr())
                     : PyCapsule_GetPointer(cap.ptr(), PyCapsule_GetName(cap.ptr()));
  if (handle == nullptr) throw py::error_already_set();
  void* impl = *static_cast<void**>(handle);  // a new at::Tensor of the same TensorImpl
  s.free_handle(handle);
  const auto size = static_cast<size_t>(Py_TYPE(probe)->tp_basicsize);
  for (size_t off = sizeof(PyObject); off + sizeof(void*) <= size; off += sizeof(void*)) {
    void* word = nullptr;
    std::memcpy(&word, reinterpret_cast<const char*>(probe) + off, sizeof word);
    if (word == impl) return off;
  }
  return 0;
}

// Whether the shim's view of t (through offset) is what t's Python attributes say.
bool shim_agrees(const TensorShim& s, const py::object& t, int32_t dtype_code) {
  DLTensor v{};
  if (!shim_view(s, t.ptr(), &v)) return false;
  int32_t dtype = -1;
  s.dtype(reinterpret_cast<char*>(t.ptr()) + s.offset, &dtype);
  const auto shape = py::cast<std::vector<int64_t>>(t.attr("shape"));
  const auto strides = py::cast<std::vector<int64_t>>(t.attr("stride")());
  if (dtype != dtype_code || v.device.device_type != kDLCPU ||
      reinterpret_cast<uintptr_t>(v.data) != py::cast<uintptr_t>(t.attr("data_ptr")()) ||
      static_cast<size_t>(v.ndim) != shape.size()) {
    return false;
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (v.shape[i] != shape[i] || v.strides[i] != strides[i]) return false;
  }
  return true;
}

// Finds the at::Tensor's offset and checks the shim through it on two views (an offset into
// their storage, rows strided, two dtypes); g_shim.offset stays 0 where anything is amiss.
void check_shim(const py::module_& torch) {
  TensorShim& s = g_shim;
  if (s.data_ptr == nullptr || s.dim == nullptr || s.sizes == nullptr || s.strides == nullptr ||
      s.dtype == nullptr || s.device_type == nullptr || s.device_index == nullptr ||
      s.layout == nullptr || s.free_handle == nullptr || s.u8 < 0 || s.i16 < 0 || s.cpu < 0 ||
      s.strided < 0) {
    return;
  }
  try {
    // on the CPU whatever torch's default device is
    const py::object base =
        torch.attr("arange")(48, py::arg("device") = "cpu").attr("reshape")(6, 8);
    const py::object a = base.attr("to")(torch.attr("uint8"))[py::make_tuple(
        py::slice(1, 5, 1), py::slice(2, 7, 1))];  // (4, 5), strides (8, 1), 10 bytes in
    const py::object b = base.attr("to")(torch.attr("int16"))[py::make_tuple(
        py::slice(2, 6, 2), py::slice(1, 8, 1))];  // (2, 7), strides (16, 1), 17 samples in
    const py::object tensor_type = torch.attr("Tensor");
    if (Py_TYPE(a.ptr()) != reinterpret_cast<PyTypeObject*>(tensor_type.ptr()) ||
        Py_TYPE(b.ptr()) != reinterpret_cast<PyTypeObject*>(tensor_type.ptr())) {
      return;  // a torch mode made something else: the export, then
    }
    const size_t off = find_tensor_offset(s, torch, a.ptr());
    if (off == 0) return;
    s.offset = off;
    if (!shim_agrees(s, a, s.u8) || !shim_agrees(s, b, s.i16)) s.offset = 0;
  } catch (py::error_already_set&) {
    s.offset = 0;  // e.g. a torch without torch._C._aoti: the export, as before
  }
}

TorchEntry* lookup() {
  static auto* t = new TorchEntry();  // never freed: used until the interpreter ends
  static bool looked = false;
  if (looked) return t->tensor_type != nullptr ? t : nullptr;
  PyObject* torch = PyDict_GetItemString(PyImport_GetModuleDict(), "torch");  // borrowed
  if (torch == nullptr) return nullptr;  // not imported (yet): no torch tensor to see
  looked = true;
  PyObject* tensor = PyObject_GetAttrString(torch, "Tensor");
  PyObject* c = PyObject_GetAttrString(torch, "_C");
  PyObject* to = c == nullptr ? nullptr : PyObject_GetAttrString(c, "_to_dlpack");
  PyObject* from = c == nullptr ? nullptr : PyObject_GetAttrString(c, "_from_dlpack");
  // absent in CPU-only builds of torch: CUDA tensors take the protocol
  PyObject* cur = c == nullptr ? nullptr : PyObject_GetAttrString(c, "_cuda_getCurrentRawStream");
  PyErr_Clear();
  PyObject* inference =
      c == nullptr ? nullptr : PyObject_GetAttrString(c, "is_inference_mode_enabled");
  PyErr_Clear();
  Py_XDECREF(c);
  if (tensor != nullptr && PyType_Check(tensor) && to != nullptr) {
    t->tensor_type = tensor;
    t->to_dlpack = to;
    t->from_dlpack = from;
    t->current_stream = cur;
    t->inference_mode = inference;
    t->is_neg = PyUnicode_InternFromString("is_neg");
    t->is_conj = PyUnicode_InternFromString("is_conj");
    // the method descriptor torch's C type defines, called as CPython would, minus the lookup
    PyObject* neg = PyObject_GetAttr(tensor, t->is_neg);
    if (neg != nullptr && Py_IS_TYPE(neg, &PyMethodDescr_Type)) {
      const PyMethodDef* def = reinterpret_cast<PyMethodDescrObject*>(neg)->d_method;
      const int kinds = METH_VARARGS | METH_KEYWORDS | METH_NOARGS | METH_O | METH_FASTCALL;
      if ((def->ml_flags & kinds) == METH_NOARGS) t->is_neg_c = def->ml_meth;
    }
    Py_XDECREF(neg);
    PyErr_Clear();
    find_native(torch);
    check_shim(py::reinterpret_borrow<py::module_>(torch));
    return t;
  }
  Py_XDECREF(tensor);
  Py_XDECREF(to);
  Py_XDECREF(from);
  Py_XDECREF(cur);
  Py_XDECREF(inference);
  return nullptr;
}

// torch, imported if it is not yet; ModuleNotFoundError naming what needs it.
py::object import_torch() {
  static PyObject* const name = PyUnicode_InternFromString("torch");
  PyObject* m = PyImport_GetModule(name);  // imported already: a dict lookup, no import machinery
  if (m == Py_None) Py_CLEAR(m);  // import blocked (None in sys.modules): the import says so
  if (m == nullptr && !PyErr_Occurred()) m = PyImport_Import(name);
  if (m == nullptr) {
    if (PyErr_ExceptionMatches(PyExc_ImportError)) {
      py::error_already_set e;
      py::raise_from(e, PyExc_ModuleNotFoundError,
                     ".torch() needs PyTorch, which cannot be imported here "
                     "(numpy.from_dlpack and cupy.from_dlpack take the planes without it)");
    }
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(m);
}

py::object dlpack_stream(uintptr_t s) {
  return steal_or_throw(PyLong_FromUnsignedLongLong(dlpack_stream_value(s)));
}

}  // namespace

const TorchEntry* torch_entry() {
  return g_fast ? lookup() : nullptr;
}

py::object steal_or_throw(PyObject* o) {
  if (o == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(o);
}

bool truth_or_throw(PyObject* o) {
  const py::object r = steal_or_throw(o);
  const int v = PyObject_IsTrue(r.ptr());
  if (v < 0) throw py::error_already_set();
  return v != 0;
}

Plane parse_plane(const py::handle& name) {
  if (PyUnicode_Check(name.ptr())) {  // compared in place: no copy on .torch()'s path
    if (PyUnicode_CompareWithASCIIString(name.ptr(), "yuv") == 0) return Plane::kYUV;
    if (PyUnicode_CompareWithASCIIString(name.ptr(), "y") == 0) return Plane::kY;
    if (PyUnicode_CompareWithASCIIString(name.ptr(), "uv") == 0) return Plane::kUV;
  }
  throw py::value_error("plane must be \"y\", \"uv\" or \"yuv\", got " +
                        std::string(py::repr(name)));
}

py::object torch_tensor(Exportable& e, const py::handle& owner, Plane plane,
                        const py::handle& stream) {
  const ExportView view = plane_view(e.frame_info(), plane);  // raises for a missing plane
  const bool cuda = view.device.device_type == kDLCUDA;
  py::object s;  // the stream asked for, as an int (none: torch's current stream)
  if (!stream.is_none()) {
    if (!cuda) throw py::buffer_error("stream must be None for host memory frames");
    s = dlpack_stream(parse_stream(stream, "stream"));
  }
  const py::object torch = import_torch();
  const TorchEntry* t = torch_entry();
  if (t == nullptr || t->from_dlpack == nullptr || (cuda && t->current_stream == nullptr)) {
    // torch's own protocol: the plane object, or a capsule exported to the stream asked for
    py::object src = s ? py::object(e.export_plane(plane, s, py::none(), py::none(), py::none()))
                       : make_plane(py::reinterpret_borrow<py::object>(owner), plane);
    return torch.attr("from_dlpack")(src);
  }
  const bool current = !s;  // on torch's current stream, as torch.from_dlpack(<plane>)
  if (current) {
    uintptr_t recorded = 0;  // the stream the export records (none for host memory)
    if (cuda) recorded = dlpack_stream_value(torch_current_stream(t, view.device.device_id));
    // made ahead for this frame's slot (torch_spares.h), recording the stream as export_plane
    if (PyObject* r = e.take_spare(plane, view, recorded)) {
      return py::reinterpret_steal<py::object>(r);
    }
    if (cuda) s = dlpack_stream(recorded);
  }
  static PyObject* const max_version = Py_BuildValue("(ii)", kDLPackMajor, kDLPackMinor);
  const auto import = [&](bool versioned) {
    py::capsule cap =
        e.export_plane(plane, s ? s : py::none(),
                       versioned ? py::reinterpret_borrow<py::object>(max_version) : py::none(),
                       py::none(), py::none());
    return PyObject_CallOneArg(t->from_dlpack, cap.ptr());
  };
  PyObject* r = import(!g_torch_legacy);
  if (r == nullptr && !g_torch_legacy) {
    py::error_already_set first;  // taken and cleared: the legacy capsule is tried next
    r = import(false);
    if (r == nullptr) {
      PyErr_Clear();
      throw first;  // not the capsule's version: torch's own complaint
    }
    g_torch_legacy = true;
  }
  py::object tensor = steal_or_throw(r);
  if (current) e.want_spare(plane, view);
  return tensor;
}

PyObject* torch_import_view(const TorchEntry* t, const ExportView& view,
                            std::shared_ptr<void> owner) {
  try {
    py::capsule cap = make_capsule(view, std::move(owner), !g_torch_legacy, /*read_only=*/true);
    return PyObject_CallOneArg(t->from_dlpack, cap.ptr());
  } catch (py::error_already_set& e) {
    e.restore();
    return nullptr;
  }
}

int torch_inference_mode(const TorchEntry* t) {
  if (t->inference_mode == nullptr) return -1;
  if (Native::InferenceFn f = native_inference()) return f() ? 1 : 0;
  PyObject* r = PyObject_CallNoArgs(t->inference_mode);
  if (r == nullptr) {
    PyErr_Clear();
    return -1;
  }
  const int on = PyObject_IsTrue(r);
  Py_DECREF(r);
  if (on < 0) {
    PyErr_Clear();
  } else if (g_native.inference != nullptr) {  // the first answer: torch's C function agrees?
    if ((g_native.inference() ? 1 : 0) == on) {
      g_native.inference_checked = true;
    } else {
      g_native.inference = nullptr;
    }
  }
  return on;
}

uintptr_t torch_current_stream(const TorchEntry* t, int device) {
  if (Native::StreamFn f = native_stream()) {
    void* s = nullptr;
    if (f(device, &s) == 0) return reinterpret_cast<uintptr_t>(s);
    // an error (as the Python call would raise): the Python call says which
  }
  py::object id = steal_or_throw(PyLong_FromLong(device));
  py::object cur = steal_or_throw(PyObject_CallOneArg(t->current_stream, id.ptr()));
  const auto raw = static_cast<uintptr_t>(PyLong_AsUnsignedLongLong(cur.ptr()));
  if (PyErr_Occurred()) throw py::error_already_set();
  if (g_native.stream != nullptr && !g_native.stream_checked) {  // the first answer: the same?
    void* s = nullptr;
    if (g_native.stream(device, &s) == 0 && reinterpret_cast<uintptr_t>(s) == raw) {
      g_native.stream_checked = true;
    } else {
      g_native.stream = nullptr;
    }
  }
  return raw;
}

bool torch_is_neg(const TorchEntry* t, PyObject* tensor) {
  return truth_or_throw(t->is_neg_c != nullptr && g_view_on
                            ? t->is_neg_c(tensor, nullptr)
                            : PyObject_CallMethodNoArgs(tensor, t->is_neg));
}

bool torch_tensor_view(PyObject* obj, DLTensor* out) {
  const TensorShim* s = native_tensor();
  return s != nullptr && shim_view(*s, obj, out);
}

void torch_warm(int device) {
  if (Native::StreamFn f = native_stream()) {
    void* s = nullptr;
    (void)f(device, &s);
  }
  if (Native::InferenceFn f = native_inference()) (void)f();
}

const char* const kTorchDoc =
    "torch($self, /, plane='y', stream=None)\n--\n\n"
    "torch.from_dlpack(<this>.<plane>) without torch's Python: the same zero-copy tensor and the "
    "same ordering, for less CPU (torch.from_dlpack's Python part, torch.cuda.current_stream() "
    "above all, is most of an import's cost on the first frame after a wait). plane: \"y\" "
    "(default), \"uv\" or \"yuv\". stream: the CUDA stream (int, torch or cupy stream) the tensor "
    "will be used on; None: torch's current stream, as torch.from_dlpack. The frame stays held "
    "until the tensor is freed and the work queued on that stream has finished. Frames of "
    "next_frame(), stream=None: the tensor is usually one next_frame() made ahead for the "
    "frame's slot, the import done before the frame came. Imports torch; ModuleNotFoundError "
    "without it.";

void register_torch_interop(py::module_& m) {
  def_switch(
      m, "_torch_fast_path", &g_fast,
      "torch's C entry points (on by default): publish() of a torch.Tensor through torch's C "
      "export, and .torch() through torch's C import. False: torch.Tensor.__dlpack__ and "
      "torch.from_dlpack, as other producers and consumers. For benchmarks and tests.");
  def_switch(m, "_torch_native", &g_native_on,
             "torch's current stream and inference mode asked of its C functions (on by default, "
             "once each has agreed with torch's Python binding). False: the Python bindings. For "
             "benchmarks and tests.");
  def_switch(m, "_torch_view", &g_view_on,
             "publish() reads a torch.Tensor through torch's C shim (on by default, where the "
             "shim is found and agreed with the tensor's Python attributes): no DLPack export. "
             "False: torch's C export (torch._C._to_dlpack), as before. For benchmarks and tests.");
  m.def(
      "_torch_native_used",
      [] {
        return std::make_tuple(g_native.stream != nullptr && g_native.stream_checked,
                               g_native.inference != nullptr && g_native.inference_checked,
                               g_shim.offset != 0);
      },
      "(stream, inference_mode, tensor): whether each query has been found in torch's libraries "
      "and agreed with torch's Python binding (then used while _torch_native() is on); tensor: "
      "publish()'s read of a torch.Tensor through torch's C shim (used while _torch_view() is "
      "on). For tests.");
}

}  // namespace cfpy
