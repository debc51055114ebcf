#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "color.h"
#include "enums.h"
#include "geometry.h"

namespace cuframes::detail {
namespace {

// The option enums: value, name (the Python strings), and for dtypes the bytes per value. The
// one list that names them; errors and cuframes_*_name come from here.
struct Named {
  uint32_t value;
  const char* name;
  size_t bytes;
};
constexpr Named kDtypes[] = {{CUFRAMES_DTYPE_UINT8, "uint8", 1},
                             {CUFRAMES_DTYPE_FLOAT16, "float16", 2},
                             {CUFRAMES_DTYPE_FLOAT32, "float32", 4}};
constexpr Named kLayouts[] = {{CUFRAMES_LAYOUT_NCHW, "nchw", 0}, {CUFRAMES_LAYOUT_NHWC, "nhwc", 0}};
constexpr Named kChannels[] = {{CUFRAMES_CHANNELS_RGB, "rgb", 0},
                               {CUFRAMES_CHANNELS_BGR, "bgr", 0}};
constexpr Named kResizes[] = {{CUFRAMES_RESIZE_LETTERBOX, "letterbox", 0},
                              {CUFRAMES_RESIZE_STRETCH, "stretch", 0}};

template <size_t N>
const Named* find(const Named (&table)[N], uint32_t v) {
  for (const Named& n : table) {
    if (n.value == v) return &n;
  }
  return nullptr;
}

template <size_t N>
const char* name_of(const Named (&table)[N], uint32_t v) {
  const Named* n = find(table, v);
  return n != nullptr ? n->name : "invalid";
}

// "options.dtype 7 is not one of 1 (uint8), 2 (float16), 3 (float32)"
template <size_t N>
Status check_enum(const Named (&table)[N], uint32_t v, const char* what) {
  if (find(table, v) != nullptr) return Ok();
  std::string list;
  for (const Named& n : table) {
    if (!list.empty()) list += ", ";
    list += std::to_string(n.value) + " (" + n.name + ")";
  }
  return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "options.%s %d is not one of %s", what,
             static_cast<int>(v), list.c_str());
}

Status check_options(const cuframes_preprocess_options_t& o) {
  if (o.width == 0 || o.width > kMaxDimension || o.height == 0 || o.height > kMaxDimension) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
               "options size %ux%u (width x height) is outside 1..%u", o.width, o.height,
               kMaxDimension);
  }
  // The caller's bits (enums.h): nothing loads these fields as the enums before.
  CUFRAMES_RETURN_IF_ERROR(check_enum(kDtypes, raw_enum(o.dtype), "dtype"));
  CUFRAMES_RETURN_IF_ERROR(check_enum(kLayouts, raw_enum(o.layout), "layout"));
  CUFRAMES_RETURN_IF_ERROR(check_enum(kChannels, raw_enum(o.channels), "channels"));
  CUFRAMES_RETURN_IF_ERROR(check_enum(kResizes, raw_enum(o.resize), "resize"));
  if (!(o.pad_value >= 0.0f && o.pad_value <= 255.0f)) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "options.pad_value %g is outside 0..255",
               static_cast<double>(o.pad_value));
  }
  if (!std::isfinite(o.scale)) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "options.scale %g is not finite",
               static_cast<double>(o.scale));
  }
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(o.mean[c])) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "options.mean[%d] %g is not finite", c,
                 static_cast<double>(o.mean[c]));
    }
    if (!std::isfinite(o.std[c]) || o.std[c] == 0.0f) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
                 "options.std[%d] %g is not a finite non-zero number", c,
                 static_cast<double>(o.std[c]));
    }
  }
  if (o.dtype == CUFRAMES_DTYPE_UINT8) {
    const cuframes_preprocess_options_t d = preprocess_defaults();
    bool normalised = o.scale != d.scale;
    for (int c = 0; c < 3; ++c) normalised |= o.mean[c] != d.mean[c] || o.std[c] != d.std[c];
    if (normalised) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
                 "options.scale, mean and std apply to float dtypes: uint8 outputs hold the "
                 "0..255 level itself (leave them at their defaults, or ask for float16/float32)");
    }
  }
  return Ok();
}

std::string where(const cuframes_frame_info_t& f) {
  return f.memory == CUFRAMES_MEMORY_CUDA ? "cuda device " + std::to_string(f.device)
                                          : std::string("host memory");
}

