// CUDA memory backend. The ring is ONE allocation on the publisher's device:
//  - preferred: a CUDA VMM allocation (cuMemCreate) exportable as a POSIX fd, passed over the
//    socket and imported once per subscriber (cuMemImportFromShareableHandle + cuMemMap), which
//    works across PID/IPC namespaces (containers sharing only the runtime dir);
//  - fallback, where VMM fd export is refused: cudaMalloc + a legacy cudaIpcMemHandle_t.
// Subscribers map the ring read-only where the driver allows it. A release is queued on the
// consumer stream with cudaLaunchHostFunc, so work launched before it finishes first.
//
// cudart is linked statically and the driver API is reached through cudaGetDriverEntryPoint*, so
// libcuframes loads (and the host backend works) on machines with no NVIDIA driver at all.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "geometry.h"
#include "log.h"
#include "memory.h"

namespace cuframes::detail {
namespace {

// --- errors --------------------------------------------------------------------------------------

Status cuda_error(cudaError_t e, const char* what) {
  (void)cudaGetLastError();  // clear the runtime's last error unless it is sticky
  cuframes_status_t code = CUFRAMES_ERR_DEVICE_LOST;
  if (e == cudaErrorMemoryAllocation) code = CUFRAMES_ERR_OUT_OF_MEMORY;
  if (e == cudaErrorInvalidDevice) code = CUFRAMES_ERR_INVALID_ARGUMENT;
  return Err(code, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define CUDA_TRY(expr, what)                            \
  do {                                                  \
    cudaError_t _e = (expr);                            \
    if (_e != cudaSuccess) return cuda_error(_e, what); \
  } while (0)

// --- the driver API, reached through the runtime -------------------------------------------------

struct Driver {
  decltype(&::cuGetErrorString) GetErrorString = nullptr;
  decltype(&::cuDeviceGetAttribute) DeviceGetAttribute = nullptr;
  decltype(&::cuMemGetAllocationGranularity) MemGetAllocationGranularity = nullptr;
  decltype(&::cuMemCreate) MemCreate = nullptr;
  decltype(&::cuMemRelease) MemRelease = nullptr;
  decltype(&::cuMemAddressReserve) MemAddressReserve = nullptr;
  decltype(&::cuMemAddressFree) MemAddressFree = nullptr;
  decltype(&::cuMemMap) MemMap = nullptr;
  decltype(&::cuMemUnmap) MemUnmap = nullptr;
  decltype(&::cuMemSetAccess) MemSetAccess = nullptr;
  decltype(&::cuMemExportToShareableHandle) MemExportToShareableHandle = nullptr;
  decltype(&::cuMemImportFromShareableHandle) MemImportFromShareableHandle = nullptr;
  int device_count = 0;
  Status status;  // why the driver is unusable, if it is
};

template <class F>
Status load_symbol(const char* name, F* out) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
  cudaError_t e = cudaGetDriverEntryPointByVersion(name, &fn, 12000, cudaEnableDefault, &q);
  if (e != cudaSuccess) return cuda_error(e, "loading the CUDA driver");
  if (q != cudaDriverEntryPointSuccess || fn == nullptr) {
    return Err(CUFRAMES_ERR_DEVICE_LOST, "the CUDA driver lacks %s", name);
  }
  *out = reinterpret_cast<F>(fn);
  return Ok();
}

// The CUDA driver cannot start (cudaErrorOperatingSystem) in a PID namespace whose /proc is
// another namespace's, e.g. under `unshare --pid` without --mount-proc (containers mount their
// own). Returns a hint saying so when that is the case, else "".
std::string foreign_proc_hint() {
  char buf[32];
  const ssize_t n = ::readlink("/proc/self", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  const long seen = std::strtol(buf, nullptr, 10);
  if (seen <= 0 || seen == static_cast<long>(::getpid())) return "";
  return "; this process is pid " + std::to_string(::getpid()) + " in its PID namespace, but " +
         "/proc shows it as pid " + std::to_string(seen) + ": /proc belongs to another PID " +
         "namespace, and the CUDA driver cannot start so. Mount a /proc of its own (unshare " +
         "--mount --mount-proc; containers do)";
}

const Driver& driver() {
  static Driver d;
  static std::once_flag once;
  std::call_once(once, [] {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      // Without the NVIDIA kernel driver the runtime only says "driver version is
      // insufficient": say what is missing, and what works without it.
      const bool no_driver = (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice) &&
                             ::access("/proc/driver/nvidia/version", F_OK) != 0;
      d.status = no_driver ? Err(CUFRAMES_ERR_DEVICE_LOST,
                                 "no NVIDIA GPU or driver on this machine (CUDA: %s)%s",
                                 cudaGetErrorName(e), kHostMemoryHint)
                           : cuda_error(e, "no usable CUDA driver or device");
      const std::string hint = e == cudaErrorOperatingSystem ? foreign_proc_hint() : "";
      if (!hint.empty()) {
        d.status = Err(d.status.code(), "%s%s", d.status.message().c_str(), hint.c_str());
      }
      return;
    }
    if (count == 0) {
      d.status = Err(CUFRAMES_ERR_DEVICE_LOST, "no CUDA device%s", kHostMemoryHint);
      return;
    }
    d.device_count = count;
#define LOAD(field, sym) \
  if (d.status.ok()) d.status = load_symbol(sym, &d.field)
    LOAD(GetErrorString, "cuGetErrorString");
    LOAD(DeviceGetAttribute, "cuDeviceGetAttribute");
    LOAD(MemGetAllocationGranularity, "cuMemGetAllocationGranularity");
    LOAD(MemCreate, "cuMemCreate");
    LOAD(MemRelease, "cuMemRelease");
    LOAD(MemAddressReserve, "cuMemAddressReserve");
    LOAD(MemAddressFree, "cuMemAddressFree");
    LOAD(MemMap, "cuMemMap");
    LOAD(MemUnmap, "cuMemUnmap");
    LOAD(MemSetAccess, "cuMemSetAccess");
    LOAD(MemExportToShareableHandle, "cuMemExportToShareableHandle");
    LOAD(MemImportFromShareableHandle, "cuMemImportFromShareableHandle");
#undef LOAD
  });
  return d;
}

Status cu_error(CUresult r, const char* what) {
  const char* s = nullptr;
  if (driver().GetErrorString) driver().GetErrorString(r, &s);
  return Err(r == CUDA_ERROR_OUT_OF_MEMORY ? CUFRAMES_ERR_OUT_OF_MEMORY : CUFRAMES_ERR_DEVICE_LOST,
             "%s: %s (CUresult %d)", what, s ? s : "unknown error", static_cast<int>(r));
}

#define CU_TRY(expr, what)                             \
  do {                                                 \
    CUresult _r = (expr);                              \
    if (_r != CUDA_SUCCESS) return cu_error(_r, what); \
  } while (0)

// Makes `device` current for the scope and restores the caller's device after: the caller's
// current device is theirs, not ours.
class DeviceScope {
 public:
  Status enter(int device) {
    CUFRAMES_RETURN_IF_ERROR(driver().status);
    const int count = driver().device_count;
    if (device < 0 || device >= count) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "cuda_device %d does not exist (%d device%s)",
                 device, count, count == 1 ? "" : "s");
    }
    CUDA_TRY(cudaGetDevice(&prev_), "cudaGetDevice");
    if (prev_ != device) CUDA_TRY(cudaSetDevice(device), "cudaSetDevice");
    entered_ = true;
    return Ok();
  }
  ~DeviceScope() {
    int cur = -1;
    if (entered_ && cudaGetDevice(&cur) == cudaSuccess && cur != prev_) cudaSetDevice(prev_);
  }

