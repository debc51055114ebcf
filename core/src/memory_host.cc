// Host memory backend: the ring is a memfd. The publisher maps it read-write and seals it so the
// fd it hands out can only be mapped read-only (F_SEAL_FUTURE_WRITE).
#include <cstring>

#include "memory.h"
#include "shm.h"

namespace cuframes::detail {
namespace {

class HostAllocation final : public RingAllocation {
 public:
  explicit HostAllocation(SharedRegion region) : region_(std::move(region)) {}
  uint8_t* base() const override { return region_.map.data(); }
  size_t size() const override { return region_.map.size(); }
  HandleType handle_type() const override { return HandleType::kMemfd; }
  int export_fd() const override { return region_.fd.get(); }
  size_t export_handle(uint8_t*, size_t) const override { return 0; }

  Status copy_rows(uint8_t* dst, size_t dst_pitch, const void* src, size_t src_pitch,
                   size_t row_bytes, size_t rows, cuframes_memory_t src_memory, void*) override {
    if (src_memory != CUFRAMES_MEMORY_HOST) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "a host ring takes host sources only");
    }
    const auto* s = static_cast<const uint8_t*>(src);
    if (dst_pitch == src_pitch && row_bytes == src_pitch) {
      std::memcpy(dst, s, row_bytes * rows);
    } else {
      for (size_t r = 0; r < rows; ++r)
        std::memcpy(dst + r * dst_pitch, s + r * src_pitch, row_bytes);
    }
    return Ok();
  }
  Status finish_writes(void*) override { return Ok(); }

 private:
  SharedRegion region_;
};

class HostImport final : public RingImport {
 public:
  explicit HostImport(Mapping map) : map_(std::move(map)) {}
  uint8_t* base() const override { return map_.data(); }
  size_t size() const override { return map_.size(); }
  int device() const override { return -1; }
  Status release_after(void*, void (*fn)(void*), void* arg) override {
    fn(arg);
    return Ok();
  }

 private:
  Mapping map_;
};

class HostBackend final : public MemoryBackend {
 public:
  cuframes_memory_t kind() const override { return CUFRAMES_MEMORY_HOST; }
  uint32_t pitch_alignment() const override { return 64; }

  Status allocate(size_t bytes, int, std::unique_ptr<RingAllocation>* out) override {
    SharedRegion region;
    CUFRAMES_RETURN_IF_ERROR(create_shared_region("cuframes-frames", bytes, &region));
    CUFRAMES_RETURN_IF_ERROR(seal_shared_region(region, /*readonly_for_peers=*/true));
    *out = std::make_unique<HostAllocation>(std::move(region));
    return Ok();
  }

  Status import(HandleType type, int fd, const uint8_t*, size_t bytes, int,
                std::unique_ptr<RingImport>* out) override {
    if (type != HandleType::kMemfd || fd < 0) {
      return Err(CUFRAMES_ERR_SHM, "host ring: expected a memfd, got handle type %u",
                 static_cast<unsigned>(type));
    }
    Mapping map;
    CUFRAMES_RETURN_IF_ERROR(map_peer_region(fd, bytes, /*writable=*/false, "frame memory", &map));
    ::close(fd);  // the mapping keeps the memory alive
    *out = std::make_unique<HostImport>(std::move(map));
    return Ok();
  }
};

}  // namespace

MemoryBackend* host_backend() {
  static HostBackend backend;
  return &backend;
}

Status memory_backend(cuframes_memory_t kind, MemoryBackend** out) {
  switch (kind) {
    case CUFRAMES_MEMORY_HOST:
      *out = host_backend();
      return Ok();
    case CUFRAMES_MEMORY_CUDA:
      if (MemoryBackend* b = cuda_backend(); b != nullptr) {
        *out = b;
        return Ok();
      }
      return Err(CUFRAMES_ERR_DEVICE_LOST,
                 "cuda memory requested but libcuframes was built without CUDA%s", kHostMemoryHint);
    case CUFRAMES_MEMORY_MAX_ENUM:
      break;
  }
  return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown memory kind %d", static_cast<int>(kind));
}

#ifndef CUFRAMES_WITH_CUDA
MemoryBackend* cuda_backend() {
  return nullptr;
}
#endif

}  // namespace cuframes::detail
