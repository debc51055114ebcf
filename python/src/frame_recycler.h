// Frame objects given back by their users, so that a subscriber's wake frees none and makes none.
//
// In the usual loop, `frame = sub.next_frame()` lets go of the previous frame object when the
// name is bound again: just after next_frame() returns, inside the latency. A subscriber's frames
// made by next_frame() therefore come back here once their user has released them (release(), a
// with block's end): the last one released is kept (a reference of ours, so that letting go of
// it frees nothing), and when the next one is released, the one kept before is set aside to be
// the object a later next_frame() returns, if nothing else refers to it any more, or let go.
//
// Only released frame objects are kept, so a frame's hold never outlives its users' references
// (a frame dropped unreleased is freed, and released, at once, as before). One that is referred
// to (a variable, a list, a CuframesPlane, a weak reference) is never reused. All under the GIL.
#pragma once

#include "common.h"

namespace cfpy {

class FrameRecycler {
 public:
  FrameRecycler() = default;
  FrameRecycler(const FrameRecycler&) = delete;
  FrameRecycler& operator=(const FrameRecycler&) = delete;
  ~FrameRecycler() { clear(); }

  // frame: a CuframesFrame its user has just released (borrowed; a reference is taken). Once the
  // subscriber is closed, nothing is kept.
  void keep(PyObject* frame);
  // A released frame object that nothing else refers to, to be made the next frame (a new
  // reference), or null.
  PyObject* take();
  // The subscriber is closing: lets go of both and keeps nothing from now on.
  void close() {
    clear();
    closed_ = true;
  }

 private:
  void clear();                       // lets go of both
  static bool unshared(PyObject* o);  // ours alone: one reference, no weak ones

  PyObject* kept_ = nullptr;   // the last frame released
  PyObject* spare_ = nullptr;  // the one released before it, ours alone when set aside
  bool closed_ = false;
};

// Registers _recycle_frames.
void register_frame_recycler(py::module_& m);

}  // namespace cfpy
