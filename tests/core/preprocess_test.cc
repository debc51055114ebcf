// cuframes_preprocess through the C ABI (and its C++ wrapper) on host rings: defaults, argument
// errors, and known answers worked out from the definitions (ITU-R BT.601/709/2020, H.273 ranges,
// letterbox geometry, bilinear and area sampling). tests/python/test_preprocess.py compares
// whole batches with an independent NumPy reference; tests/python/gpu the kernel with this twin.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "preprocess.h"

using cftest::RuntimeDir;
using cftest::sub_options;

namespace {

// A host ring of one frame size and format, and a subscriber on it.
struct Ring {
  Ring(const RuntimeDir& dir, const char* key, cuframes_format_t format, uint32_t w, uint32_t h)
      : w(w), h(h), format(format) {
    cuframes::Publisher::Options o = cftest::host_pub_options(dir, w, h, 4);
    o.format = format;
    pub = cuframes::Publisher(key, o);
    sub = cuframes::Subscriber(key, sub_options(dir));
  }
  // Publishes planes given as rows of samples (y: h rows of w, uv: h/2 rows of w, 16-bit for
  // P010) with a colour description, and returns the frame.
  template <class T>
  cuframes::Frame publish(const std::vector<T>& y, const std::vector<T>& uv,
                          cuframes_color_matrix_t m = CUFRAMES_COLOR_MATRIX_UNKNOWN,
                          cuframes_color_range_t r = CUFRAMES_COLOR_RANGE_UNKNOWN) {
    cuframes_source_t s;
    cuframes_source_init(&s);
    s.planes[0] = y.data();
    s.pitches[0] = w * sizeof(T);
    if (!uv.empty()) {
      s.planes[1] = uv.data();
      s.pitches[1] = w * sizeof(T);
    }
    s.color_matrix = m;
    s.color_range = r;
    EXPECT_GT(pub.publish(s), 0u);
    return sub.next(1000);
  }
  uint32_t w, h;
  cuframes_format_t format;
  cuframes::Publisher pub;
  cuframes::Subscriber sub;
};

// An 8x4 NV12 frame: left half black (Y 16), right half white (Y 235), no colour (U = V = 128).
cuframes::Frame black_white(Ring& ring) {
  std::vector<uint8_t> y(8 * 4), uv(8 * 2, 128);
  for (size_t i = 0; i < y.size(); ++i) y[i] = (i % 8) < 4 ? 16 : 235;
  return ring.publish(y, uv);
}

std::string last_error() {
  return cuframes_last_error();
}

TEST(Preprocess, OptionDefaults) {
  cuframes_preprocess_options_t o;
  std::memset(&o, 0xff, sizeof o);
  cuframes_preprocess_options_init(&o);
  EXPECT_EQ(o.width, 0u);
  EXPECT_EQ(o.height, 0u);
  EXPECT_EQ(o.dtype, CUFRAMES_DTYPE_FLOAT16);
  EXPECT_EQ(o.layout, CUFRAMES_LAYOUT_NCHW);
  EXPECT_EQ(o.channels, CUFRAMES_CHANNELS_RGB);
  EXPECT_EQ(o.resize, CUFRAMES_RESIZE_LETTERBOX);
  EXPECT_EQ(o.pad_value, 114.0f);
  EXPECT_EQ(o.scale, 1.0f / 255.0f);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(o.mean[c], 0.0f);
    EXPECT_EQ(o.std[c], 1.0f);
  }
  EXPECT_EQ(o.cuda_stream, nullptr);
  EXPECT_STREQ(cuframes_dtype_name(CUFRAMES_DTYPE_FLOAT16), "float16");
  EXPECT_STREQ(cuframes_layout_name(CUFRAMES_LAYOUT_NHWC), "nhwc");
  EXPECT_STREQ(cuframes_channels_name(CUFRAMES_CHANNELS_BGR), "bgr");
  EXPECT_STREQ(cuframes_resize_name(CUFRAMES_RESIZE_STRETCH), "stretch");
  EXPECT_STREQ(cuframes_dtype_name(static_cast<cuframes_dtype_t>(0)), "invalid");
  // Width 0 is refused, so its size is 0; a valid one is N x 3 x H x W x sizeof(dtype).
  EXPECT_EQ(cuframes_preprocess_bytes(&o, 1), 0u);
  o.width = 640;
  o.height = 360;
  EXPECT_EQ(cuframes_preprocess_bytes(&o, 8), size_t{8} * 3 * 360 * 640 * 2);
  o.dtype = CUFRAMES_DTYPE_FLOAT32;
  EXPECT_EQ(cuframes_preprocess_bytes(&o, 2), size_t{2} * 3 * 360 * 640 * 4);
  EXPECT_EQ(cuframes_preprocess_bytes(nullptr, 2), 0u);
}

