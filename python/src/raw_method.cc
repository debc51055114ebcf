// Plain CPython methods on pybind11 classes (raw_method.h).
#include "raw_method.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace cfpy {

void parse_args(const char* fn, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                std::initializer_list<const char*> names, PyObject** out, size_t positional) {
  const auto n = static_cast<Py_ssize_t>(names.size());
  const auto most = static_cast<Py_ssize_t>(std::min(names.size(), positional));
  for (Py_ssize_t i = 0; i < n; ++i) out[i] = i < nargs ? args[i] : nullptr;
  if (nargs > most) {
    throw py::type_error(std::string(fn) + "() takes at most " + std::to_string(most) +
                         (most < n ? " positional" : "") + " arguments (" + std::to_string(nargs) +
                         " given)");
  }
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    Py_ssize_t i = 0;
    for (const char* name : names) {
      if (PyUnicode_CompareWithASCIIString(key, name) == 0) break;
      ++i;
    }
    if (i == n) {
      throw py::type_error(std::string(fn) + "() got an unexpected keyword argument '" +
                           py::str(key).cast<std::string>() + "'");
    }
    if (out[i] != nullptr) {
      throw py::type_error(std::string(fn) + "() got multiple values for argument '" +
                           names.begin()[i] + "'");
    }
    out[i] = args[nargs + k];
  }
}

namespace {

// value as a 64-bit int (numpy's ints and other __index__ types too, as pybind11 takes them);
// false when it is not an int or does not fit.
bool as_int64(PyObject* value, long long* out) {
  py::object index;
  if (!PyLong_Check(value) && !PyFloat_Check(value)) {
    index = py::reinterpret_steal<py::object>(PyNumber_Index(value));
    if (!index) PyErr_Clear();
  }
  PyObject* v = index ? index.ptr() : value;
  if (!PyLong_Check(v)) return false;
  int overflow = 0;
  *out = PyLong_AsLongLongAndOverflow(v, &overflow);
  return overflow == 0 && !(*out == -1 && PyErr_Occurred());
}

[[noreturn]] void bad_int(PyObject* value, const char* fn, const char* name, int bits) {
  PyErr_Clear();
  throw py::type_error(std::string(fn) + "(): " + name + " must be an int that fits " +
                       std::to_string(bits) + " bits, got " + std::string(py::repr(value)));
}

}  // namespace

int int_arg(PyObject* value, const char* fn, const char* name) {
  long long n = 0;
  if (!as_int64(value, &n) || n < INT32_MIN || n > INT32_MAX) bad_int(value, fn, name, 32);
  return static_cast<int>(n);
}

int64_t int64_arg(PyObject* value, const char* fn, const char* name) {
  long long n = 0;
  if (!as_int64(value, &n)) bad_int(value, fn, name, 64);
  return n;
}

void add_raw_method(const py::handle& cls, const char* name, RawMethod fn, const char* doc) {
  // Kept for good: the method descriptor points at it for as long as the class lives.
  auto* def = new PyMethodDef{name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn)),
                              METH_FASTCALL | METH_KEYWORDS, doc};
  PyObject* descr = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), def);
  if (descr == nullptr) throw py::error_already_set();
  const int rc = PyObject_SetAttrString(cls.ptr(), def->ml_name, descr);
  Py_DECREF(descr);
  if (rc != 0) throw py::error_already_set();
}

}  // namespace cfpy
