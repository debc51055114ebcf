// CuframesFrame: a frame held by a subscriber, exported through DLPack.
#pragma once

#include <memory>
#include <string>

#include "common.h"
#include "dlpack.h"
#include "frame_recycler.h"
#include "torch_spares.h"

namespace cfpy {

// The hold on one frame. Shared by the CuframesFrame and every DLPack tensor exported from it;
// the last owner to let go releases the frame (cuframes_frame_release) on the CUDA streams the
// tensors were used on. Pure C++: may be destroyed on any thread, GIL or not.
class FrameHold {
 public:
  explicit FrameHold(cuframes_frame_t* frame);
  // Empty, for attach(): made before the frame comes (Subscriber::next_frame), with room for
  // the streams its exports record.
  FrameHold() { streams_.reserve(2); }
  ~FrameHold();
  FrameHold(const FrameHold&) = delete;
  FrameHold& operator=(const FrameHold&) = delete;

  // Takes frame (this hold must be empty).
  void attach(cuframes_frame_t* frame);
  const cuframes_frame_info_t& info() const { return info_; }
  cuframes_frame_t* handle() const { return frame_; }
  StreamSet& streams() { return streams_; }
  // Releases now (idempotent); the status of cuframes_frame_release.
  cuframes_status_t release(std::string* message);

 private:
  cuframes_frame_t* frame_ = nullptr;
  cuframes_frame_info_t info_{};
  StreamSet streams_;
};

class Frame : public Exportable {
 public:
  // consumer_stream: its subscriber's. spares: its subscriber's tensors made ahead, or null.
  Frame(cuframes_frame_t* frame, uintptr_t consumer_stream,
        std::shared_ptr<TorchSpares> spares = nullptr);
  // A frame object made before its frame comes, so that a subscriber's wake costs no Python
  // object's creation: attach() gives it the frame. Until then it is never seen by Python code.
  // recycler: where it goes back once its user has released it (frame_recycler.h), or null.
  Frame(uintptr_t consumer_stream, std::shared_ptr<TorchSpares> spares,
        std::shared_ptr<FrameRecycler> recycler = nullptr);
  void attach(cuframes_frame_t* frame);
  // A released frame object from the recycler made ready for attach() again.
  void recycle();
  // release(stream) called from Python (release(), __exit__): then self, this frame's Python
  // object, goes to the recycler, if any.
  void release_and_give_back(const py::handle& self, const py::object& stream);
  ~Frame() override = default;

  const cuframes_frame_info_t& frame_info() const override { return info_; }
  py::capsule export_plane(Plane plane, const py::object& stream, const py::object& max_version,
                           const py::object& dl_device, const py::object& copy) override;
  // On the subscriber's consumer_stream (CuframesPlane.compact()).
  CompactCopy compact_copy(Plane plane) override;
  PyObject* take_spare(Plane plane, const ExportView& view, uintptr_t stream) override;
  void want_spare(Plane plane, const ExportView& view) override;
  // Gives up this object's share of the hold (idempotent). stream: a CUDA stream the data was
  // used on, added to those recorded by DLPack exports.
  void release(const py::object& stream);
  // Waits until the work queued so far on the frame's streams (its consumer stream and those its
  // exports were ordered on) has finished; with the GIL when they are idle already.
  void synchronize();
  bool released() const { return !hold_; }
  // The hold (null once released): whoever keeps a copy keeps the frame held.
  const std::shared_ptr<FrameHold>& hold() const { return hold_; }
  uintptr_t consumer_stream() const { return consumer_stream_; }

 private:
  // A compact copy of view (rows of width samples): on req's stream (None: consumer_stream_).
  CompactCopy copy_view(const ExportView& view, const ExportRequest& req);
  void require_held() const;

  std::shared_ptr<FrameHold> hold_;
  cuframes_frame_info_t info_{};
  uintptr_t consumer_stream_ = 0;
  std::shared_ptr<TorchSpares> spares_;
  std::shared_ptr<FrameRecycler> recycler_;
};

}  // namespace cfpy