TEST(Preprocess, LetterboxGreyLevelsUint8) {
  RuntimeDir dir;
  Ring ring(dir, "bw", CUFRAMES_FORMAT_NV12, 8, 4);
  cuframes::Frame f = black_white(ring);
  cuframes::PreprocessOptions o(8, 8);
  o.dtype = CUFRAMES_DTYPE_UINT8;
  std::vector<uint8_t> out(3 * 8 * 8, 0xAB);
  std::vector<cuframes_transform_t> t = cuframes::preprocess({&f}, o, out.data(), out.size());
  // Scale min(8/8, 8/4) = 1: the 8x4 content, centred: rows 2..5; the rest is pad 114. Limited
  // range: Y 16 is level 0, Y 235 level 255 in every channel (U = V = 128: no colour).
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].scale_x, 1.0f);
  EXPECT_EQ(t[0].scale_y, 1.0f);
  EXPECT_EQ(t[0].pad_x, 0.0f);
  EXPECT_EQ(t[0].pad_y, 2.0f);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        const int want = y < 2 || y >= 6 ? 114 : (x < 4 ? 0 : 255);
        EXPECT_EQ(out[(c * 8 + y) * 8 + x], want) << "c " << c << " y " << y << " x " << x;
      }
    }
  }
}

TEST(Preprocess, FloatNormalisationBgrNhwc) {
  RuntimeDir dir;
  Ring ring(dir, "bw", CUFRAMES_FORMAT_NV12, 8, 4);
  cuframes::Frame f = black_white(ring);
  cuframes::PreprocessOptions o(8, 8);
  o.dtype = CUFRAMES_DTYPE_FLOAT32;
  o.layout = CUFRAMES_LAYOUT_NHWC;
  o.channels = CUFRAMES_CHANNELS_BGR;
  o.pad_value = 0;
  const float mean[3] = {0.1f, 0.2f, 0.3f}, std[3] = {0.5f, 0.25f, 2.0f};
  for (int c = 0; c < 3; ++c) {
    o.mean[c] = mean[c];
    o.std[c] = std[c];
  }
  std::vector<float> out(8 * 8 * 3);
  cuframes::preprocess({&f}, o, out.data(), out.size() * sizeof(float));
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      const float level = y < 2 || y >= 6 ? 0.0f : (x < 4 ? 0.0f : 255.0f);
      for (int k = 0; k < 3; ++k) {  // output channel k (B, G, R): mean[k], std[k]
        const float want = (level / 255.0f - mean[k]) / std[k];
        EXPECT_NEAR(out[(y * 8 + x) * 3 + k], want, 1e-5) << "y " << y << " x " << x;
      }
    }
  }
}

// One pixel's R, G, B levels (uint8) for a solid frame.
std::vector<int> solid_rgb(Ring& ring, cuframes::Frame& f) {
  cuframes::PreprocessOptions o(ring.w, ring.h);
  o.dtype = CUFRAMES_DTYPE_UINT8;
  o.layout = CUFRAMES_LAYOUT_NHWC;
  std::vector<uint8_t> out(size_t{3} * ring.w * ring.h);
  cuframes::preprocess({&f}, o, out.data(), out.size());
  return {out[0], out[1], out[2]};
}

