// DLPack on both sides: exporting frame planes (producer: CuframesFrame, CuframesLoan) and
// importing the sources handed to CuframesPublisher.publish (consumer).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common.h"
#include "dlpack_compat.h"

namespace cfpy {

enum class Plane { kY = 0, kUV = 1, kYUV = 2 };

// DLPack's capsule names: unconsumed, and renamed by the consumer that took it.
constexpr const char* kLegacyName = "dltensor";
constexpr const char* kVersionedName = "dltensor_versioned";
constexpr const char* kUsedLegacyName = "used_dltensor";
constexpr const char* kUsedVersionedName = "used_dltensor_versioned";

// An int argument, or TypeError naming it (what).
int64_t as_int64(const py::handle& h, const char* what);

// One strided view of memory to export: a frame plane (2-D) or a preprocessed batch (4-D).
struct ExportView {
  static constexpr int kMaxDims = 4;
  void* data = nullptr;
  DLDevice device{};
  DLDataType dtype{};
  int ndim = 2;
  int64_t shape[kMaxDims] = {0, 0, 0, 0};
  int64_t strides[kMaxDims] = {0, 0, 0, 0};  // in elements, as DLPack wants them
};

DLDevice frame_device(const cuframes_frame_info_t& info);
// The view of one plane: Y (H, W), UV (H/2, W), or both as one (H + H/2, W) array (the layout
// publish() takes; needs UV right after the Y rows with the same pitch). uint8 for 8-bit
// formats, uint16 for P010. Raises CuframesInvalidArgument for a plane the format lacks.
ExportView plane_view(const cuframes_frame_info_t& info, Plane plane);

// __dlpack__ keyword arguments, checked against the exporting device.
struct ExportRequest {
  bool versioned = false;   // max_version >= (1, 0): a DLManagedTensorVersioned capsule
  bool has_stream = false;  // the consumer named a CUDA stream it will use the data on
  uintptr_t stream = 0;
  bool unordered = false;  // stream=-1: the consumer orders nothing (CUDA)
  bool copy = false;       // copy=True: the consumer wants a copy of its own
  bool no_copy = false;    // copy=False: the consumer refuses one
};
// Raises BufferError for another dl_device, stream 0 on CUDA, or a stream on CPU. copy is
// only reported: producers that cannot copy call refuse_copy().
ExportRequest parse_export_args(const DLDevice& device, const py::object& stream,
                                const py::object& max_version, const py::object& dl_device,
                                const py::object& copy);
// BufferError for copy=True, naming what cannot be copied.
void refuse_copy(const ExportRequest& req, const char* what);

// A "dltensor" or "dltensor_versioned" capsule over view. owner stays alive until the consumer
// calls the tensor's deleter (or the unconsumed capsule is collected); the deleter touches no
// Python object, so consumers may call it from any thread, with or without the GIL. copied: the
// view is a copy made for this export (DLPACK_FLAG_BITMASK_IS_COPIED).
py::capsule make_capsule(const ExportView& view, std::shared_ptr<void> owner, bool versioned,
                         bool read_only, bool copied = false);

// The CUDA streams a frame or loan was exported to. join() makes the first one wait for the
// others (CUDA events) and returns it; 0 when none was recorded.
class StreamSet {
 public:
  // Room for n streams made now, so that add() does not allocate (frames made ahead).
  void reserve(size_t n);
  void add(uintptr_t stream);
  bool empty();
  uintptr_t join(int device);
  // Copies up to cap of the streams into out; returns how many there are.
  size_t copy_to(uintptr_t* out, size_t cap);

 private:
  std::mutex mu_;
  std::vector<uintptr_t> streams_;
};

class OwnedMemory;  // owned_memory.h

// A compact copy of a plane (rows of width samples), the module's own memory: what
// CuframesPlane.compact() holds and exports.
struct CompactCopy {
  std::shared_ptr<OwnedMemory> memory;
  ExportView view;       // over memory
  uintptr_t stream = 0;  // the CUDA stream it was written on (0 for host copies)
};

// A CuframesPlane object for a plane of owner (a CuframesFrame or CuframesLoan). copy: the
// compact copy it exports instead of the plane (CuframesPlane.compact()).
py::object make_plane(py::object owner, Plane plane,
                      std::shared_ptr<const CompactCopy> copy = nullptr);

// Anything whose planes can be exported: CuframesFrame and CuframesLoan.
class Exportable {
 public:
  virtual ~Exportable() = default;
  virtual py::capsule export_plane(Plane plane, const py::object& stream,
                                   const py::object& max_version, const py::object& dl_device,
                                   const py::object& copy) = 0;
  virtual const cuframes_frame_info_t& frame_info() const = 0;
  // A compact copy of plane, written on the owner's consumer stream (CuframesPlane.compact()).
  // BufferError where planes are not copied (loans are written in place).
  virtual CompactCopy compact_copy(Plane plane);
  // (device_type, device_id), made once per object (asked at every export by the consumers).
  py::object dlpack_device() const;
  // .torch() of plane over view with stream=None (torch_spares.h): the tensor made ahead for it
  // (a new reference, now holding this object's data, stream recorded: 0 for host memory), or
  // null; and, after an import made here, the wish for one next time. Frames of a subscriber
  // have them; others do not.
  virtual PyObject* take_spare(Plane plane, const ExportView& view, uintptr_t stream);
  virtual void want_spare(Plane plane, const ExportView& view);

 private:
  mutable py::object device_;
};

// A DLPack source taken from a producer object (consumer side). Owns the managed tensor and calls
// its deleter when destroyed; a torch.Tensor read through torch's C shim is held instead.
class ImportedTensor {
 public:
  // obj: an object with __dlpack__/__dlpack_device__, or a raw "dltensor" capsule. For CUDA
  // producers, stream is the stream we will read the data on (passed as __dlpack__(stream=)).
  explicit ImportedTensor(const py::handle& obj, uintptr_t stream);
  ~ImportedTensor();
  ImportedTensor(const ImportedTensor&) = delete;
  ImportedTensor& operator=(const ImportedTensor&) = delete;
  const DLTensor& tensor() const { return *tensor_; }

 private:
  DLManagedTensor* legacy_ = nullptr;
  DLManagedTensorVersioned* versioned_ = nullptr;
  PyObject* owner_ = nullptr;  // a torch.Tensor read in place (view_), a strong reference
  DLTensor view_{};
  const DLTensor* tensor_ = nullptr;
};

}  // namespace cfpy