 private:
  int prev_ = 0;
  bool entered_ = false;
};

bool force_legacy_ipc() {
  const char* v = std::getenv("CUFRAMES_CUDA_LEGACY_IPC");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

// How publish() waits for a frame's copy into the slot (an experiment, issue 16:
// CUFRAMES_PUBLISH_SYNC): "spin" (the default): cudaEventSynchronize on a plain event, which
// busy-waits; "blocking": an event made with cudaEventBlockingSync, so the thread sleeps in the
// driver until the copy's completion interrupt; "poll": cudaEventQuery, sleeping 20 us between
// queries. Read once per process.
enum class PublishSync { kSpin, kBlocking, kPoll };
PublishSync publish_sync() {
  static const PublishSync mode = [] {
    const char* v = std::getenv("CUFRAMES_PUBLISH_SYNC");
    if (v != nullptr && std::strcmp(v, "blocking") == 0) return PublishSync::kBlocking;
    if (v != nullptr && std::strcmp(v, "poll") == 0) return PublishSync::kPoll;
    if (v != nullptr && *v != '\0' && std::strcmp(v, "spin") != 0) {
      log(CUFRAMES_LOG_WARN, "CUFRAMES_PUBLISH_SYNC=%s: not spin, blocking or poll; using spin", v);
    }
    return PublishSync::kSpin;
  }();
  return mode;
}

CUmemAllocationProp vmm_prop(int device) {
  CUmemAllocationProp p{};
  p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.location.id = device;
  p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  return p;
}

// --- a VMM mapping: reserve + map + access, undone in reverse ------------------------------------

struct VmmMapping {
  CUmemGenericAllocationHandle handle = 0;
  CUdeviceptr ptr = 0;
  size_t size = 0;
  bool mapped = false;

  Status map(int device, CUmemAccess_flags access, size_t granularity) {
    const Driver& d = driver();
    CU_TRY(d.MemAddressReserve(&ptr, size, granularity, 0, 0), "cuMemAddressReserve");
    CU_TRY(d.MemMap(ptr, size, 0, handle, 0), "cuMemMap");
    mapped = true;
    CUmemAccessDesc desc{};
    desc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    desc.location.id = device;
    desc.flags = access;
    CUresult r = d.MemSetAccess(ptr, size, &desc, 1);
    if (r != CUDA_SUCCESS && access == CU_MEM_ACCESS_FLAGS_PROT_READ) {
      log(CUFRAMES_LOG_DEBUG, "read-only device mapping refused (CUresult %d); mapping read-write",
          static_cast<int>(r));
      desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
      r = d.MemSetAccess(ptr, size, &desc, 1);
    }
    if (r != CUDA_SUCCESS) return cu_error(r, "cuMemSetAccess");
    return Ok();
  }
  ~VmmMapping() {
    const Driver& d = driver();
    if (mapped) d.MemUnmap(ptr, size);
    if (ptr != 0) d.MemAddressFree(ptr, size);
    if (handle != 0) d.MemRelease(handle);
  }
};

// --- publisher side ------------------------------------------------------------------------------

class CudaAllocation final : public RingAllocation {
 public:
  ~CudaAllocation() override {
    DeviceScope scope;
    if (!scope.enter(device_).ok()) return;
    if (event_ != nullptr) cudaEventDestroy(event_);
    if (legacy_ptr_ != nullptr) cudaFree(legacy_ptr_);
    vmm_.reset();
    if (fd_ >= 0) ::close(fd_);
  }

  static Status Create(size_t bytes, int device, std::unique_ptr<RingAllocation>* out) {
    DeviceScope scope;
    CUFRAMES_RETURN_IF_ERROR(scope.enter(device));
    std::unique_ptr<CudaAllocation> a(new CudaAllocation);
    a->device_ = device;
    a->bytes_ = bytes;
    Status st = force_legacy_ipc() ? Err(CUFRAMES_ERR_DEVICE_LOST, "legacy IPC forced")
                                   : a->create_vmm(bytes, device);
    if (!st.ok()) {
      if (st.code() == CUFRAMES_ERR_OUT_OF_MEMORY) return st;
      log(CUFRAMES_LOG_INFO, "CUDA VMM fd export unavailable (%s); using legacy cudaIpc",
          st.message().c_str());
      a->vmm_.reset();
      CUFRAMES_RETURN_IF_ERROR(a->create_legacy(bytes));
    }
    CUDA_TRY(cudaMemset(a->base(), 0, a->size()), "clearing the ring");
    const unsigned flags = cudaEventDisableTiming |
                           (publish_sync() == PublishSync::kBlocking ? cudaEventBlockingSync : 0);
    CUDA_TRY(cudaEventCreateWithFlags(&a->event_, flags), "cudaEventCreate");
    CUDA_TRY(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    *out = std::move(a);
    return Ok();
  }

  uint8_t* base() const override {
    return vmm_ ? reinterpret_cast<uint8_t*>(vmm_->ptr) : static_cast<uint8_t*>(legacy_ptr_);
  }
  size_t size() const override { return bytes_; }
  HandleType handle_type() const override {
    return vmm_ ? HandleType::kCudaVmmFd : HandleType::kCudaIpc;
  }
  int export_fd() const override { return fd_; }
  size_t export_handle(uint8_t* out, size_t cap) const override {
    if (vmm_) {  // the allocation's real size: a multiple of the granularity, >= size()
      uint64_t alloc = vmm_->size;
      if (cap < sizeof alloc) return 0;
      std::memcpy(out, &alloc, sizeof alloc);
      return sizeof alloc;
    }
    if (cap < sizeof ipc_) return 0;
    std::memcpy(out, &ipc_, sizeof ipc_);
    return sizeof ipc_;
  }

  Status copy_rows(uint8_t* dst, size_t dst_pitch, const void* src, size_t src_pitch,
                   size_t row_bytes, size_t rows, cuframes_memory_t src_memory,
                   void* stream) override {
    DeviceScope scope;
    CUFRAMES_RETURN_IF_ERROR(scope.enter(device_));
    const cudaMemcpyKind kind =
        src_memory == CUFRAMES_MEMORY_HOST ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice;
    auto s = static_cast<cudaStream_t>(stream);
    if (dst_pitch == src_pitch) {
      // Same layout (NVDEC pitch into an NVDEC-pitched ring): one linear copy, padding between
      // rows included, ending at the last row's last byte so it never reads past the source.
      const size_t bytes = src_pitch * (rows - 1) + row_bytes;
      CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, kind, s), "copying a frame into the ring");
    } else {
      CUDA_TRY(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows, kind, s),
               "copying a frame into the ring");
    }
    return Ok();
  }

