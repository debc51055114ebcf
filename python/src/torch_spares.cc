// Tensors made ahead of their frames (torch_spares.h).
#include "torch_spares.h"

#include <utility>

#include "frame.h"
#include "torch_interop.h"

namespace cfpy {
namespace {

bool g_ahead = true;  // _torch_made_ahead(False): none are made (benchmarks compare)

}  // namespace

// What a made-ahead tensor's capsule owns: empty until the tensor is handed out with a frame,
// then that frame's hold, dropped when torch frees the tensor (the deleter, any thread).
struct TorchSpares::Holder {
  std::shared_ptr<FrameHold> hold;
};

bool TorchSpares::same(const ExportView& a, const ExportView& b) {
  if (a.data != b.data || a.ndim != b.ndim || a.device.device_type != b.device.device_type ||
      a.device.device_id != b.device.device_id || a.dtype.code != b.dtype.code ||
      a.dtype.bits != b.dtype.bits || a.dtype.lanes != b.dtype.lanes) {
    return false;
  }
  for (int d = 0; d < a.ndim; ++d) {
    if (a.shape[d] != b.shape[d] || a.strides[d] != b.strides[d]) return false;
  }
  return true;
}

PyObject* TorchSpares::take(uint32_t slot, Plane plane, const ExportView& view,
                            const std::shared_ptr<FrameHold>& hold, uintptr_t stream) {
  for (Spare& s : spares_) {
    if (s.slot != slot || s.plane != plane || !s.tensor) continue;
    py::object tensor = std::move(s.tensor);  // handed out once, made again by refill()
    std::shared_ptr<Holder> holder = std::move(s.holder);
    if (!same(s.view, view)) return nullptr;  // the slot moved: dropped (it holds nothing)
    const TorchEntry* t = torch_entry();
    if (t == nullptr || torch_inference_mode(t) != (s.inference ? 1 : 0)) return nullptr;
    holder->hold = hold;
    if (stream != 0) hold->streams().add(stream);
    ++taken_;
    return tensor.release().ptr();
  }
  return nullptr;
}

void TorchSpares::want(uint32_t slot, Plane plane, const ExportView& view) {
  if (broken_ || !g_ahead) return;
  const TorchEntry* t = torch_entry();
  const int inference = t == nullptr ? -1 : torch_inference_mode(t);
  if (inference < 0) {  // a torch that cannot say: a tensor made ahead might not fit
    clear();
    broken_ = true;
    return;
  }
  for (Spare& s : spares_) {
    if (s.slot == slot && s.plane == plane) {
      if (!same(s.view, view) || s.inference != (inference == 1)) {  // made again to fit
        s.view = view;
        s.inference = inference == 1;
        s.tensor = py::object();
        s.holder.reset();
      }
      return;
    }
  }
  Spare s;
  s.slot = slot;
  s.plane = plane;
  s.view = view;
  s.inference = inference == 1;
  spares_.push_back(std::move(s));
}

void TorchSpares::refill() {
  if (broken_ || spares_.empty()) return;
  if (!g_ahead) {
    clear();
    return;
  }
  const TorchEntry* t = torch_entry();
  if (t == nullptr || t->from_dlpack == nullptr) return;  // the fast path was turned off
  const int inference = torch_inference_mode(t);
  // By index: the import runs Python (a collection may free frames, never touch this vector).
  for (size_t i = 0; i < spares_.size(); ++i) {
    // made in the inference mode the .torch() that wanted it ran in, else not now
    if (spares_[i].tensor || (inference == 1) != spares_[i].inference) continue;
    auto holder = std::make_shared<Holder>();
    const ExportView view = spares_[i].view;
    py::object tensor = py::reinterpret_steal<py::object>(torch_import_view(t, view, holder));
    if (!tensor) {  // .torch() imports as it would have; nothing is made again
      PyErr_Clear();
      clear();
      broken_ = true;
      return;
    }
    // Changed meanwhile by another thread's .torch() (a finaliser run by the import may give
    // the GIL away): made again next time.
    if (i >= spares_.size() || spares_[i].tensor || !same(spares_[i].view, view)) continue;
    spares_[i].tensor = std::move(tensor);
    spares_[i].holder = std::move(holder);
    ++made_;
  }
}

void TorchSpares::clear() {
  std::vector<Spare> old;
  old.swap(spares_);  // the tensors freed after the vector is consistent again
}

void register_torch_spares(py::module_& m) {
  def_switch(
      m, "_torch_made_ahead", &g_ahead,
      "Tensors made ahead for .torch() by next_frame() (on by default; torch_spares.h). False: "
      ".torch() imports each plane when asked. For benchmarks and tests.");
}

}  // namespace cfpy