TEST(Preprocess, ColourMatrices) {
  RuntimeDir dir;
  Ring ring(dir, "c", CUFRAMES_FORMAT_NV12, 4, 2);
  std::vector<uint8_t> y(8, 128), uv(4);
  for (size_t i = 0; i < uv.size(); i += 2) {
    uv[i] = 128;      // U: Pb 0
    uv[i + 1] = 255;  // V: Pr 127/255 (full range)
  }
  // Full range, Pr = 127: R = Y + 2(1 - Kr) Pr, G = Y - 2 Kr (1 - Kr) / Kg Pr, B = Y.
  //   BT.709  (Kr 0.2126, Kb 0.0722): R 128 + 1.5748 * 127 -> 255, G 128 - 0.46812 * 127 = 68.55
  //   BT.601  (Kr 0.299,  Kb 0.114):  G 128 - 0.71414 * 127 = 37.30
  //   BT.2020 (Kr 0.2627, Kb 0.0593): G 128 - 0.57135 * 127 = 55.44
  cuframes::Frame f = ring.publish(y, uv, CUFRAMES_COLOR_MATRIX_BT709, CUFRAMES_COLOR_RANGE_FULL);
  EXPECT_EQ(solid_rgb(ring, f), (std::vector<int>{255, 69, 128}));
  f = ring.publish(y, uv, CUFRAMES_COLOR_MATRIX_BT601, CUFRAMES_COLOR_RANGE_FULL);
  EXPECT_EQ(solid_rgb(ring, f), (std::vector<int>{255, 37, 128}));
  f = ring.publish(y, uv, CUFRAMES_COLOR_MATRIX_BT2020, CUFRAMES_COLOR_RANGE_FULL);
  EXPECT_EQ(solid_rgb(ring, f), (std::vector<int>{255, 55, 128}));
  // Unknown below 720 rows: BT.601, limited: Y' = (128 - 16) * 255 / 219 = 130.41,
  // Pr = (255 - 128) * 255 / 224 = 144.58; G = 130.41 - 0.71414 * 144.58 = 27.16.
  f = ring.publish(y, uv);
  EXPECT_EQ(f.info().color_matrix, CUFRAMES_COLOR_MATRIX_UNKNOWN);
  EXPECT_EQ(solid_rgb(ring, f), (std::vector<int>{255, 27, 130}));
}

TEST(Preprocess, UnknownMatrixIsBt709From720Rows) {
  RuntimeDir dir;
  // 720 rows, limited range, Y 128, Pr as above: G = 130.41 - 0.46812 * 144.58 = 62.73 (BT.709)
  Ring ring(dir, "hd", CUFRAMES_FORMAT_NV12, 16, 720);
  std::vector<uint8_t> y(16 * 720, 128), uv(16 * 360);
  for (size_t i = 0; i < uv.size(); i += 2) {
    uv[i] = 128;
    uv[i + 1] = 255;
  }
  cuframes::Frame f = ring.publish(y, uv);
  EXPECT_EQ(solid_rgb(ring, f), (std::vector<int>{255, 63, 130}));
}

TEST(Preprocess, P010UsesItsTenBits) {
  RuntimeDir dir;
  Ring ring(dir, "p", CUFRAMES_FORMAT_P010, 4, 2);
  // Limited 10-bit: Y 64 is black, 940 white; chroma 512 neutral. The low 6 bits of every sample
  // are set: they are not part of the value and must not show.
  std::vector<uint16_t> y = {64, 940, 64, 940, 64, 940, 64, 940}, uv(4, 512);
  for (auto& s : y) s = static_cast<uint16_t>((s << 6) | 0x3f);
  for (auto& s : uv) s = static_cast<uint16_t>((s << 6) | 0x3f);
  cuframes::Frame f = ring.publish(y, uv);
  cuframes::PreprocessOptions o(4, 2);
  o.dtype = CUFRAMES_DTYPE_UINT8;
  std::vector<uint8_t> out(3 * 4 * 2);
  cuframes::preprocess({&f}, o, out.data(), out.size());
  for (int c = 0; c < 3; ++c) {
    for (int x = 0; x < 4; ++x) {
      EXPECT_EQ(out[(c * 2 + 0) * 4 + x], x % 2 ? 255 : 0) << "c " << c << " x " << x;
    }
  }
}