// Checks frame i (its geometry comes from a validated ring header; a caller could still hand us
// a hand-made info) and fills its description and transform.
Status describe(const cuframes_frame_info_t& fi, size_t i, const cuframes_preprocess_options_t& o,
                pp::FrameDesc* d, cuframes_transform_t* t) {
  const cuframes_geometry_t& g = fi.geometry;
  // The planes are read through plane_y / plane_uv with the pitches: those must fit the format.
  cuframes_geometry_t want{};
  const bool readable = compute_geometry(g.format, g.width, g.height, g.pitch_y, 1, &want).ok() &&
                        want.num_planes == g.num_planes && want.pitch_uv == g.pitch_uv &&
                        fi.plane_y != nullptr && (g.num_planes == 2) == (fi.plane_uv != nullptr);
  if (!readable) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
               "frames[%zu]: not a frame cuframes can read (%s %ux%u, pitch %u)", i,
               cuframes_format_name(g.format), g.width, g.height, g.pitch_y);
  }
  CUFRAMES_RETURN_IF_ERROR(check_color(raw_enum(fi.color_matrix), raw_enum(fi.color_range),
                                       ("frames[" + std::to_string(i) + "]").c_str()));
  const double w = g.width, h = g.height;
  const double ow = o.width, oh = o.height;
  double cw = ow, ch = oh;  // the content's size in output pixels
  if (o.resize == CUFRAMES_RESIZE_LETTERBOX) {
    const double s = std::min(ow / w, oh / h);
    cw = std::min(ow, std::max(1.0, std::round(w * s)));
    ch = std::min(oh, std::max(1.0, std::round(h * s)));
  }
  const auto pad_x = static_cast<int32_t>((o.width - static_cast<uint32_t>(cw)) / 2);
  const auto pad_y = static_cast<int32_t>((o.height - static_cast<uint32_t>(ch)) / 2);
  t->scale_x = static_cast<float>(cw / w);
  t->scale_y = static_cast<float>(ch / h);
  t->pad_x = static_cast<float>(pad_x);
  t->pad_y = static_cast<float>(pad_y);

  d->y = static_cast<const uint8_t*>(fi.plane_y);
  d->uv = static_cast<const uint8_t*>(fi.plane_uv);
  d->pitch_y = g.pitch_y;
  d->pitch_uv = g.pitch_uv;
  d->kind = g.format == CUFRAMES_FORMAT_NV12   ? pp::kNv12
            : g.format == CUFRAMES_FORMAT_P010 ? pp::kP010
                                               : pp::kGray8;
  d->x0 = pad_x;
  d->y0 = pad_y;
  d->x1 = pad_x + static_cast<int32_t>(cw);
  d->y1 = pad_y + static_cast<int32_t>(ch);
  // A plane is area-averaged along an axis where the output has fewer than half its pixels.
  const auto axis = [](double frame_px, double out_px, int32_t pad, double sub, float shift,
                       uint32_t plane_px) {
    pp::AxisMap m;
    m.inv_scale = static_cast<float>(frame_px / out_px);
    m.pad = static_cast<float>(pad);
    m.sub = static_cast<float>(sub);
    m.shift = shift;
    m.size = static_cast<int32_t>(plane_px);
    m.area = 2.0 * out_px < plane_px ? 1 : 0;
    return m;
  };
  d->lx = axis(w, cw, pad_x, 1.0, 0.0f, g.width);
  d->ly = axis(h, ch, pad_y, 1.0, 0.0f, g.height);
  d->cx = axis(w, cw, pad_x, 0.5, 0.25f, g.width / 2);
  d->cy = axis(h, ch, pad_y, 0.5, 0.0f, g.height / 2);
  yuv_to_rgb(resolve_color(g.format, g.height, fi.color_matrix, fi.color_range), g.format, d->m);
  return Ok();
}

}  // namespace

cuframes_preprocess_options_t preprocess_defaults() {
  cuframes_preprocess_options_t o{};
  o.struct_size = sizeof o;
  o.dtype = CUFRAMES_DTYPE_FLOAT16;
  o.layout = CUFRAMES_LAYOUT_NCHW;
  o.channels = CUFRAMES_CHANNELS_RGB;
  o.resize = CUFRAMES_RESIZE_LETTERBOX;
  o.pad_value = 114.0f;
  o.scale = 1.0f / 255.0f;
  for (int c = 0; c < 3; ++c) o.std[c] = 1.0f;
  return o;
}

