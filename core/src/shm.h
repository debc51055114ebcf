// memfd-backed shared memory: creation with seals, validated import, and a mapping owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "fd.h"
#include "status.h"

namespace cuframes::detail {

// A mmap()ed region, unmapped on destruction. Move-only.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* p, size_t n) : p_(p), n_(n) {}
  Mapping(Mapping&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  uint8_t* data() const { return static_cast<uint8_t*>(p_); }
  size_t size() const { return n_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// Shared memory the publisher creates: a memfd of `size` bytes (zeroed), mapped read-write.
// seal() forbids resizing it and, with readonly_for_peers, any new writable mapping: peers that
// receive the fd can only map it read-only. The publisher's own mapping stays writable.
struct SharedRegion {
  UniqueFd fd;
  Mapping map;
};
Status create_shared_region(const char* name, size_t size, SharedRegion* out);
Status seal_shared_region(const SharedRegion& region, bool readonly_for_peers);

// Maps size bytes at offset of a memfd received from a peer, after checking it is sealed against
// shrinking (so the peer cannot make our accesses fault) and holds offset + size bytes.
// writable: PROT_READ|PROT_WRITE, else read-only.
Status map_peer_region(int fd, size_t size, bool writable, const char* what, Mapping* out,
                       size_t offset = 0);

}  // namespace cuframes::detail