  Status finish_writes(void* stream) override {
    DeviceScope scope;
    CUFRAMES_RETURN_IF_ERROR(scope.enter(device_));
    CUDA_TRY(cudaEventRecord(event_, static_cast<cudaStream_t>(stream)), "cudaEventRecord");
    if (publish_sync() == PublishSync::kPoll) {
      for (;;) {
        const cudaError_t e = cudaEventQuery(event_);
        if (e == cudaSuccess) return Ok();
        if (e != cudaErrorNotReady) CUDA_TRY(e, "waiting for the frame's writes");
        const timespec ts{0, 20000};
        ::nanosleep(&ts, nullptr);
      }
    }
    CUDA_TRY(cudaEventSynchronize(event_), "waiting for the frame's writes");
    return Ok();
  }

 private:
  CudaAllocation() = default;

  Status create_vmm(size_t bytes, int device) {
    const Driver& d = driver();
    int vmm = 0, fd_ok = 0;
    CU_TRY(
        d.DeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device),
        "cuDeviceGetAttribute");
    CU_TRY(d.DeviceGetAttribute(
               &fd_ok, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED, device),
           "cuDeviceGetAttribute");
    if (!vmm || !fd_ok)
      return Err(CUFRAMES_ERR_DEVICE_LOST, "device %d lacks VMM fd export", device);
    CUmemAllocationProp prop = vmm_prop(device);
    size_t gran = 0;
    CU_TRY(d.MemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
           "cuMemGetAllocationGranularity");
    vmm_ = std::make_unique<VmmMapping>();
    vmm_->size = align_up(bytes, gran);
    CU_TRY(d.MemCreate(&vmm_->handle, vmm_->size, &prop, 0), "cuMemCreate");
    CUFRAMES_RETURN_IF_ERROR(vmm_->map(device, CU_MEM_ACCESS_FLAGS_PROT_READWRITE, gran));
    int fd = -1;
    CU_TRY(d.MemExportToShareableHandle(&fd, vmm_->handle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
                                        0),
           "cuMemExportToShareableHandle");
    fd_ = fd;
    return Ok();
  }

  Status create_legacy(size_t bytes) {
    CUDA_TRY(cudaMalloc(&legacy_ptr_, bytes), "cudaMalloc of the ring");
    CUDA_TRY(cudaIpcGetMemHandle(&ipc_, legacy_ptr_), "cudaIpcGetMemHandle");
    return Ok();
  }

  int device_ = 0;
  size_t bytes_ = 0;
  std::unique_ptr<VmmMapping> vmm_;
  int fd_ = -1;
  void* legacy_ptr_ = nullptr;
  cudaIpcMemHandle_t ipc_{};
  cudaEvent_t event_ = nullptr;
};
static_assert(sizeof(cudaIpcMemHandle_t) <= sizeof(Welcome::handle));

