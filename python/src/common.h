// Shared pieces of the cuframes Python module: status -> exception mapping, enum conversion,
// GIL and stream helpers.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "cuframes/cuframes.h"

namespace py = pybind11;

namespace cfpy {

// ---- errors (errors.cc) ------------------------------------------------------------------------
// A failed C call, carried from the call site (GIL possibly released) to the exception translator
// that turns it into the cuframes exception class of its status. This is the only path from a C
// status to a Python exception.
struct StatusError {
  cuframes_status_t status;
  std::string message;
};

// A zeroed stats struct with its struct_size set (cuframes.h, "Sized structs").
template <class T>
T sized() noexcept {
  T t{};
  t.struct_size = sizeof t;
  return t;
}

// Throws StatusError with the calling thread's cuframes_last_error().
[[noreturn]] void throw_status(cuframes_status_t status);
[[noreturn]] void throw_status(cuframes_status_t status, std::string message);
inline void check(cuframes_status_t status) {
  if (status != CUFRAMES_OK) throw_status(status);
}
// The exception being handled (call from a catch block) as the pending Python error, as
// pybind11's dispatcher would raise it: for methods bound without it (raw_method.h).
void set_error_from_exception();
// The exception class of a status (a borrowed reference; CuframesError for unknown values).
PyObject* exception_class(cuframes_status_t status);
// A new exception instance for a status, for handing errors to callbacks.
py::object make_exception(cuframes_status_t status, const std::string& message);
void register_errors(py::module_& m);

// ---- enums (module.cc) -------------------------------------------------------------------------
py::object subscriber_mode(cuframes_mode_t mode);
py::object pixel_format(cuframes_format_t format);
py::object publisher_policy(cuframes_policy_t policy);
// What the dicts (stats(), observe()) hold for an enum-valued field: the member's name ("NV12",
// "DROP", "NEWEST_ONLY"), ready for JSON; properties give the enum members themselves.
py::str enum_name(const py::object& member);
py::object color_matrix(cuframes_color_matrix_t matrix);
py::object color_range(cuframes_color_range_t range);
// Any int-like (the IntEnum members included) to the C value; out-of-range values are passed on
// and refused by the core as INVALID_ARGUMENT.
int32_t enum_value(const py::handle& value, const char* what);
const char* memory_name(cuframes_memory_t memory);
cuframes_memory_t parse_memory(const py::handle& value);
// A cudaStream_t given as an int, or an object with .cuda_stream (torch), .ptr (cupy) or
// __cuda_stream__ (the CUDA stream protocol).
uintptr_t parse_stream(const py::handle& value, const char* what);

// The longest a blocking call waits without the GIL before it looks at signals (Ctrl-C).
constexpr int kWaitSliceMs = 200;

// Waits up to timeout_ms for fd to become readable, GIL released, in slices so that signals
// (Ctrl-C) are handled: raises error_already_set when a signal handler raises. Returns false
// when the time is up. timeout_ms < 0 waits forever.
bool wait_readable(int fd, int timeout_ms);
// Calls attach(slice_ms) (without the GIL) until it succeeds or fails with other than
// PUBLISHER_GONE, in slices of at most 200 ms so that Ctrl-C works, for up to connect_timeout_ms
// (-1: forever). attach returns the status and, on failure, cuframes_last_error(). Raises the
// failure; a PUBLISHER_GONE says how long it waited in all.
void attach_in_slices(int connect_timeout_ms,
                      const std::function<std::pair<cuframes_status_t, std::string>(int)>& attach);

// m.<name>(enabled=None) -> bool: sets *flag when enabled is given, returns it (module.cc; the
// switches for benchmarks and tests: _torch_fast_path, _torch_made_ahead, _wake_probe, ...).
void def_switch(py::module_& m, const char* name, bool* flag, const char* doc);

// Milliseconds left until deadline_ns (CLOCK_MONOTONIC; INT64_MAX = forever -> -1).
int ms_left(int64_t deadline_ns);
int64_t deadline_after(int timeout_ms);

// ---- registration (one function per source file) ----------------------------------------------
void register_dlpack(py::module_& m);
void register_frame(py::module_& m);
void register_subscriber(py::module_& m);
void register_publisher(py::module_& m);
void register_packets(py::module_& m);
void register_preprocess(py::module_& m);

// Set by the atexit hook: no more calls into Python from library threads.
bool interpreter_exiting();

}  // namespace cfpy
