// cuframes_bench: measurement helpers (frame_bench.h).
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "cuframes/cuframes.hpp"
#include "frame_bench.h"

namespace fbench {

uint32_t g_spin_us = 200;

CpuTimes machine_cpu() {
  CpuTimes t;
  FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return t;
  unsigned long long v[8] = {};
  if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                  &v[4], &v[5], &v[6], &v[7]) == 8) {
    for (unsigned long long x : v) t.total += x;
    t.steal = v[7];
  }
  std::fclose(f);
  return t;
}

// The pacing of every paced loop here: sleep, then spin the last 300 us, so that each start is
// on time (the bench's `pub late` column checks it).
void wait_until_ns(int64_t t) {
  while (t - cuframes::now_ns() > 300000)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  while (cuframes::now_ns() < t) {
  }
}

// Children report samples as "tag=v1,v2,..." in their RESULT line.
std::string join(const std::vector<int64_t>& v) {
  std::ostringstream out;
  for (size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
  return out.str();
}
// The values after `tag` (e.g. " lat=") in line, up to the next space; none if tag is absent.
std::vector<int64_t> parse_list(const std::string& line, const char* tag) {
  std::vector<int64_t> out;
  size_t at = line.find(tag);
  if (at == std::string::npos) return out;
  at += std::strlen(tag);
  std::stringstream ss(line.substr(at, line.find(' ', at) - at));
  std::string v;
  while (std::getline(ss, v, ',')) out.push_back(std::atoll(v.c_str()));
  return out;
}

// Of sorted samples in ns (not empty): the per_mille quantile (500: p50, 990: p99) in us.
double quantile_us(const std::vector<int64_t>& sorted, size_t per_mille) {
  return sorted[std::min(sorted.size() - 1, sorted.size() * per_mille / 1000)] / 1e3;
}
// The share of samples above ns, %.
double share_above_pct(const std::vector<int64_t>& v, int64_t ns) {
  return 100.0 * std::count_if(v.begin(), v.end(), [ns](int64_t x) { return x > ns; }) / v.size();
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

#ifdef CUFRAMES_WITH_CUDA
void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
#endif

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string v;
  while (std::getline(ss, v, ',')) out.push_back(v);
  return out;
}

void pin_to_cpu(int cpu) {
  const int n = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (n < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % n, &set);
  sched_setaffinity(0, sizeof set, &set);
}

}  // namespace fbench
