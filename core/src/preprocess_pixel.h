// The per-pixel arithmetic of cuframes_preprocess, shared by its two back ends: the CPU twin
// (preprocess_cpu.cc) and the CUDA kernel (preprocess_cuda.cu). Both compile this same code, with
// floating-point contraction off (no FMA), so they compute the same sampling positions, weights
// and values; only the float -> half conversion has two spellings (hardware and software), both
// round to nearest even. C++17, no library beyond <cstdint>/<cstring>/<cmath>, so nvcc takes it.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cuframes/cuframes.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define CF_HD __host__ __device__ __forceinline__
#else
#define CF_HD inline
#endif

namespace cuframes::detail::pp {

// FrameDesc::kind: how the planes are read.
constexpr uint32_t kGray8 = 0;  // Y only, 8 bits
constexpr uint32_t kNv12 = 1;   // Y, then interleaved U V at half resolution, 8 bits
constexpr uint32_t kP010 = 2;   // the same in 16-bit samples, the 10-bit value in the high bits

// How one plane is sampled along one axis. Coordinates: "area" coordinates put pixel i of a plane
// on [i, i + 1). Output pixel o covers the frame's luma area [(o - pad) * inv_scale,
// (o + 1 - pad) * inv_scale); a plane's area coordinate is luma's * sub + shift (chroma: sub 0.5,
// shift 0.25 horizontally (sited with the even luma columns), 0 vertically (between the rows)).
struct AxisMap {
  float inv_scale;  // frame pixels per output pixel
  float pad;        // output pixels before the frame's content
  float sub;        // 1 for luma, 0.5 for 4:2:0 chroma
  float shift;      // see above
  int32_t size;     // the plane's pixels along this axis
  int32_t area;     // 1: average the pixels the output pixel covers; 0: bilinear at its centre
};

// One frame of a batch.
struct FrameDesc {
  const uint8_t* y;   // Y plane
  const uint8_t* uv;  // interleaved UV plane (NULL for kGray8)
  uint32_t pitch_y;   // bytes
  uint32_t pitch_uv;  // bytes
  uint32_t kind;      // kGray8, kNv12, kP010
  int32_t x0, y0;     // the content rectangle in output pixels: [x0, x1) x [y0, y1); the rest
  int32_t x1, y1;     // is padding
  AxisMap lx, ly;     // luma
  AxisMap cx, cy;     // chroma (unused for kGray8)
  float m[3][4];      // level[c] = m[c][0] Y + m[c][1] U + m[c][2] V + m[c][3], c = R, G, B
};

// The output: N images of width x height.
struct Job {
  void* out;
  uint32_t width, height;
  uint32_t dtype;   // cuframes_dtype_t
  uint32_t layout;  // cuframes_layout_t
  uint32_t bgr;     // 1: output channels in B, G, R order
  float pad_level;  // 0..255
  float mul[3];     // float outputs: value = level * mul[k] + add[k], k the output channel
  float add[3];
};

// The taps of one plane along one axis for one output pixel.
struct Taps {
  int32_t first, count;
  float a, b, inv;  // area: the footprint [a, b) and 1 / (b - a)
  float frac;       // bilinear: weight of the second tap
  int32_t area;
};

CF_HD float clampf(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

CF_HD Taps taps(const AxisMap& m, int32_t o) {
  float a = (static_cast<float>(o) - m.pad) * m.inv_scale;
  float b = (static_cast<float>(o) + 1.0f - m.pad) * m.inv_scale;
  a = a * m.sub + m.shift;
  b = b * m.sub + m.shift;
  const float size = static_cast<float>(m.size);
  Taps t;
  t.area = m.area;
  t.frac = 0.0f;
  if (m.area) {
    a = clampf(a, 0.0f, size);
    b = clampf(b, 0.0f, size);
    if (!(b > a)) {  // a footprint outside the plane (cannot happen for content pixels)
      t.first = static_cast<int32_t>(clampf(floorf(a), 0.0f, size - 1.0f));
      t.a = static_cast<float>(t.first);
      t.b = t.a + 1.0f;
      t.inv = 1.0f;
      t.count = 1;
      return t;
    }
    t.a = a;
    t.b = b;
    t.inv = 1.0f / (b - a);
    t.first = static_cast<int32_t>(floorf(a));
    const int32_t last = static_cast<int32_t>(ceilf(b)) - 1;
    t.count = last >= t.first ? last - t.first + 1 : 1;
    return t;
  }
  const float c = clampf((a + b) * 0.5f - 0.5f, 0.0f, size - 1.0f);  // the centre, clamped
  t.a = t.b = t.inv = 0.0f;
  t.first = static_cast<int32_t>(floorf(c));
  if (t.first >= m.size - 1) {
    t.first = m.size - 1;
    t.count = 1;
  } else {
    t.frac = c - static_cast<float>(t.first);
    t.count = 2;
  }
  return t;
}

CF_HD float weight(const Taps& t, int32_t i) {
  if (t.area) {
    return (fminf(static_cast<float>(i + 1), t.b) - fmaxf(static_cast<float>(i), t.a)) * t.inv;
  }
  return i == t.first ? 1.0f - t.frac : t.frac;
}

// Sample readers: the value of a plane's pixel (x, y) as a float.
CF_HD float luma(const FrameDesc& f, int32_t x, int32_t y) {
  const uint8_t* row = f.y + static_cast<size_t>(y) * f.pitch_y;
  if (f.kind == kP010) return static_cast<float>(reinterpret_cast<const uint16_t*>(row)[x] >> 6);
  return static_cast<float>(row[x]);
}

CF_HD void chroma(const FrameDesc& f, int32_t x, int32_t y, float* u, float* v) {
  const uint8_t* row = f.uv + static_cast<size_t>(y) * f.pitch_uv;
  if (f.kind == kP010) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + 2 * x;
    *u = static_cast<float>(p[0] >> 6);
    *v = static_cast<float>(p[1] >> 6);
  } else {
    *u = static_cast<float>(row[2 * x]);
    *v = static_cast<float>(row[2 * x + 1]);
  }
}

// The R, G, B levels (0..255) of output pixel (x, y), which lies in the content rectangle.
CF_HD void levels(const FrameDesc& f, int32_t x, int32_t y, float rgb[3]) {
  const Taps tx = taps(f.lx, x);
  const Taps ty = taps(f.ly, y);
  float yv = 0.0f;
  for (int32_t j = 0; j < ty.count; ++j) {
    const int32_t yy = ty.first + j;
    float row = 0.0f;
    for (int32_t i = 0; i < tx.count; ++i) {
      const int32_t xx = tx.first + i;
      row += weight(tx, xx) * luma(f, xx, yy);
    }
    yv += weight(ty, yy) * row;
  }
  float uv = 0.0f, vv = 0.0f;
  if (f.kind != kGray8) {
    const Taps cx = taps(f.cx, x);
    const Taps cy = taps(f.cy, y);
    for (int32_t j = 0; j < cy.count; ++j) {
      const int32_t yy = cy.first + j;
      float ru = 0.0f, rv = 0.0f;
      for (int32_t i = 0; i < cx.count; ++i) {
        const int32_t xx = cx.first + i;
        float u, v;
        chroma(f, xx, yy, &u, &v);
        const float w = weight(cx, xx);
        ru += w * u;
        rv += w * v;
      }
      const float w = weight(cy, yy);
      uv += w * ru;
      vv += w * rv;
    }
  }
  for (int c = 0; c < 3; ++c) {
    const float l = f.m[c][0] * yv + f.m[c][1] * uv + f.m[c][2] * vv + f.m[c][3];
    rgb[c] = clampf(l, 0.0f, 255.0f);
  }
}

// IEEE binary16 bits of v, rounded to nearest even (what CUDA's __float2half_rn computes).
inline uint16_t float_to_half_bits(float v) {
  uint32_t x;
  memcpy(&x, &v, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u)
    return static_cast<uint16_t>(sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: infinity
  if (ax < 0x38800000u) {  // below 2^-14: a subnormal half (or 0)
    if (ax < 0x33000000u) return static_cast<uint16_t>(sign);  // below 2^-25
    const uint32_t e = ax >> 23;
    const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;  // 14..24
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  const uint32_t r = ax - 0x38000000u;  // rebias the exponent (127 -> 15)
  uint32_t h = r >> 13;
  const uint32_t rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

CF_HD uint16_t to_half(float v) {
#if defined(__CUDA_ARCH__)
  return __half_as_ushort(__float2half_rn(v));
#else
  return float_to_half_bits(v);
#endif
}

// Writes output pixel (x, y) of image n from its R, G, B levels.
CF_HD void store(const Job& j, size_t n, int32_t x, int32_t y, const float rgb[3]) {
  const size_t w = j.width, h = j.height;
  for (int k = 0; k < 3; ++k) {  // output channel k
    const float l = rgb[j.bgr ? 2 - k : k];
    const size_t i = j.layout == CUFRAMES_LAYOUT_NCHW ? ((n * 3 + k) * h + y) * w + x
                                                      : ((n * h + y) * w + x) * 3 + k;
    if (j.dtype == CUFRAMES_DTYPE_UINT8) {
      static_cast<uint8_t*>(j.out)[i] = static_cast<uint8_t>(floorf(l + 0.5f));
    } else if (j.dtype == CUFRAMES_DTYPE_FLOAT16) {
      static_cast<uint16_t*>(j.out)[i] = to_half(l * j.mul[k] + j.add[k]);
    } else {
      static_cast<float*>(j.out)[i] = l * j.mul[k] + j.add[k];
    }
  }
}

// Computes and writes output pixel (x, y) of image n, frame f.
CF_HD void pixel(const Job& j, const FrameDesc& f, size_t n, int32_t x, int32_t y) {
  float rgb[3];
  if (x >= f.x0 && x < f.x1 && y >= f.y0 && y < f.y1) {
    levels(f, x, y, rgb);
  } else {
    rgb[0] = rgb[1] = rgb[2] = j.pad_level;
  }
  store(j, n, x, y, rgb);
}

}  // namespace cuframes::detail::pp