size_t preprocess_bytes(const cuframes_preprocess_options_t& o, size_t count) {
  if (!check_options(o).ok()) return 0;
  const size_t per_image = size_t{3} * o.width * o.height * find(kDtypes, o.dtype)->bytes;
  if (count > SIZE_MAX / per_image) return 0;
  return count * per_image;
}

Status preprocess(const PreprocessInput* frames, size_t count,
                  const cuframes_preprocess_options_t& o, void* out, size_t out_bytes,
                  cuframes_transform_t* transforms) {
  if (count == 0) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "no frames: the batch is empty");
  CUFRAMES_RETURN_IF_ERROR(check_options(o));
  const size_t need = preprocess_bytes(o, count);
  if (need == 0) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%zu frames of %ux%u do not fit in memory", count,
               o.width, o.height);
  }
  if (out == nullptr) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "out is NULL");
  if (out_bytes < need) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
               "out_bytes %zu is below the %zu bytes of %zu x 3 x %u x %u %s values", out_bytes,
               need, count, o.height, o.width, name_of(kDtypes, o.dtype));
  }
  const cuframes_frame_info_t& first = *frames[0].info;
  std::vector<pp::FrameDesc> descs(count);
  std::vector<cuframes_transform_t> tf(count);
  for (size_t i = 0; i < count; ++i) {
    const cuframes_frame_info_t& fi = *frames[i].info;
    if (fi.memory != first.memory ||
        (fi.memory == CUFRAMES_MEMORY_CUDA && fi.device != first.device)) {
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
                 "frames[%zu] is on %s, frames[0] on %s: a batch is made on one device", i,
                 where(fi).c_str(), where(first).c_str());
    }
    CUFRAMES_RETURN_IF_ERROR(describe(fi, i, o, &descs[i], &tf[i]));
  }
  pp::Job job{};
  job.out = out;
  job.width = o.width;
  job.height = o.height;
  job.dtype = o.dtype;
  job.layout = o.layout;
  job.bgr = o.channels == CUFRAMES_CHANNELS_BGR ? 1 : 0;
  job.pad_level = o.pad_value;
  for (int k = 0; k < 3; ++k) {
    job.mul[k] = o.scale / o.std[k];
    job.add[k] = -o.mean[k] / o.std[k];
  }
  if (first.memory == CUFRAMES_MEMORY_HOST) {
    preprocess_cpu(job, descs.data(), count);
  } else if (first.memory == CUFRAMES_MEMORY_CUDA) {
#ifdef CUFRAMES_WITH_CUDA
    void* stream = o.cuda_stream != nullptr ? o.cuda_stream : frames[0].consumer_stream;
    CUFRAMES_RETURN_IF_ERROR(preprocess_cuda(job, descs.data(), count, first.device, stream));
#else
    return Err(CUFRAMES_ERR_DEVICE_LOST,
               "frames[0] is on cuda device %d, but this libcuframes was built without CUDA "
               "(CUFRAMES_CUDA=OFF): it can preprocess host frames only",
               first.device);
#endif
  } else {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "frames[0]: unknown memory kind %d",
               static_cast<int>(first.memory));
  }
  if (transforms != nullptr) {
    for (size_t i = 0; i < count; ++i) transforms[i] = tf[i];
  }
  return Ok();
}

}  // namespace cuframes::detail

using cuframes::detail::kChannels;
using cuframes::detail::kDtypes;
using cuframes::detail::kLayouts;
using cuframes::detail::kResizes;
using cuframes::detail::name_of;

extern "C" const char* cuframes_dtype_name(cuframes_dtype_t v) {
  return name_of(kDtypes, cuframes::detail::raw_enum(v));
}
extern "C" const char* cuframes_layout_name(cuframes_layout_t v) {
  return name_of(kLayouts, cuframes::detail::raw_enum(v));
}
extern "C" const char* cuframes_channels_name(cuframes_channels_t v) {
  return name_of(kChannels, cuframes::detail::raw_enum(v));
}
extern "C" const char* cuframes_resize_name(cuframes_resize_t v) {
  return name_of(kResizes, cuframes::detail::raw_enum(v));
}
