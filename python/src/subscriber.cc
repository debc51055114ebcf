// The subscriber side: _SubscriberBase (CuframesSubscriber's C++ half; the asyncio half is in
// cuframes/__init__.py).
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "common.h"
#include "frame.h"
#include "owned_memory.h"
#include "raw_method.h"
#include "torch_interop.h"

namespace cfpy {
namespace {

class Subscriber;

// A running on_frame callback. The library's callback thread calls trampoline(); it takes the
// GIL, wraps the frame and calls the Python callback, then releases the frame.
struct CallbackState {
  Subscriber* owner = nullptr;
  py::object callback;
  py::object on_error;
  py::object self;  // keeps the Python subscriber alive while its thread runs
  std::atomic<bool> stop{false};
  uintptr_t consumer_stream = 0;  // the subscriber's, for the frames it hands out
};

// The callback whose trampoline is running on this thread, if any.
thread_local CallbackState* tl_running_callback = nullptr;

// Subscribers with a callback thread, stopped by the atexit hook before the interpreter goes.
std::mutex g_active_mu;
std::set<Subscriber*> g_active;
std::atomic<bool> g_exiting{false};

bool g_wake_probe = false;  // _wake_probe(True): next_frame() notes when its wait ended
bool g_spin_warm = true;    // _spin_warm(False): next_frame() leaves its spin windows cold

class Subscriber;
thread_local Subscriber* tl_waiting = nullptr;           // whose next_frame() waits on this thread
thread_local PyThreadState* tl_waiting_state = nullptr;  // its thread state, the GIL given up
PyObject* g_clock = nullptr;  // time.monotonic_ns, which a spin window's warm-up calls

void trampoline(void* user, cuframes_frame_t* frame, cuframes_status_t status);

// A spin window's warm-up, the GIL given up (Subscriber::spin_warm): what .torch(),
// synchronize() and release() ask first, asked and the answers dropped: torch's current stream
// and inference mode, the consumer stream's state.
void warm_cuda(int device, uintptr_t consumer_stream) {
#ifdef CUFRAMES_WITH_CUDA
  torch_warm(device);
  DeviceScope scope(device);
  const cudaError_t e =
      cudaStreamQuery(reinterpret_cast<cudaStream_t>(dlpack_stream_value(consumer_stream)));
  if (e != cudaSuccess && e != cudaErrorNotReady) (void)cudaGetLastError();
#else
  (void)device;
  (void)consumer_stream;
#endif
}

class Subscriber {
 public:
  Subscriber(const std::string& key, const std::optional<std::string>& consumer_name,
             const py::object& mode, int cuda_device, int connect_timeout_ms,
             const py::object& consumer_stream, const py::object& runtime_dir, uint32_t spin_us,
             uint32_t warm_us)
      : key_(key), cuda_device_(cuda_device) {
    mode_ = static_cast<cuframes_mode_t>(enum_value(mode, "mode"));
    consumer_stream_ = parse_stream(consumer_stream, "consumer_stream");
    std::string dir =
        runtime_dir.is_none() ? std::string() : py::cast<std::string>(py::str(runtime_dir));

    cuframes_subscriber_options_t o;
    cuframes_subscriber_options_init(&o);
    o.runtime_dir = runtime_dir.is_none() ? nullptr : dir.c_str();
    o.consumer_name = consumer_name ? consumer_name->c_str() : nullptr;
    o.mode = mode_;
    o.cuda_device = cuda_device;
    o.consumer_stream = reinterpret_cast<void*>(consumer_stream_);
    o.spin_us = spin_us;
    o.warm_us = warm_us;
    o.spin_warm = &Subscriber::spin_warm;
    o.spin_warm_arg = this;

    attach_in_slices(connect_timeout_ms, [&](int slice_ms) {
      o.connect_timeout_ms = slice_ms;
      const cuframes_status_t st = cuframes_subscriber_create(key_.c_str(), &o, &sub_);
      return std::make_pair(st, std::string(st == CUFRAMES_OK ? "" : cuframes_last_error()));
    });
    name_ = cuframes_subscriber_name(sub_);
    memory_ = cuframes_subscriber_memory(sub_);
    cuframes_subscriber_get_geometry(sub_, &geometry_);
    snapshot();
  }