// --- subscriber side -----------------------------------------------------------------------------

class CudaImport final : public RingImport {
 public:
  ~CudaImport() override {
    DeviceScope scope;
    if (!scope.enter(device_).ok()) return;
    if (legacy_ptr_ != nullptr) cudaIpcCloseMemHandle(legacy_ptr_);
    vmm_.reset();
  }

  static Status Create(HandleType type, int fd, const uint8_t* handle, size_t bytes, int device,
                       std::unique_ptr<RingImport>* out) {
    DeviceScope scope;
    CUFRAMES_RETURN_IF_ERROR(scope.enter(device));
    std::unique_ptr<CudaImport> m(new CudaImport);
    m->device_ = device;
    m->bytes_ = bytes;
    if (type == HandleType::kCudaVmmFd) {
      if (fd < 0) return Err(CUFRAMES_ERR_SHM, "cuda ring: no fd in the handshake");
      uint64_t alloc = 0;
      std::memcpy(&alloc, handle, sizeof alloc);
      const Driver& d = driver();
      CUmemAllocationProp prop = vmm_prop(device);
      size_t gran = 0;
      CU_TRY(d.MemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
             "cuMemGetAllocationGranularity");
      if (alloc < bytes || alloc % gran != 0 || alloc > (bytes + (64ull << 20))) {
        return Err(CUFRAMES_ERR_SHM, "cuda ring: allocation of %llu bytes for a %zu-byte ring",
                   static_cast<unsigned long long>(alloc), bytes);
      }
      m->vmm_ = std::make_unique<VmmMapping>();
      m->vmm_->size = alloc;
      CU_TRY(d.MemImportFromShareableHandle(&m->vmm_->handle,
                                            reinterpret_cast<void*>(static_cast<intptr_t>(fd)),
                                            CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR),
             "importing the ring (cuMemImportFromShareableHandle)");
      CUFRAMES_RETURN_IF_ERROR(m->vmm_->map(device, CU_MEM_ACCESS_FLAGS_PROT_READ, gran));
      ::close(fd);  // the imported handle keeps the memory alive
    } else if (type == HandleType::kCudaIpc) {
      cudaIpcMemHandle_t h;
      std::memcpy(&h, handle, sizeof h);
      CUDA_TRY(cudaIpcOpenMemHandle(&m->legacy_ptr_, h, cudaIpcMemLazyEnablePeerAccess),
               "opening the ring (cudaIpcOpenMemHandle)");
    } else {
      return Err(CUFRAMES_ERR_SHM, "cuda ring: handle type %u", static_cast<unsigned>(type));
    }
    *out = std::move(m);
    return Ok();
  }

