#include "cpu_account.h"

#include <pthread.h>
#include <unistd.h>

namespace cfsvc {
namespace {

int64_t thread_cpu_ns(clockid_t clock) {
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) return 0;
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace

const char* to_string(CpuStage s) {
  switch (s) {
    case CpuStage::kOpen:
      return "open";
    case CpuStage::kRead:
      return "read";
    case CpuStage::kDecode:
      return "decode";
    case CpuStage::kPace:
      return "pace";
    case CpuStage::kConvert:
      return "convert";
    case CpuStage::kPublish:
      return "publish";
    case CpuStage::kOther:
      return "other";
    case CpuStage::kCount:
      break;
  }
  return "?";
}

void CpuAccount::start() {
  clockid_t clock;
  if (pthread_getcpuclockid(pthread_self(), &clock) == 0) clock_.store(clock);
  tid_.store(static_cast<pid_t>(::gettid()), std::memory_order_relaxed);
  last_ = thread_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
  running_.store(true, std::memory_order_release);
}

void CpuAccount::finish() {
  lap(CpuStage::kOther);
  running_.store(false, std::memory_order_release);
}

void CpuAccount::lap(CpuStage s) {
  const int64_t now = thread_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
  if (now > last_) {
    ns_[static_cast<size_t>(s)].fetch_add(static_cast<uint64_t>(now - last_),
                                          std::memory_order_relaxed);
  }
  last_ = now;
}

CpuSnapshot CpuAccount::snapshot() const {
  CpuSnapshot out;
  out.tid = tid_.load(std::memory_order_relaxed);
  out.frames = frames_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kCpuStages; ++i) out.stage_ns[i] = ns_[i].load(std::memory_order_relaxed);
  // The ingest thread's CPU clock, read from here (it names the thread by its id: once the
  // thread is gone the read fails, giving 0).
  if (running_.load(std::memory_order_acquire)) {
    out.thread_ns = static_cast<uint64_t>(thread_cpu_ns(clock_.load()));
  }
  return out;
}

std::vector<std::pair<std::string, uint64_t>> cpu_fields(const CpuSnapshot& s) {
  std::vector<std::pair<std::string, uint64_t>> out = {{"tid", static_cast<uint64_t>(s.tid)},
                                                       {"frames", s.frames},
                                                       {"thread_us", s.thread_ns / 1000}};
  for (size_t i = 0; i < kCpuStages; ++i) {
    out.emplace_back(std::string(to_string(static_cast<CpuStage>(i))) + "_us",
                     s.stage_ns[i] / 1000);
  }
  return out;
}

}  // namespace cfsvc