  // options.spin_warm: a spin window opened in next_frame()'s wait (spin_us) with no frame there
  // yet. Waking runs code and touches memory that went cold while the thread slept; here they
  // are warmed once, questions only, before the busy-wait: the GIL taken and given back, the
  // frame object next_frame() will return, a call of a C function (time.monotonic_ns(): the
  // interpreter's call path and the clock), then without the GIL what .torch(), synchronize()
  // and release() ask first (torch's current stream and inference mode, the consumer stream's
  // state). Only for next_frame()'s own wait, on its thread.
  static void spin_warm(void* arg) {
    auto* self = static_cast<Subscriber*>(arg);
    if (!g_spin_warm || tl_waiting != self || g_exiting.load()) return;
    PyEval_RestoreThread(tl_waiting_state);
    ++self->probe_.warmups;
    if (self->next_ptr_ != nullptr) {
      PyObject* f = self->next_.ptr();
      Py_INCREF(f);
      Py_DECREF(f);
    }
    if (g_clock != nullptr) {
      PyObject* r = PyObject_CallNoArgs(g_clock);
      if (r == nullptr) PyErr_Clear();
      Py_XDECREF(r);
    }
    tl_waiting_state = PyEval_SaveThread();
    if (self->memory_ == CUFRAMES_MEMORY_CUDA)
      warm_cuda(self->cuda_device_, self->consumer_stream_);
  }

  ~Subscriber() {
    try {
      close();
    } catch (...) {
    }
    recycler_->close();  // its frames refer to it: the cycle broken whatever close() did
  }

