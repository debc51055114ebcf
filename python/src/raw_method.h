// Methods of the per-frame path bound as plain CPython methods (METH_FASTCALL | METH_KEYWORDS)
// instead of through pybind11's dispatcher. After a subscriber has slept, every call runs with
// cold caches, and the dispatcher (its argument loaders, its overload walk, its casts of self) is
// several microseconds of cold code per call (docs/python.md, "What a frame costs from Python").
// A raw method takes its C++ object straight from the pybind11 instance, parses its few
// arguments by hand, and raises what the pybind11-bound method would (one translation of C++
// exceptions: set_error_from_exception). Its docstring starts with its text signature, so that
// inspect.signature and mypy's stubtest see the same signature as the stub.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "common.h"

namespace cfpy {

// self's C++ object: self is an instance of T's pybind11 class or of a Python subclass (a method
// descriptor has checked that). TypeError when its __init__ never ran.
template <class T>
T& self_as(PyObject* self) {
  auto* inst = reinterpret_cast<py::detail::instance*>(self);
  if (!inst->simple_layout) return py::handle(self).cast<T&>();
  if (!inst->simple_holder_constructed) {
    throw py::type_error(std::string(Py_TYPE(self)->tp_name) + " object is not initialised");
  }
  return *static_cast<T*>(inst->simple_value_holder[0]);
}

// The arguments of a METH_FASTCALL | METH_KEYWORDS call, by position or by name (names), into out
// (borrowed; null where not given). The first `positional` names may come by position, the rest
// by name only. TypeError, as Python words it, for too many, unknown or repeated ones. fn: the
// method's name, for the message.
void parse_args(const char* fn, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                std::initializer_list<const char*> names, PyObject** out,
                size_t positional = SIZE_MAX);

// An int argument that must fit an int (int64_arg: an int64_t), as pybind11 converts one (numpy's
// ints too): TypeError naming it otherwise.
int int_arg(PyObject* value, const char* fn, const char* name);
int64_t int64_arg(PyObject* value, const char* fn, const char* name);

// A raw method's body: fn()'s new reference, or null with the Python error of what it threw
// (set_error_from_exception).
template <class Fn>
PyObject* raw_call(Fn&& fn) {
  try {
    return fn();
  } catch (...) {
    set_error_from_exception();
    return nullptr;
  }
}

// A raw method's C function (METH_FASTCALL | METH_KEYWORDS).
using RawMethod = PyObject* (*)(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                PyObject* kwnames);

// Adds fn as the method `name` of the pybind11 class cls. doc starts with its text signature;
// name and doc must live as long as the module (string literals).
void add_raw_method(const py::handle& cls, const char* name, RawMethod fn, const char* doc);

}  // namespace cfpy
