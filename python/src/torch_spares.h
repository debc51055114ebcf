// Tensors made ahead of their frames, so that frame.torch() costs a lookup when the frame comes.
//
// A subscriber's frames come from a few slots, each always at the same address with the same
// shape. Once .torch() has been asked for a plane of a frame (stream=None), the subscriber's
// next_frame() makes, before it waits, a torch tensor over that plane of every slot seen so far
// that lacks one: torch's import of the plane, with the frame's hold still empty. When a frame
// arrives in that slot, .torch() takes the tensor made for it, provided the plane's view is still
// exactly the one it was made over (pointer, shape, strides, dtype, device) and torch's inference
// mode is the same, puts the frame's hold in it and records torch's current stream, as an import
// then would. The tensor is then what torch.from_dlpack would have made, and the import's cost
// (the torch tensor's creation, cold after the wait) is paid between frames instead of in the
// latency. Each tensor is handed out once; one that no longer fits is dropped and made again.
//
// All under the GIL. A failure to make one is no error: .torch() then imports as it would have.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common.h"
#include "dlpack.h"

namespace cfpy {

class FrameHold;  // frame.h

class TorchSpares {
 public:
  TorchSpares() = default;
  TorchSpares(const TorchSpares&) = delete;
  TorchSpares& operator=(const TorchSpares&) = delete;

  // The tensor made for plane of the frame in slot (a new reference), holding `hold` from now
  // on and with `stream` recorded in it (0: none, host frames), or null when there is none that
  // fits `view`.
  PyObject* take(uint32_t slot, Plane plane, const ExportView& view,
                 const std::shared_ptr<FrameHold>& hold, uintptr_t stream);
  // .torch() imported plane of a frame in slot over view: make one ahead for that slot.
  void want(uint32_t slot, Plane plane, const ExportView& view);
  // Makes the tensors wanted and missing (next_frame(), before it waits; torch imported).
  void refill();
  // Drops them all (the subscriber is closed).
  void clear();

  // How many were made and how many handed out (tests).
  uint64_t made() const { return made_; }
  uint64_t taken() const { return taken_; }

 private:
  struct Holder;  // the hold a made-ahead tensor's capsule owns, empty until taken
  struct Spare {
    uint32_t slot = 0;
    Plane plane = Plane::kY;
    ExportView view;
    std::shared_ptr<Holder> holder;  // null while none is made
    py::object tensor;
    bool inference = false;  // torch's inference mode at the .torch() that wanted it: made
                             // only while it is the same (an inference tensor or not)
  };
  static bool same(const ExportView& a, const ExportView& b);

  std::vector<Spare> spares_;  // one per (slot, plane) wanted
  bool broken_ = false;        // making one failed: none are made any more
  uint64_t made_ = 0, taken_ = 0;
};

// Registers _torch_made_ahead.
void register_torch_spares(py::module_& m);

}  // namespace cfpy