  void close() {
    if (sub_ == nullptr) return;
    if (cb_ && tl_running_callback == cb_.get()) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   "close() cannot be called from inside this subscriber's on_frame callback; "
                   "call on_frame(None) there to stop delivery");
    }
    if (busy_.load()) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   "close() while another thread waits in next_frame(): a subscriber belongs "
                   "to one thread");
    }
    join_callback();
    snapshot();
    spares_->clear();    // frames still held keep their tensors
    recycler_->close();  // frames released later are kept by nobody
    next_ = py::object();
    next_ptr_ = nullptr;
    cuframes_subscriber_t* s = sub_;
    sub_ = nullptr;
    py::gil_scoped_release nogil;
    cuframes_subscriber_destroy(s);
  }

  // The next frame, waiting up to timeout_ms (-1: forever). The whole wait is the core's (its
  // poll, or its spin_us busy-wait), with the GIL released once per slice: between slices
  // (kWaitSliceMs) signal handlers run, so Ctrl-C works. The frame is taken before the GIL is
  // asked back, so waking costs what it costs in C plus that one GIL acquisition.
  //
  // Before it waits, what the frame will need from Python is made: its CuframesFrame object (a
  // released one reused where there is one, frame_recycler.h), and the torch tensors .torch()
  // will take (torch_spares.h). Waking then costs the GIL and a copy of the frame's description.
  py::object next_frame(int timeout_ms) {
    Busy busy(this);
    const int64_t refill0 = g_wake_probe ? cuframes_now_ns() : 0;
    spares_->refill();
    if (g_wake_probe) probe_.refill = cuframes_now_ns() - refill0;
    if (!next_) {
      if (PyObject* again = recycler_->take()) {  // released and let go of by its user
        next_ = py::reinterpret_steal<py::object>(again);
        next_ptr_ = &next_.cast<Frame&>();
        next_ptr_->recycle();
      } else {
        auto frame = std::make_unique<Frame>(consumer_stream_, spares_, recycler_);
        next_ptr_ = frame.get();
        next_ = py::cast(std::move(frame));
      }
    }
    const int64_t deadline = deadline_after(timeout_ms);
    for (;;) {
      const int left = ms_left(deadline);
      const int slice = left < 0 ? kWaitSliceMs : std::min(left, kWaitSliceMs);
      cuframes_frame_t* f = nullptr;
      cuframes_status_t st;
      if (slice == 0) {
        st = cuframes_subscriber_next_slice(sub_, 0, &f);  // never waits: keep the GIL
      } else {
        tl_waiting_state = PyEval_SaveThread();
        tl_waiting = this;
        st = cuframes_subscriber_next_slice(sub_, slice, &f);
        tl_waiting = nullptr;
        if (g_wake_probe) probe_.core = cuframes_now_ns();
        PyEval_RestoreThread(tl_waiting_state);
      }
      if (g_wake_probe) probe_.gil = cuframes_now_ns();
      if (st == CUFRAMES_OK) {
        next_ptr_->attach(f);
        next_ptr_ = nullptr;
        return std::move(next_);
      }
      if (st != CUFRAMES_ERR_FRAME_TIMEOUT) throw_status(st);  // this thread's last error
      if (ms_left(deadline) == 0) {
        if (timeout_ms != 0) cuframes_subscriber_note_timeout(sub_);
        throw_status(CUFRAMES_ERR_FRAME_TIMEOUT,
                     "no frame from '" + key_ + "' within " + std::to_string(timeout_ms) + " ms");
      }
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
  }

  // For the asyncio half: a frame if one is there, else None. Never waits, never counts.
  py::object next_frame_nowait() {
    Busy busy(this);
    cuframes_frame_t* f = try_next();
    if (f == nullptr) return py::none();
    return py::cast(std::make_unique<Frame>(f, consumer_stream_, spares_));
  }

  // For the asyncio half: its wait on the fd expired. Counts it (as next_frame does) and raises
  // the same CuframesFrameTimeout.
  [[noreturn]] void wait_expired(int timeout_ms) {
    require_open();
    if (timeout_ms != 0) cuframes_subscriber_note_timeout(sub_);
    throw_status(CUFRAMES_ERR_FRAME_TIMEOUT,
                 "no frame from '" + key_ + "' within " + std::to_string(timeout_ms) + " ms");
  }

  int fileno() {
    require_open();
    return cuframes_subscriber_fd(sub_);
  }

  void on_frame(const py::object& callback, const py::object& on_error) {
    require_open();
    if (!callback.is_none() && !PyCallable_Check(callback.ptr())) {
      throw py::type_error("on_frame() needs a callable or None");
    }
    if (cb_ && tl_running_callback == cb_.get()) {
      if (!callback.is_none()) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                     "a new callback cannot be installed from inside the running one");
      }
      // Stop delivering now; the thread is joined by the next call from another thread.
      cb_->stop.store(true);
      return;
    }
    if (busy_.load()) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   "on_frame() while another thread waits in next_frame()");
    }
    join_callback();
    if (callback.is_none()) return;
    auto state = std::make_unique<CallbackState>();
    state->owner = this;
    state->callback = callback;
    state->on_error = on_error;
    state->consumer_stream = consumer_stream_;
    state->self = py::cast(this, py::return_value_policy::reference);
    {
      std::lock_guard<std::mutex> lock(g_active_mu);
      g_active.insert(this);
    }
    cuframes_status_t st = cuframes_subscriber_start_callback(sub_, &trampoline, state.get());
    if (st != CUFRAMES_OK) {
      std::string msg = cuframes_last_error();
      std::lock_guard<std::mutex> lock(g_active_mu);
      g_active.erase(this);
      throw_status(st, msg);
    }
    cb_ = std::move(state);
  }

  // Stops and joins the callback thread, if any (not from the callback itself).
  void join_callback() {
    if (!cb_) return;
    // Frames the library's thread takes until it notices the stop are still delivered.
    {
      py::gil_scoped_release nogil;
      cuframes_subscriber_stop_callback(sub_);
    }
    {
      std::lock_guard<std::mutex> lock(g_active_mu);
      g_active.erase(this);
    }
    std::unique_ptr<CallbackState> old = std::move(cb_);
    // old->self may hold the last reference to this object: drop it last, and only after cb_
    // is cleared, so that a destructor run from here finds nothing left to stop.
    py::object self = std::move(old->self);
    old.reset();
    self = py::object();
  }

  bool callback_running() const { return cb_ && !cb_->stop.load(); }
  std::pair<uint64_t, uint64_t> torch_ahead() const { return {spares_->made(), spares_->taken()}; }
  std::tuple<int64_t, int64_t, uint64_t, int64_t> wake_probe() const {
    return {probe_.core, probe_.gil, probe_.warmups, probe_.refill};
  }

  // ---- properties ----
  const std::string& key() const { return key_; }
  const std::string& consumer_name() const { return name_; }
  py::object mode() const { return subscriber_mode(mode_); }
  int cuda_device() const { return cuda_device_; }
  uintptr_t consumer_stream() const { return consumer_stream_; }
  bool closed() const { return sub_ == nullptr; }
  const char* memory() const { return memory_name(memory_); }
  const cuframes_geometry_t& geometry() const { return geometry_; }

  const cuframes_subscriber_stats_t& stats_now() {
    snapshot();
    return stats_;
  }
  const cuframes_ring_status_t& ring_now() {
    snapshot();
    return ring_;
  }

  py::dict stats() {
    snapshot();
    const cuframes_subscriber_stats_t& s = stats_;
    const cuframes_ring_status_t& r = ring_;
    py::dict d;
    d["key"] = key_;
    d["consumer_name"] = name_;
    d["mode"] = enum_name(subscriber_mode(mode_));
    d["closed"] = closed();
    d["frames_received"] = s.frames_received;
    d["timeouts"] = s.timeouts;
    d["errors"] = s.errors;
    d["last_seq"] = s.last_seq;
    d["gap_count"] = s.gaps;
    d["last_frame_pts_ns"] = s.last_frame_pts_ns;
    d["overruns"] = s.overruns;
    d["last_latency_ns"] = s.last_latency_ns;
    d["lag"] = s.lag;
    d["held_frames"] = s.held_frames;
    d["heartbeat_ns"] = s.heartbeat_ns;
    d["attached_ns"] = s.attached_ns;
    d["pid"] = s.pid;
    d["memory"] = memory_name(memory_);
    d["cuda_device"] = cuda_device_;
    d["format"] = enum_name(pixel_format(geometry_.format));
    d["width"] = geometry_.width;
    d["height"] = geometry_.height;
    d["pitch_y"] = geometry_.pitch_y;
    d["ring_slots"] = r.stats.slots;
    d["ring_occupancy"] = r.stats.held_slots;
    d["publisher_published"] = r.stats.published;
    d["publisher_dropped"] = r.stats.dropped;
    d["publisher_last_seq"] = r.stats.last_seq;
    d["publisher_blocked_ns"] = r.stats.blocked_ns;
    d["publisher_subscribers"] = r.stats.subscribers;
    d["publisher_pid"] = r.publisher_pid;
    d["transport"] = std::string(r.transport, strnlen(r.transport, sizeof r.transport));
    return d;
  }

 private:
  // Marks the subscriber in use by a waiting call, refusing a second thread.
  class Busy {
   public:
    explicit Busy(Subscriber* s) : s_(s) {
      s_->require_open();
      if (s_->cb_ && tl_running_callback == s_->cb_.get()) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                     "next_frame() cannot be called from inside this subscriber's callback");
      }
      if (s_->cb_ && s_->cb_->stop.load()) s_->join_callback();  // a stop asked from inside it
      if (s_->busy_.exchange(true)) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                     "next_frame() from two threads at once: a subscriber belongs to one thread");
      }
    }
    ~Busy() { s_->busy_.store(false); }

   private:
    Subscriber* s_;
  };

  void require_open() const {
    if (sub_ == nullptr) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, "subscriber of '" + key_ + "' is closed");
    }
  }

  // One non-blocking attempt: a frame, or null when none is there yet (FRAME_TIMEOUT).
  cuframes_frame_t* try_next() {
    cuframes_frame_t* f = nullptr;
    cuframes_status_t st = cuframes_subscriber_next(sub_, 0, &f);
    if (st == CUFRAMES_OK) return f;
    if (st == CUFRAMES_ERR_FRAME_TIMEOUT) return nullptr;
    throw_status(st);
  }

  void snapshot() {
    if (sub_ == nullptr) return;
    cuframes_subscriber_get_stats(sub_, &stats_);
    cuframes_subscriber_get_ring_status(sub_, &ring_);
  }

  friend void trampoline(void*, cuframes_frame_t*, cuframes_status_t);

  cuframes_subscriber_t* sub_ = nullptr;
  std::string key_, name_;
  cuframes_mode_t mode_ = CUFRAMES_MODE_NEWEST_ONLY;
  int cuda_device_ = 0;
  uintptr_t consumer_stream_ = 0;
  cuframes_memory_t memory_ = CUFRAMES_MEMORY_HOST;
  cuframes_geometry_t geometry_{};
  cuframes_subscriber_stats_t stats_ = sized<cuframes_subscriber_stats_t>();
  cuframes_ring_status_t ring_ = sized<cuframes_ring_status_t>();
  std::atomic<bool> busy_{false};
  std::unique_ptr<CallbackState> cb_;
  // What next_frame() makes before it waits: the tensors .torch() takes, shared with the
  // frames, and the next CuframesFrame object (null until made, and once handed out).
  std::shared_ptr<TorchSpares> spares_ = std::make_shared<TorchSpares>();
  // next_frame()'s frame objects given back once released (frame_recycler.h): the one just
  // released kept, so that letting go of it in the next wake frees nothing, and reused.
  std::shared_ptr<FrameRecycler> recycler_ = std::make_shared<FrameRecycler>();
  py::object next_;
  Frame* next_ptr_ = nullptr;  // next_'s C++ object
  struct {
    int64_t core = 0, gil = 0;
    int64_t refill = 0;    // ns the last next_frame() spent making tensors ahead (refill())
    uint64_t warmups = 0;  // spin_warm()'s warm-ups, counted whether probed or not
  } probe_;  // _wake_probe: when the last next_frame()'s frame came from the core, and the GIL
};

