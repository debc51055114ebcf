// The built-in testsrc: frames drawn on the CPU (testsrc.h) at the configured rate.
#include <cstdio>
#include <vector>

#include "source.h"
#include "testsrc.h"

namespace cfsvc {
namespace {

class TestSource final : public Source {
 public:
  TestSource(const CameraConfig& config, const std::atomic<bool>* stop, CpuAccount* cpu)
      : cfg_(config), stop_(stop), cpu_(cpu) {}

  std::string codec() const override { return "testsrc"; }
  std::string decoder() const override { return "testsrc"; }

  bool open(std::string*) override { return true; }

  Outcome run(SourceSink* sink, std::string*) override {
    const uint32_t w = cfg_.test_width, h = cfg_.test_height;
    const uint32_t pitch = (w + 63) / 64 * 64;
    std::vector<uint8_t> buf(size_t{pitch} * h * 3 / 2);
    cuframes_frame_info_t fi{};
    if (cuframes_geometry_compute(CUFRAMES_FORMAT_NV12, w, h, pitch, 1, &fi.geometry) !=
        CUFRAMES_OK) {
      return Outcome::kError;
    }
    fi.plane_y = buf.data();
    fi.plane_uv = buf.data() + fi.geometry.offset_uv;
    fi.memory = CUFRAMES_MEMORY_HOST;
    VideoFrame out;
    out.width = w;
    out.height = h;
    out.format = CUFRAMES_FORMAT_NV12;
    out.decoder = "testsrc";
    cuframes_source_init(&out.planes);
    out.planes.planes[0] = fi.plane_y;
    out.planes.planes[1] = fi.plane_uv;
    out.planes.pitches[0] = out.planes.pitches[1] = pitch;
    const int64_t period = static_cast<int64_t>(1e9 / cfg_.fps);
    int64_t next = mono_ns();
    for (;;) {
      lap(cpu_, CpuStage::kOther);
      if (!sleep_until(next, stop_)) return Outcome::kStopped;
      lap(cpu_, CpuStage::kPace);
      next += period;
      if (mono_ns() - next > 10 * period) next = mono_ns();  // fell far behind: do not burst
      draw_testsrc(fi, sink->next_seq());
      lap(cpu_, CpuStage::kDecode);  // drawing stands in for decoding
      const bool ok = sink->on_frame(out);
      lap(cpu_, CpuStage::kPublish);
      if (!ok) return Outcome::kError;
    }
  }

 private:
  CameraConfig cfg_;
  const std::atomic<bool>* stop_;
  CpuAccount* cpu_;
};

}  // namespace

std::unique_ptr<Source> make_test_source(const CameraConfig& config, const std::atomic<bool>* stop,
                                         CpuAccount* cpu) {
  return std::make_unique<TestSource>(config, stop, cpu);
}

}  // namespace cfsvc