TEST(Preprocess, Gray8IsThreeEqualChannelsAndAreaAveraged) {
  RuntimeDir dir;
  Ring ring(dir, "g", CUFRAMES_FORMAT_GRAY8, 8, 2);
  // Columns 0, 10, ..., 70. Stretched to 2x1: along x the output has fewer than half the
  // pixels, so each output pixel is the area average of the 4 columns it covers (15 and 55);
  // along y it has half (1 of 2 rows): bilinear at the centre, between the two equal rows.
  std::vector<uint8_t> y(16), none;
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<uint8_t>(10 * (i % 8));
  cuframes::Frame f = ring.publish(y, none);
  cuframes::PreprocessOptions o(2, 1);
  o.dtype = CUFRAMES_DTYPE_FLOAT32;
  o.scale = 1.0f;  // the level itself
  o.resize = CUFRAMES_RESIZE_STRETCH;
  std::vector<float> out(3 * 2);
  std::vector<cuframes_transform_t> t =
      cuframes::preprocess({&f}, o, out.data(), out.size() * sizeof(float));
  EXPECT_EQ(out, (std::vector<float>{15, 55, 15, 55, 15, 55}));  // GRAY8 unknown range: full
  EXPECT_EQ(t[0].scale_x, 0.25f);
  EXPECT_EQ(t[0].scale_y, 0.5f);
  EXPECT_EQ(t[0].pad_x, 0.0f);
  EXPECT_EQ(t[0].pad_y, 0.0f);
  // Upscaling is bilinear: 8 -> 16 columns; output column 3 has its centre at frame x 1.25.
  o.width = 16;
  o.height = 2;
  out.assign(3 * 16 * 2, 0);
  cuframes::preprocess({&f}, o, out.data(), out.size() * sizeof(float));
  EXPECT_FLOAT_EQ(out[3], 12.5f);
  EXPECT_FLOAT_EQ(out[0], 0.0f);    // centre at -0.25: the edge repeats
  EXPECT_FLOAT_EQ(out[15], 70.0f);  // centre at 7.25
}

TEST(Preprocess, BatchOfRingsWithDifferentSizes) {
  RuntimeDir dir;
  Ring a(dir, "a", CUFRAMES_FORMAT_NV12, 8, 4);
  Ring b(dir, "b", CUFRAMES_FORMAT_GRAY8, 4, 8);
  cuframes::Frame fa = black_white(a);
  std::vector<uint8_t> gy(32, 200), none;
  cuframes::Frame fb = b.publish(gy, none);
  cuframes::PreprocessOptions o(8, 8);
  o.dtype = CUFRAMES_DTYPE_UINT8;
  o.pad_value = 7;
  std::vector<uint8_t> out(2 * 3 * 8 * 8);
  std::vector<cuframes_transform_t> t = cuframes::preprocess({&fa, &fb}, o, out.data(), out.size());
  EXPECT_EQ(t[0].pad_y, 2.0f);
  EXPECT_EQ(t[1].pad_x, 2.0f);  // 4x8 scaled by 1 into 8x8: columns 2..5
  EXPECT_EQ(t[1].pad_y, 0.0f);
  const uint8_t* img1 = out.data() + 3 * 8 * 8;
  for (int c = 0; c < 3; ++c) {
    for (int x = 0; x < 8; ++x) {
      EXPECT_EQ(img1[(c * 8 + 4) * 8 + x], x < 2 || x >= 6 ? 7 : 200) << "x " << x;
    }
  }
  EXPECT_EQ(out[(0 * 8 + 3) * 8 + 6], 255);  // image 0 is still the black/white frame
}