void trampoline(void* user, cuframes_frame_t* frame, cuframes_status_t status) {
  auto* state = static_cast<CallbackState*>(user);
  const std::string message = status == CUFRAMES_OK ? std::string() : cuframes_last_error();
  if (state->stop.load() || g_exiting.load()) {
    (void)cuframes_frame_release(frame, nullptr);
    return;
  }
  py::gil_scoped_acquire gil;
  if (state->stop.load()) {
    (void)cuframes_frame_release(frame, nullptr);
    return;
  }
  tl_running_callback = state;
  try {
    if (frame != nullptr) {
      py::object pyframe = py::cast(std::make_unique<Frame>(frame, state->consumer_stream));
      try {
        state->callback(pyframe);
      } catch (py::error_already_set& e) {
        e.restore();
        PyErr_WriteUnraisable(state->callback.ptr());
      }
      pyframe.cast<Frame&>().release(py::none());
    } else {
      // The library's thread ends after any failure but an overrun.
      if (status != CUFRAMES_ERR_OVERRUN) state->stop.store(true);
      if (state->on_error.is_none()) {
        tl_running_callback = nullptr;
        return;
      }
      try {
        state->on_error(make_exception(status, message));
      } catch (py::error_already_set& e) {
        e.restore();
        PyErr_WriteUnraisable(state->on_error.ptr());
      }
    }
  } catch (py::error_already_set& e) {
    e.restore();
    PyErr_WriteUnraisable(state->callback.ptr());
  } catch (const StatusError& e) {
    py::object exc = make_exception(e.status, e.message);
    PyErr_SetObject(exception_class(e.status), exc.ptr());
    PyErr_WriteUnraisable(state->callback.ptr());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    PyErr_WriteUnraisable(state->callback.ptr());
  }
  tl_running_callback = nullptr;
}

