// Frame objects given back by their users (frame_recycler.h).
#include "frame_recycler.h"

#include <utility>

namespace cfpy {
namespace {

bool g_recycle = true;  // _recycle_frames(False): nothing kept, nothing reused (benchmarks)

}  // namespace

bool FrameRecycler::unshared(PyObject* o) {
  if (Py_REFCNT(o) != 1) return false;
  // pybind11 keeps an instance's weak references at a fixed offset; a type whose weak
  // references live elsewhere (a negative offset: managed by CPython) is taken as referred to.
  const Py_ssize_t weak = Py_TYPE(o)->tp_weaklistoffset;
  if (weak < 0) return false;
  return weak == 0 || *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(o) + weak) == nullptr;
}

void FrameRecycler::keep(PyObject* frame) {
  if (closed_ || !g_recycle || frame == kept_) return;
  Py_INCREF(frame);
  PyObject* before = kept_;
  kept_ = frame;
  if (before == nullptr) return;
  if (spare_ == nullptr && unshared(before)) {
    spare_ = before;  // our reference moves
  } else {
    Py_DECREF(before);  // its user keeps it, or one is set aside already
  }
}

PyObject* FrameRecycler::take() {
  PyObject* r = nullptr;
  if (spare_ != nullptr && unshared(spare_)) {
    std::swap(r, spare_);
  } else if (kept_ != nullptr && unshared(kept_)) {  // let go of already (`del frame`)
    std::swap(r, kept_);
  }
  return r;
}

void FrameRecycler::clear() {
  PyObject* k = kept_;
  PyObject* s = spare_;
  kept_ = spare_ = nullptr;  // consistent before either is freed
  Py_XDECREF(k);
  Py_XDECREF(s);
}

void register_frame_recycler(py::module_& m) {
  def_switch(m, "_recycle_frames", &g_recycle,
             "next_frame()'s frame objects kept once released and reused (on by default; "
             "frame_recycler.h). False: none kept from now on. For benchmarks and tests.");
}

}  // namespace cfpy
