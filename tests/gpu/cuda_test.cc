// CUDA backend tests (ctest label `gpu`, run on the GPU machine): the ring allocation and its
// transport, copy-in from host and device, errors, the async release on the consumer stream, the
// legacy IPC fallback and a subscriber in its own PID and IPC namespaces.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "client.h"
#include "common/test_util.h"
#include "runtime_dir.h"
#include "shm.h"
#include "socket.h"
#include "wire.h"

using cftest::field;
using cftest::Peer;
using cftest::RuntimeDir;

namespace {

#define ASSERT_CUDA(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

cuframes::Publisher::Options cuda_options(const RuntimeDir& dir, uint32_t w, uint32_t h,
                                          uint32_t slots = 4) {
  auto o = cftest::pub_options(dir, w, h, slots);
  o.memory = CUFRAMES_MEMORY_CUDA;
  o.cuda_device = 0;
  return o;
}

using cftest::status_of;

TEST(CudaRing, DevicePointersPitchAndTransport) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", cuda_options(dir, 1920, 1080));
  EXPECT_EQ(pub.geometry().pitch_y, 2048u);  // 1920 rounded up to a multiple of 256
  cuframes::Subscriber sub("cam", cftest::sub_options(dir));
  ASSERT_NE(cftest::publish_pattern(pub), 0u);
  cuframes::Frame f = sub.next(2000);
  cuframes_frame_info_t fi = f.info();
  EXPECT_EQ(fi.memory, CUFRAMES_MEMORY_CUDA);
  EXPECT_EQ(fi.device, 0);
  cudaPointerAttributes attr{};
  ASSERT_CUDA(cudaPointerGetAttributes(&attr, fi.data));
  EXPECT_EQ(attr.type, cudaMemoryTypeDevice);
  std::string why;
  EXPECT_TRUE(cftest::verify_frame(fi, fi.seq, &why)) << why;
  cuframes_ring_status_t rs = sub.ring_status();
  EXPECT_STREQ(rs.transport, "cuda-vmm-fd");
  EXPECT_EQ(rs.device, 0);
}

TEST(CudaRing, CopyInFromHostAndDeviceWithPitch) {
  RuntimeDir dir;
  const uint32_t w = 1366, h = 768;
  cuframes::Publisher pub("cam", cuda_options(dir, w, h));
  cuframes::Subscriber sub("cam", cftest::sub_options(dir, CUFRAMES_MODE_STRICT_ORDER));
  EXPECT_EQ(pub.geometry().pitch_y, 1536u);
  // Host source with its own pitch.
  const size_t hp = 1400;
  std::vector<uint8_t> host(hp * (h + h / 2));
  for (size_t r = 0; r < h + h / 2; ++r)
    for (size_t c = 0; c < hp; ++c) host[r * hp + c] = uint8_t(r * 7 + c);
  cuframes_source_t src;
  cuframes_source_init(&src);
  src.planes[0] = host.data();
  src.planes[1] = host.data() + hp * h;
  src.pitches[0] = src.pitches[1] = hp;
  src.memory = CUFRAMES_MEMORY_HOST;
  EXPECT_EQ(pub.publish(src, 5), 1u);
  // Device source with another pitch, copied on a stream of ours.
  const size_t dp = 2048;
  uint8_t* dev = nullptr;
  ASSERT_CUDA(cudaMalloc(&dev, dp * (h + h / 2)));
  ASSERT_CUDA(cudaMemcpy2D(dev, dp, host.data(), hp, w, h + h / 2, cudaMemcpyHostToDevice));
  cudaStream_t stream;
  ASSERT_CUDA(cudaStreamCreate(&stream));
  src.planes[0] = dev;
  src.planes[1] = dev + dp * h;
  src.pitches[0] = src.pitches[1] = dp;
  src.memory = CUFRAMES_MEMORY_CUDA;
  src.cuda_stream = stream;
  EXPECT_EQ(pub.publish(src, 6), 2u);
  for (uint64_t seq = 1; seq <= 2; ++seq) {
    cuframes::Frame f = sub.next(2000);
    cuframes_frame_info_t fi = f.info();
    ASSERT_EQ(fi.seq, seq);
    std::vector<uint8_t> back(size_t{w} * (h + h / 2));
    ASSERT_CUDA(cudaMemcpy2D(back.data(), w, fi.plane_y, fi.geometry.pitch_y, w, h,
                             cudaMemcpyDeviceToHost));
    ASSERT_CUDA(cudaMemcpy2D(back.data() + size_t{w} * h, w, fi.plane_uv, fi.geometry.pitch_uv, w,
                             h / 2, cudaMemcpyDeviceToHost));
    size_t bad = 0;
    for (size_t r = 0; r < h + h / 2; ++r)
      for (size_t c = 0; c < w; ++c) bad += back[r * w + c] != uint8_t(r * 7 + c);
    EXPECT_EQ(bad, 0u) << "frame " << seq;
  }
  cudaStreamDestroy(stream);
  cudaFree(dev);
}