// atexit: stop every callback thread while the interpreter can still run them to the end.
void stop_all_callbacks() {
  g_exiting.store(true);
  for (;;) {
    Subscriber* s = nullptr;
    {
      std::lock_guard<std::mutex> lock(g_active_mu);
      if (g_active.empty()) break;
      s = *g_active.begin();
    }
    s->join_callback();
  }
}

}  // namespace

bool interpreter_exiting() {
  return g_exiting.load();
}

namespace {

// sub.next_frame(timeout_ms=-1), a raw method (raw_method.h).
PyObject* next_frame_raw(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                         PyObject* kwnames) {
  return raw_call([&] {
    PyObject* a[1];
    parse_args("next_frame", args, nargs, kwnames, {"timeout_ms"}, a);
    const int timeout_ms = a[0] == nullptr ? -1 : int_arg(a[0], "next_frame", "timeout_ms");
    return self_as<Subscriber>(self).next_frame(timeout_ms).release().ptr();
  });
}

const char* const kNextFrameDoc =
    "next_frame($self, /, timeout_ms=-1)\n--\n\n"
    "Waits up to timeout_ms (-1: forever, 0: do not wait) for the next frame and holds it. "
    "Raises CuframesFrameTimeout, CuframesPublisherGone, CuframesOverrun (STRICT_ORDER), "
    "CuframesShmError. The GIL is released while it waits.";

}  // namespace