TEST(Preprocess, ArgumentErrorsNameTheArgument) {
  RuntimeDir dir;
  Ring ring(dir, "e", CUFRAMES_FORMAT_NV12, 8, 4);
  cuframes::Frame f = black_white(ring);
  cuframes_frame_t* frames[2] = {f.get(), nullptr};
  cuframes_preprocess_options_t o;
  cuframes_preprocess_options_init(&o);
  o.width = o.height = 8;
  std::vector<uint8_t> out(2 * 3 * 8 * 8 * 4);
  const auto run = [&](size_t count, const cuframes_preprocess_options_t* opt, size_t bytes) {
    return cuframes_preprocess(frames, count, opt, out.data(), bytes, nullptr);
  };
  EXPECT_EQ(run(1, &o, out.size()), CUFRAMES_OK);
  EXPECT_EQ(run(0, &o, out.size()), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("empty"), std::string::npos) << last_error();
  EXPECT_EQ(run(2, &o, out.size()), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("frames[1] is NULL"), std::string::npos) << last_error();
  EXPECT_EQ(run(1, nullptr, out.size()), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("options is NULL"), std::string::npos) << last_error();
  EXPECT_EQ(cuframes_preprocess(frames, 1, &o, nullptr, out.size(), nullptr),
            CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("out is NULL"), std::string::npos) << last_error();
  EXPECT_EQ(run(1, &o, 3 * 8 * 8 * 2 - 1), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("out_bytes 383 is below the 384 bytes"), std::string::npos)
      << last_error();

  struct Bad {
    void (*edit)(cuframes_preprocess_options_t*);
    const char* says;
  };
  const Bad bad[] = {
      {[](cuframes_preprocess_options_t* p) { p->width = 0; }, "outside 1..16384"},
      {[](cuframes_preprocess_options_t* p) { p->height = 16385; }, "outside 1..16384"},
      {[](cuframes_preprocess_options_t* p) { p->dtype = static_cast<cuframes_dtype_t>(9); },
       "options.dtype 9 is not one of 1 (uint8), 2 (float16), 3 (float32)"},
      {[](cuframes_preprocess_options_t* p) { p->layout = static_cast<cuframes_layout_t>(0); },
       "options.layout 0 is not one of 1 (nchw), 2 (nhwc)"},
      {[](cuframes_preprocess_options_t* p) { p->channels = static_cast<cuframes_channels_t>(3); },
       "options.channels 3"},
      {[](cuframes_preprocess_options_t* p) { p->resize = static_cast<cuframes_resize_t>(7); },
       "options.resize 7"},
      {[](cuframes_preprocess_options_t* p) { p->pad_value = 256; }, "pad_value 256"},
      {[](cuframes_preprocess_options_t* p) { p->pad_value = NAN; }, "pad_value"},
      {[](cuframes_preprocess_options_t* p) { p->scale = INFINITY; }, "options.scale"},
      {[](cuframes_preprocess_options_t* p) { p->mean[2] = NAN; }, "options.mean[2]"},
      {[](cuframes_preprocess_options_t* p) { p->std[1] = 0; }, "options.std[1]"},
      {[](cuframes_preprocess_options_t* p) {
         p->dtype = CUFRAMES_DTYPE_UINT8;
         p->mean[0] = 0.5f;
       },
       "apply to float dtypes"},
      {[](cuframes_preprocess_options_t* p) {
         p->dtype = CUFRAMES_DTYPE_UINT8;
         p->scale = 1;
       },
       "apply to float dtypes"},
  };
  for (const Bad& b : bad) {
    cuframes_preprocess_options_t p = o;
    b.edit(&p);
    EXPECT_EQ(run(1, &p, out.size()), CUFRAMES_ERR_INVALID_ARGUMENT) << b.says;
    EXPECT_NE(last_error().find(b.says), std::string::npos) << last_error();
    EXPECT_EQ(cuframes_preprocess_bytes(&p, 1), 0u) << b.says;
  }
  // The C++ wrapper throws the same.
  EXPECT_EQ(cftest::status_of([&] {
              cuframes::PreprocessOptions p(0, 8);
              cuframes::preprocess({&f}, p, out.data(), out.size());
            }),
            CUFRAMES_ERR_INVALID_ARGUMENT);
}