  uint8_t* base() const override {
    return vmm_ ? reinterpret_cast<uint8_t*>(vmm_->ptr) : static_cast<uint8_t*>(legacy_ptr_);
  }
  size_t size() const override { return bytes_; }
  int device() const override { return device_; }

  Status release_after(void* stream, void (*fn)(void*), void* arg) override {
    DeviceScope scope;
    CUFRAMES_RETURN_IF_ERROR(scope.enter(device_));
    auto s = static_cast<cudaStream_t>(stream);
    // Nothing queued on the stream: everything before this call has finished, release now
    // (and spare a host-function launch and the driver thread's wake-up).
    cudaError_t idle = cudaStreamQuery(s);
    if (idle == cudaSuccess) {
      fn(arg);
      return Ok();
    }
    if (idle != cudaErrorNotReady) return cuda_error(idle, "checking the consumer stream");
    CUDA_TRY(cudaLaunchHostFunc(s, fn, arg), "queueing the frame's release (cudaLaunchHostFunc)");
    return Ok();
  }

 private:
  CudaImport() = default;
  int device_ = 0;
  size_t bytes_ = 0;
  std::unique_ptr<VmmMapping> vmm_;
  void* legacy_ptr_ = nullptr;
};

class CudaBackend final : public MemoryBackend {
 public:
  cuframes_memory_t kind() const override { return CUFRAMES_MEMORY_CUDA; }
  // NVDEC-style copies want 256-byte aligned rows.
  uint32_t pitch_alignment() const override { return 256; }
  Status allocate(size_t bytes, int device, std::unique_ptr<RingAllocation>* out) override {
    return CudaAllocation::Create(bytes, device, out);
  }
  Status import(HandleType type, int fd, const uint8_t* handle, size_t bytes, int device,
                std::unique_ptr<RingImport>* out) override {
    return CudaImport::Create(type, fd, handle, bytes, device, out);
  }
};

}  // namespace

MemoryBackend* cuda_backend() {
  static CudaBackend backend;
  return &backend;
}

}  // namespace cuframes::detail