TEST(CudaRing, BadDeviceIsInvalidArgument) {
  RuntimeDir dir;
  auto o = cuda_options(dir, 64, 32);
  o.cuda_device = 99;
  EXPECT_EQ(status_of([&] { cuframes::Publisher p("cam", o); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(cuframes_last_error()).find("cuda_device 99"), std::string::npos);
  cuframes::Publisher pub("cam", cuda_options(dir, 64, 32));
  auto so = cftest::sub_options(dir);
  so.cuda_device = 99;
  EXPECT_EQ(status_of([&] { cuframes::Subscriber s("cam", so); }), CUFRAMES_ERR_INVALID_ARGUMENT);
  // The publisher freed that subscriber's entry and serves others.
  EXPECT_TRUE(cftest::wait_until([&] { return pub.stats().subscribers == 0; }, 1000));
  cuframes::Subscriber ok("cam", cftest::sub_options(dir));
}

// A CUDA failure on the cross-process path is DEVICE_LOST: a "publisher" whose VMM fd is not a
// CUDA allocation at all.
TEST(CudaRing, BadImportIsDeviceLost) {
  namespace cd = cuframes::detail;
  RuntimeDir dir;
  // A real publisher's handshake, with the ring fd swapped for a plain memfd.
  cuframes::Publisher real("real", cuda_options(dir, 64, 32));
  cd::Connection c;
  cd::Hello hello = cd::make_hello(cd::Role::kSubscriber);
  std::strcpy(hello.name, "probe");
  ASSERT_TRUE(cd::connect_to_publisher(dir.path(), "real", hello, 1000, &c).ok());
  ASSERT_EQ(c.fds.size(), 4u);  // header, table, its entry, frames
  cd::SharedRegion fake_ring;
  ASSERT_TRUE(cd::create_shared_region("not-cuda", c.welcome.ring_bytes, &fake_ring).ok());
  cd::UniqueFd listen;
  ASSERT_TRUE(cd::listen_unix(cd::socket_path(dir.path(), "fake"), &listen).ok());
  std::thread server([&] {
    short rev = 0;
    ASSERT_TRUE(cd::poll_in(listen.get(), 5000, &rev).ok());
    cd::UniqueFd conn(accept4(listen.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char buf[512];
    ASSERT_GT(recv(conn.get(), buf, sizeof buf, 0), 0);
    int fds[4] = {c.fds[0].get(), c.fds[1].get(), c.fds[2].get(), fake_ring.fd.get()};
    ASSERT_TRUE(cd::send_message(conn.get(), &c.welcome, sizeof c.welcome, fds, 4).ok());
    ASSERT_TRUE(cd::poll_in(conn.get(), 5000, &rev).ok());  // until the subscriber gives up
  });
  EXPECT_EQ(status_of([&] { cuframes::Subscriber s("fake", cftest::sub_options(dir)); }),
            CUFRAMES_ERR_DEVICE_LOST);
  EXPECT_NE(std::string(cuframes_last_error()).find("import"), std::string::npos)
      << cuframes_last_error();
  server.join();
}

// The frame's release waits for the GPU work queued before it on the consumer stream: a slow
// kernel reads the frame after spinning, the frame is released right after the launch, and the
// publisher (STRICT_WAIT, 2 slots, flat out, in another process) must not overwrite it meanwhile.
TEST(CudaRing, AsyncReleaseWaitsForConsumerStream) {
  RuntimeDir dir;
  Peer publisher({"publish", "--dir", dir.path(), "--key", "cam", "--width", "640", "--height",
                  "480", "--slots", "2", "--policy", "wait", "--count", "-1"},
                 {}, {"CUFRAMES_TEST_MEMORY=cuda"});
  ASSERT_EQ(publisher.expect("READY").rfind("READY", 0), 0u);
  cudaStream_t stream;
  ASSERT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto so = cftest::sub_options(dir, CUFRAMES_MODE_STRICT_ORDER);
  so.consumer_stream = stream;
  cuframes::Subscriber sub("cam", so);
  constexpr int kIterations = 200;
  int* results = nullptr;
  ASSERT_CUDA(cudaMallocManaged(&results, kIterations * sizeof(int)));
  std::memset(results, 0, kIterations * sizeof(int));
  for (int i = 0; i < kIterations; ++i) {
    cuframes::Frame f = sub.next(5000);
    cuframes_frame_info_t fi = f.info();
    cftest::cuda_slow_verify_async(fi, fi.seq, 2000, results, i, stream);  // reads after 2 ms
    f.release();  // at once: the hold must last until the kernel is done
  }
  ASSERT_CUDA(cudaStreamSynchronize(stream));
  int intact = 0, damaged = 0, missing = 0;
  for (int i = 0; i < kIterations; ++i) {
    intact += results[i] == 1;
    damaged += results[i] == 2;
    missing += results[i] == 0;
  }
  std::printf("async release: %d frames read 2 ms after release(): %d intact, %d damaged\n",
              kIterations, intact, damaged);
  EXPECT_EQ(intact, kIterations);
  EXPECT_EQ(damaged, 0);
  EXPECT_EQ(missing, 0);
  cudaFree(results);
  cudaStreamDestroy(stream);
}

TEST(CudaRing, LegacyIpcFallbackWorks) {
  RuntimeDir dir;
  Peer publisher({"publish", "--dir", dir.path(), "--key", "cam", "--width", "320", "--height",
                  "240", "--slots", "4", "--count", "-1", "--fps", "500"},
                 {}, {"CUFRAMES_TEST_MEMORY=cuda", "CUFRAMES_CUDA_LEGACY_IPC=1"});
  ASSERT_EQ(publisher.expect("READY").rfind("READY", 0), 0u);
  cuframes::Subscriber sub("cam", cftest::sub_options(dir));
  EXPECT_STREQ(sub.ring_status().transport, "cuda-ipc");
  for (int i = 0; i < 20; ++i) {
    cuframes::Frame f = sub.next(2000);
    std::string why;
    EXPECT_TRUE(cftest::verify_frame(f.info(), f.info().seq, &why)) << why;
  }
}

// A subscriber in its own PID, IPC and mount namespaces with its own /proc (what a second
// container gets), sharing only the runtime directory, receives correct frames.
TEST(CudaRing, SubscriberInOwnPidAndIpcNamespaces) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", cuda_options(dir, 1920, 1080, 6));
  Peer sub({"subscribe", "--dir", dir.path(), "--key", "cam", "--mode", "strict", "--count", "100",
            "--name", "isolated"},
           {"unshare", "--pid", "--ipc", "--mount", "--mount-proc", "--fork", "--kill-child"},
           {"CUFRAMES_TEST_MEMORY=cuda"});
  std::string ready = sub.line(20000);  // READY, or the reason it could not subscribe
  ASSERT_EQ(ready.rfind("READY", 0), 0u) << "isolated subscriber said: '" << ready << "'";
  ASSERT_TRUE(cftest::wait_until([&] { return pub.stats().subscribers == 1; }, 5000));
  auto subs = pub.subscribers();
  ASSERT_EQ(subs.size(), 1u);
  std::printf("isolated subscriber reports pid %d (its own namespace); ours is %d\n", subs[0].pid,
              getpid());
  for (int i = 0; i < 400; ++i) {
    cftest::publish_pattern(pub);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string r = sub.expect("RESULT", 30000);
  EXPECT_EQ(field(r, "frames"), 100) << r;
  EXPECT_EQ(field(r, "bad"), 0) << r;
  EXPECT_EQ(field(r, "disorder"), 0) << r;
}

// Under `unshare --pid --ipc --fork` alone the subscriber still sees the host's /proc, and the
// CUDA driver refuses to start in that case (cudaErrorOperatingSystem: a bare cudaFree(0) fails
// the same way; any container mounts its own /proc). The subscriber must say so plainly.
TEST(CudaRing, SubscriberUnderAForeignProcSaysWhy) {
  RuntimeDir dir;
  cuframes::Publisher pub("cam", cuda_options(dir, 320, 240, 4));
  Peer sub({"subscribe", "--dir", dir.path(), "--key", "cam", "--count", "1", "--name", "nsproc"},
           {"unshare", "--pid", "--ipc", "--fork", "--kill-child"}, {"CUFRAMES_TEST_MEMORY=cuda"});
  std::string line = sub.line(20000);
  std::printf("subscriber under a foreign /proc said: %s\n", line.c_str());
  if (line.rfind("READY", 0) == 0) {
    GTEST_SKIP() << "this driver starts under a foreign /proc: nothing to explain";
  }
  EXPECT_EQ(line.rfind("ERROR DEVICE_LOST", 0), 0u) << line;
  EXPECT_NE(line.find("/proc belongs to another PID namespace"), std::string::npos) << line;
  EXPECT_NE(line.find("--mount-proc"), std::string::npos) << line;
  // Its connection is gone with it: no subscriber left behind.
  EXPECT_TRUE(cftest::wait_until([&] { return pub.stats().subscribers == 0; }, 5000));
}

}  // namespace