// Frames that no host ring can hand out, made by hand for the internal entry point.
TEST(Preprocess, FramesOfDifferentDevicesAreRefused) {
  std::vector<uint8_t> mem(64 * 64 * 2);
  cuframes_frame_info_t a{};
  ASSERT_EQ(cuframes_geometry_compute(CUFRAMES_FORMAT_NV12, 64, 64, 0, 64, &a.geometry),
            CUFRAMES_OK);
  a.data = a.plane_y = mem.data();
  a.plane_uv = mem.data() + a.geometry.offset_uv;
  a.memory = CUFRAMES_MEMORY_HOST;
  a.device = -1;
  cuframes_frame_info_t b = a;
  b.memory = CUFRAMES_MEMORY_CUDA;
  b.device = 1;
  cuframes::detail::PreprocessInput in[2] = {{&a, nullptr}, {&b, nullptr}};
  cuframes_preprocess_options_t o = cuframes::detail::preprocess_defaults();
  o.width = o.height = 16;
  std::vector<uint16_t> out(2 * 3 * 16 * 16);
  cuframes::detail::Status st =
      cuframes::detail::preprocess(in, 2, o, out.data(), out.size() * 2, nullptr);
  EXPECT_EQ(st.code(), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(st.message(),
            "frames[1] is on cuda device 1, frames[0] on host memory: a batch is made on one "
            "device");
  // A colour description outside the enums (a hand-made info) is refused too.
  cuframes_frame_info_t c = a;
  c.color_range = static_cast<cuframes_color_range_t>(5);
  in[1] = {&c, nullptr};
  st = cuframes::detail::preprocess(in, 2, o, out.data(), out.size() * 2, nullptr);
  EXPECT_EQ(st.code(), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_NE(st.message().find("frames[1]: unknown color_range 5"), std::string::npos)
      << st.message();
  // So is one whose planes do not fit its format (an NV12 frame without its UV plane).
  cuframes_frame_info_t d = a;
  d.plane_uv = nullptr;
  in[1] = {&d, nullptr};
  st = cuframes::detail::preprocess(in, 2, o, out.data(), out.size() * 2, nullptr);
  EXPECT_EQ(st.code(), CUFRAMES_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(st.message(), "frames[1]: not a frame cuframes can read (NV12 64x64, pitch 64)");
#ifndef CUFRAMES_WITH_CUDA
  // Without CUDA in the build, CUDA frames are a clear error (never a launch).
  in[0] = {&b, nullptr};
  in[1] = {&b, nullptr};
  st = cuframes::detail::preprocess(in, 2, o, out.data(), out.size() * 2, nullptr);
  EXPECT_EQ(st.code(), CUFRAMES_ERR_DEVICE_LOST);
  EXPECT_NE(st.message().find("built without CUDA"), std::string::npos) << st.message();
#endif
}

TEST(Preprocess, HalfConversionRoundsToNearestEven) {
  using cuframes::detail::pp::float_to_half_bits;
  EXPECT_EQ(float_to_half_bits(0.0f), 0x0000);
  EXPECT_EQ(float_to_half_bits(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half_bits(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7bff);               // the largest half
  EXPECT_EQ(float_to_half_bits(65519.99f), 0x7bff);              // below the tie: stays finite
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7c00);               // the tie rounds to even: inf
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -24)), 0x0001);  // the smallest subnormal
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and it: 0
  EXPECT_EQ(float_to_half_bits(std::ldexp(3.0f, -26)), 0x0001);  // above the tie
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie: even
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie: even (up)
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -14) * (1 - std::ldexp(1.0f, -12))), 0x0400);
  EXPECT_EQ(float_to_half_bits(INFINITY), 0x7c00);
  EXPECT_EQ(float_to_half_bits(NAN) & 0x7c00, 0x7c00);
  EXPECT_NE(float_to_half_bits(NAN) & 0x03ff, 0);
#if defined(__FLT16_MAX__)
  // Against the compiler's own conversion, over a million random floats in the half's range.
  std::mt19937 rng(18);
  std::uniform_int_distribution<uint32_t> bits(0u, 0x47800000u);  // |v| up to 65536
  for (int i = 0; i < 1000000; ++i) {
    uint32_t b = bits(rng) | (i % 2 ? 0x80000000u : 0u);
    float v;
    std::memcpy(&v, &b, sizeof v);
    const _Float16 h = static_cast<_Float16>(v);
    uint16_t want;
    std::memcpy(&want, &h, sizeof want);
    ASSERT_EQ(float_to_half_bits(v), want) << v;
  }
#endif
}

}  // namespace
