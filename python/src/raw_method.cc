// Plain CPython methods on pybind11 classes (raw_method.h).
#include "raw_method.h"

#include <cstdint>
#include <string>

namespace cfpy {

void parse_args(const char* fn, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                std::initializer_list<const char*> names, PyObject** out) {
  const auto n = static_cast<Py_ssize_t>(names.size());
  for (Py_ssize_t i = 0; i < n; ++i) out[i] = i < nargs ? args[i] : nullptr;
  if (nargs > n) {
    throw py::type_error(std::string(fn) + "() takes at most " + std::to_string(n) +
                         " arguments (" + std::to_string(nargs) + " given)");
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

int int_arg(PyObject* value, const char* fn, const char* name) {
  py::object index;  // numpy's ints and other __index__ types, as pybind11 takes them
  if (!PyLong_Check(value) && !PyFloat_Check(value)) {
    index = py::reinterpret_steal<py::object>(PyNumber_Index(value));
    if (!index) PyErr_Clear();
  }
  PyObject* v = index ? index.ptr() : value;
  if (PyLong_Check(v)) {
    int overflow = 0;
    const long n = PyLong_AsLongAndOverflow(v, &overflow);
    if (overflow == 0 && n >= INT32_MIN && n <= INT32_MAX) return static_cast<int>(n);
  }
  throw py::type_error(std::string(fn) + "(): " + name + " must be an int that fits 32 bits, got " +
                       std::string(py::repr(value)));
}

void add_raw_method(const py::handle& cls, PyMethodDef* def) {
  PyObject* descr = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), def);
  if (descr == nullptr) throw py::error_already_set();
  const int rc = PyObject_SetAttrString(cls.ptr(), def->ml_name, descr);
  Py_DECREF(descr);
  if (rc != 0) throw py::error_already_set();
}

}  // namespace cfpy