void register_subscriber(py::module_& m) {
  g_clock = py::module_::import("time").attr("monotonic_ns").cast<py::object>().release().ptr();
  def_switch(m, "_spin_warm", &g_spin_warm,
             "next_frame() warms up (the GIL, the frame object) when a spin window opens with "
             "no frame there yet (on by default). For benchmarks.");
  def_switch(m, "_wake_probe", &g_wake_probe,
             "next_frame() notes when its wait ended (off by default; "
             "CuframesSubscriber._wake_probe() reads it). For benchmarks.");
  cuframes_subscriber_options_t d;  // the defaults are the core's
  cuframes_subscriber_options_init(&d);
  py::class_<Subscriber> cls(m, "_SubscriberBase",
                             "The C++ half of CuframesSubscriber (use cuframes.subscribe()).");
  // the per-frame call, without pybind11's dispatcher
  add_raw_method(cls, "next_frame", next_frame_raw, kNextFrameDoc);
  cls.def(py::init<const std::string&, const std::optional<std::string>&, const py::object&, int,
                   int, const py::object&, const py::object&, uint32_t, uint32_t>(),
          py::arg("key"), py::arg("consumer_name") = py::none(),
          py::arg("mode") = subscriber_mode(d.mode), py::arg("cuda_device") = d.cuda_device,
          py::arg("connect_timeout_ms") = d.connect_timeout_ms,
          py::arg("consumer_stream") = reinterpret_cast<uintptr_t>(d.consumer_stream),
          py::kw_only(), py::arg("runtime_dir") = py::none(), py::arg("spin_us") = d.spin_us,
          py::arg("warm_us") = d.warm_us)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](Subscriber& s, const py::object&, const py::object&, const py::object&) {
             s.close();
             return false;
           })
      .def("close", &Subscriber::close,
           "Detaches from the publisher (idempotent); stops an on_frame callback first. Frames "
           "still held stay valid until released.")
      .def("_next_frame_nowait", &Subscriber::next_frame_nowait)
      .def("_wait_expired", &Subscriber::wait_expired, py::arg("timeout_ms"))
      .def("_torch_ahead", &Subscriber::torch_ahead,
           "(made, taken): torch tensors next_frame() made ahead for .torch(), and how many "
           "of them .torch() handed out. For tests and benchmarks.")
      .def("_wake_probe", &Subscriber::wake_probe,
           "(core_ns, gil_ns, warmups, refill_ns): CLOCK_MONOTONIC when the last next_frame()'s "
           "wait ended in the core and when it had the GIL back, how many spin windows "
           "next_frame() has warmed up in, and how long the last next_frame() spent making "
           "tensors ahead before it waited (core_ns, gil_ns and refill_ns 0 until "
           "_wake_probe(True)). For benchmarks and tests.")
      .def("fileno", &Subscriber::fileno,
           "The readiness fd: readable when a frame may be there or the publisher went away. "
           "For select/epoll/asyncio; never read from it.")
      .def("on_frame", &Subscriber::on_frame, py::arg("callback"), py::arg("on_error") = py::none(),
           "Delivers every frame to callback(frame) on a thread of the library's own (the GIL "
           "is taken for each call); the frame is released when the callback returns. "
           "on_error(exc) gets failures (CuframesOverrun, CuframesPublisherGone, ...); after "
           "CuframesPublisherGone the thread ends. on_frame(None) or close() stops it. While it "
           "runs, next_frame() raises CuframesInvalidArgument.")
      .def_property_readonly("callback_running", &Subscriber::callback_running,
                             "True while an on_frame callback is installed and not stopped.")
      .def_property_readonly("key", &Subscriber::key)
      .def_property_readonly("consumer_name", &Subscriber::consumer_name,
                             "The resolved name (\"<program>-<pid>\" when none was given).")
      .def_property_readonly("mode", &Subscriber::mode)
      .def_property_readonly("cuda_device", &Subscriber::cuda_device)
      .def_property_readonly("consumer_stream", &Subscriber::consumer_stream,
                             "The cudaStream_t frames are consumed on, as an int (0: default).")
      .def_property_readonly("closed", &Subscriber::closed)
      .def_property_readonly("memory", &Subscriber::memory, "\"cuda\" or \"host\".")
      .def_property_readonly("format",
                             [](Subscriber& s) { return pixel_format(s.geometry().format); })
      .def_property_readonly("width", [](Subscriber& s) { return s.geometry().width; })
      .def_property_readonly("height", [](Subscriber& s) { return s.geometry().height; })
      .def_property_readonly("frames_received",
                             [](Subscriber& s) { return s.stats_now().frames_received; })
      .def_property_readonly(
          "timeouts", [](Subscriber& s) { return s.stats_now().timeouts; },
          "next_frame calls (and async waits) that timed out.")
      .def_property_readonly(
          "errors", [](Subscriber& s) { return s.stats_now().errors; },
          "next_frame calls that failed otherwise (overruns included).")
      .def_property_readonly("last_seq", [](Subscriber& s) { return s.stats_now().last_seq; })
      .def_property_readonly(
          "gap_count", [](Subscriber& s) { return s.stats_now().gaps; },
          "Frames published but never handed to this subscriber.")
      .def_property_readonly("overruns", [](Subscriber& s) { return s.stats_now().overruns; })
      .def_property_readonly("last_frame_pts_ns",
                             [](Subscriber& s) { return s.stats_now().last_frame_pts_ns; })
      .def_property_readonly(
          "ring_occupancy", [](Subscriber& s) { return s.ring_now().stats.held_slots; },
          "Slots held by at least one subscriber right now.")
      .def_property_readonly(
          "publisher_dropped", [](Subscriber& s) { return s.ring_now().stats.dropped; },
          "Frames the publisher dropped because every slot was held.")
      .def("stats", &Subscriber::stats,
           "A snapshot of every counter as a dict (this subscriber's, and the ring's as the "
           "publisher keeps them), e.g. for an MQTT health message. Still readable after "
           "close() (the last values).")
      .def("__repr__", [](Subscriber& s) {
        return "<CuframesSubscriber key='" + s.key() + "' name='" + s.consumer_name() + "'" +
               (s.closed() ? " closed>" : ">");
      });

  m.def("_stop_all_callbacks", &stop_all_callbacks);
}

}  // namespace cfpy
