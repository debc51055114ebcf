#include "shm.h"

#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace cuframes::detail {

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    if (p_ != nullptr) ::munmap(p_, n_);
    p_ = std::exchange(o.p_, nullptr);
    n_ = std::exchange(o.n_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (p_ != nullptr) ::munmap(p_, n_);
}

Status create_shared_region(const char* name, size_t size, SharedRegion* out) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "memfd_create(%s)", name);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return ErrnoErr(
        errno == ENOMEM || errno == ENOSPC ? CUFRAMES_ERR_OUT_OF_MEMORY : CUFRAMES_ERR_SHM, errno,
        "sizing %s to %zu bytes", name, size);
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    return ErrnoErr(errno == ENOMEM ? CUFRAMES_ERR_OUT_OF_MEMORY : CUFRAMES_ERR_SHM, errno,
                    "mapping %s (%zu bytes)", name, size);
  }
  out->fd = std::move(fd);
  out->map = Mapping(p, size);
  return Ok();
}

Status seal_shared_region(const SharedRegion& region, bool readonly_for_peers) {
  int seals = F_SEAL_SHRINK | F_SEAL_GROW;
  if (readonly_for_peers) seals |= F_SEAL_FUTURE_WRITE;
  if (::fcntl(region.fd.get(), F_ADD_SEALS, seals | F_SEAL_SEAL) != 0) {
    return ErrnoErr(CUFRAMES_ERR_SHM, errno, "sealing shared memory");
  }
  return Ok();
}

Status map_peer_region(int fd, size_t size, bool writable, const char* what, Mapping* out,
                       size_t offset) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    return ErrnoErr(CUFRAMES_ERR_SHM, errno, "%s: the peer sent an fd that is not a memfd", what);
  }
  if ((seals & F_SEAL_SHRINK) == 0) {
    return Err(CUFRAMES_ERR_SHM, "%s: the peer's memfd is not sealed against shrinking", what);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "%s: fstat", what);
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < offset + size) {
    return Err(CUFRAMES_ERR_SHM, "%s: memfd has %lld bytes, the handshake promised %zu", what,
               static_cast<long long>(st.st_size), offset + size);
  }
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "%s: mmap", what);
  *out = Mapping(p, size);
  return Ok();
}

}  // namespace cuframes::detail
