// The exception hierarchy and the one mapping from cuframes_status_t to it.
#include <string>

#include "common.h"

namespace cfpy {
namespace {

// Classes indexed by status; [0] is the base CuframesError. Owned for the process's life.
PyObject* g_classes[CUFRAMES_ERR_OVERRUN + 1] = {};

struct ClassSpec {
  cuframes_status_t status;
  const char* name;
  PyObject* extra_base;  // a builtin exception the class also derives from, or null
  const char* doc;
};

// A StatusError as the pending Python error: its status's class, with its message.
void set_status_error(const StatusError& e) {
  PyObject* cls = exception_class(e.status);
  PyObject* inst = PyObject_CallFunction(cls, "s", e.message.c_str());
  if (inst == nullptr) return;  // that call set the error
  PyErr_SetObject(cls, inst);
  Py_DECREF(inst);
}

}  // namespace

void set_error_from_exception() {
  try {
    throw;
  } catch (const StatusError& e) {
    set_status_error(e);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}

[[noreturn]] void throw_status(cuframes_status_t status) {
  throw StatusError{status, cuframes_last_error()};
}

[[noreturn]] void throw_status(cuframes_status_t status, std::string message) {
  throw StatusError{status, std::move(message)};
}

PyObject* exception_class(cuframes_status_t status) {
  if (status > CUFRAMES_OK && status <= CUFRAMES_ERR_OVERRUN && g_classes[status] != nullptr) {
    return g_classes[status];
  }
  return g_classes[0];
}

py::object make_exception(cuframes_status_t status, const std::string& message) {
  PyObject* cls = exception_class(status);
  PyObject* inst = PyObject_CallFunction(cls, "s", message.c_str());
  if (inst == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(inst);
}

void register_errors(py::module_& m) {
  PyObject* base = PyErr_NewExceptionWithDoc(
      "cuframes.CuframesError",
      "Base class of every cuframes error. ``status`` is the C status name (\"PUBLISHER_GONE\", "
      "...) and ``code`` its numeric value.",
      PyExc_Exception, nullptr);
  if (base == nullptr) throw py::error_already_set();
  g_classes[0] = base;
  py::handle(base).attr("status") = "UNKNOWN";
  py::handle(base).attr("code") = 0;
  m.add_object("CuframesError", py::handle(base));

  const ClassSpec specs[] = {
      {CUFRAMES_ERR_PUBLISHER_GONE, "CuframesPublisherGone", nullptr,
       "No publisher on the key, or it died or shut down. Subscribe again (reconnect loop)."},
      {CUFRAMES_ERR_FRAME_TIMEOUT, "CuframesFrameTimeout", PyExc_TimeoutError,
       "Nothing arrived (or no slot was freed) within the timeout. Also a TimeoutError."},
      {CUFRAMES_ERR_DEVICE_LOST, "CuframesDeviceLost", nullptr,
       "A CUDA failure on the cross-process path (or no usable CUDA device). Not recoverable."},
      {CUFRAMES_ERR_SHM, "CuframesShmError", nullptr,
       "A socket, mmap, memfd or IPC failure, or corrupt shared data; also a key already held "
       "by another live publisher."},
      {CUFRAMES_ERR_PROTOCOL_MISMATCH, "CuframesProtocolMismatch", nullptr,
       "The peer speaks another protocol version: rebuild one side."},
      {CUFRAMES_ERR_INVALID_ARGUMENT, "CuframesInvalidArgument", PyExc_ValueError,
       "A caller bug: bad key, geometry, handle, state or argument. Also a ValueError."},
      {CUFRAMES_ERR_OUT_OF_MEMORY, "CuframesOutOfMemory", nullptr,
       "A host or device allocation failed."},
      {CUFRAMES_ERR_INTERNAL, "CuframesInternal", nullptr, "A bug in libcuframes: report it."},
      {CUFRAMES_ERR_OVERRUN, "CuframesOverrun", nullptr,
       "STRICT_ORDER: the publisher overwrote frames before they were read. Raised once per "
       "lap; the next call resumes at the oldest frame still in the ring."},
  };
  for (const ClassSpec& s : specs) {
    std::string qualified = std::string("cuframes.") + s.name;
    PyObject* bases =
        s.extra_base != nullptr ? PyTuple_Pack(2, base, s.extra_base) : PyTuple_Pack(1, base);
    if (bases == nullptr) throw py::error_already_set();
    PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), s.doc, bases, nullptr);
    Py_DECREF(bases);
    if (cls == nullptr) throw py::error_already_set();
    g_classes[s.status] = cls;
    py::handle(cls).attr("status") = cuframes_status_name(s.status);
    py::handle(cls).attr("code") = static_cast<int>(s.status);
    m.add_object(s.name, py::handle(cls));
  }

  py::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const StatusError& e) {
      set_status_error(e);
    }
  });
}

}  // namespace cfpy
