// Memory provider interface: where a ring's frame memory comes from and how a subscriber maps it.
// The protocol (publisher.cc, subscriber.cc) sees only these classes, so a backend plugs in
// without touching it. Backends: host (memory_host.cc, always) and cuda (memory_cuda.cc, when
// built with CUDA).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "status.h"
#include "wire.h"

namespace cuframes::detail {

// Said wherever CUDA memory cannot be had: host memory needs no GPU.
constexpr const char* kHostMemoryHint =
    "; a ring in host memory needs no GPU: memory \"host\" (Python memory=\"host\", C "
    "CUFRAMES_MEMORY_HOST, service config memory: host)";

// The publisher's ring allocation: one block holding every slot.
class RingAllocation {
 public:
  virtual ~RingAllocation() = default;
  virtual uint8_t* base() const = 0;  // host or device pointer, valid for the object's life
  virtual size_t size() const = 0;
  virtual HandleType handle_type() const = 0;
  // What a subscriber imports: an fd (owned by this object, -1 if none) and handle bytes
  // (copied into out, at most 64; returns the count).
  virtual int export_fd() const = 0;
  virtual size_t export_handle(uint8_t* out, size_t cap) const = 0;
  // Copies rows bytes x row_bytes into dst (inside the ring) from src (host or device per
  // src_memory), queued on stream where the backend has streams.
  virtual Status copy_rows(uint8_t* dst, size_t dst_pitch, const void* src, size_t src_pitch,
                           size_t row_bytes, size_t rows, cuframes_memory_t src_memory,
                           void* stream) = 0;
  // Returns once every write queued on stream (and by copy_rows) has completed.
  virtual Status finish_writes(void* stream) = 0;
};

// A subscriber's view of the ring.
class RingImport {
 public:
  virtual ~RingImport() = default;
  virtual uint8_t* base() const = 0;
  virtual size_t size() const = 0;
  // The CUDA device the pointers are valid on; -1 for host memory.
  virtual int device() const = 0;
  // Arranges fn(arg) to run once the work queued on stream so far has finished. Host: runs it
  // now. fn must not call back into the backend. Fails with DEVICE_LOST (fn not run).
  virtual Status release_after(void* stream, void (*fn)(void*), void* arg) = 0;
};

class MemoryBackend {
 public:
  virtual ~MemoryBackend() = default;
  virtual cuframes_memory_t kind() const = 0;
  virtual uint32_t pitch_alignment() const = 0;  // default row pitch alignment, bytes
  virtual Status allocate(size_t bytes, int device, std::unique_ptr<RingAllocation>* out) = 0;
  // fd is the received fd (ownership passes to the import on success) or -1; handle the bytes.
  virtual Status import(HandleType type, int fd, const uint8_t* handle, size_t bytes, int device,
                        std::unique_ptr<RingImport>* out) = 0;
};

// The backend of a memory kind. Fails with INVALID_ARGUMENT for an unknown kind, DEVICE_LOST
// (naming why) when cuda was asked for and no usable driver/device is there.
Status memory_backend(cuframes_memory_t kind, MemoryBackend** out);

MemoryBackend* host_backend();
// nullptr when the library was built without CUDA.
MemoryBackend* cuda_backend();

}  // namespace cuframes::detail
