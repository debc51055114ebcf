/* cuframes/preprocess.h: held frames of any rings to one model-ready batch.
 * Part of the C ABI of <cuframes/cuframes.h> (include that one): the rules at its top hold
 * for every declaration here. */
#ifndef CUFRAMES_PREPROCESS_H_
#define CUFRAMES_PREPROCESS_H_

#include "cuframes/common.h"
#include "cuframes/subscriber.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Preprocessing: frames (of any rings, sizes and formats) to one model-ready batch: colour
 * conversion to RGB, resize (letterbox or stretch), normalisation, in one pass. CUDA frames are
 * processed by one kernel launch per batch (per 64 frames of larger batches), host frames by a
 * CPU implementation with the same arithmetic and the same sampling positions. */
typedef enum cuframes_dtype_t {
  CUFRAMES_DTYPE_UINT8 = 1,   /* the channel level, 0..255, rounded (no scale/mean/std) */
  CUFRAMES_DTYPE_FLOAT16 = 2, /* IEEE half, round to nearest even */
  CUFRAMES_DTYPE_FLOAT32 = 3,
  CUFRAMES_DTYPE_MAX_ENUM = 0x7FFFFFFF
} cuframes_dtype_t;

typedef enum cuframes_layout_t {
  CUFRAMES_LAYOUT_NCHW = 1, /* N x 3 x H x W, compact */
  CUFRAMES_LAYOUT_NHWC = 2, /* N x H x W x 3, compact */
  CUFRAMES_LAYOUT_MAX_ENUM = 0x7FFFFFFF
} cuframes_layout_t;

typedef enum cuframes_channels_t {
  CUFRAMES_CHANNELS_RGB = 1,
  CUFRAMES_CHANNELS_BGR = 2,
  CUFRAMES_CHANNELS_MAX_ENUM = 0x7FFFFFFF
} cuframes_channels_t;

typedef enum cuframes_resize_t {
  /* Keep the aspect: scale by min(W / w, H / h), content of round(w * s) x round(h * s) pixels,
   * centred (pads rounded down on the left and top), the rest pad_value. */
  CUFRAMES_RESIZE_LETTERBOX = 1,
  CUFRAMES_RESIZE_STRETCH = 2, /* scale each axis on its own to fill W x H */
  CUFRAMES_RESIZE_MAX_ENUM = 0x7FFFFFFF
} cuframes_resize_t;

/* "uint8", "float16", "float32"; "nchw", "nhwc"; "rgb", "bgr"; "letterbox", "stretch" (the names
 * the Python package takes); "invalid" for values outside the enum. Static storage. */
CUFRAMES_EXPORT const char* cuframes_dtype_name(cuframes_dtype_t dtype);
CUFRAMES_EXPORT const char* cuframes_layout_name(cuframes_layout_t layout);
CUFRAMES_EXPORT const char* cuframes_channels_name(cuframes_channels_t channels);
CUFRAMES_EXPORT const char* cuframes_resize_name(cuframes_resize_t resize);

typedef struct cuframes_preprocess_options_t {
  size_t struct_size;           /* sizeof(cuframes_preprocess_options_t); set by _init() */
  uint32_t width;               /* output pixels per row; required, 1..16384 */
  uint32_t height;              /* output rows; required, 1..16384 */
  cuframes_dtype_t dtype;       /* default FLOAT16 */
  cuframes_layout_t layout;     /* default NCHW */
  cuframes_channels_t channels; /* channel order; default RGB */
  cuframes_resize_t resize;     /* default LETTERBOX */
  float pad_value;              /* letterbox border as a 0..255 level (before scale, mean, std);
                                   default 114 */
  /* Float outputs: value = (level * scale - mean[c]) / std[c], c the output channel (mean[0] is
   * for B with BGR). uint8 outputs hold the level itself: leave these at their defaults. */
  float scale;       /* default 1/255; finite */
  float mean[3];     /* default 0; finite */
  float std[3];      /* default 1; finite, non-zero */
  void* cuda_stream; /* CUDA frames: the cudaStream_t to work on; default NULL = the
                        consumer_stream of frames[0]'s subscriber. Host frames: unused */
} cuframes_preprocess_options_t;

CUFRAMES_EXPORT void cuframes_preprocess_options_init(cuframes_preprocess_options_t* options);

/* Where output pixel x of a frame's tensor image came from: frame x = (x - pad_x) / scale_x (the
 * same for y). To map a box back to the frame, subtract the pads and divide by the scales. */
typedef struct cuframes_transform_t {
  float scale_x, scale_y; /* tensor pixels per frame pixel */
  float pad_x, pad_y;     /* tensor pixels before the frame's content (0 for STRETCH) */
} cuframes_transform_t;

/* Bytes the output of count frames takes: count x 3 x height x width x the dtype's size; 0 for
 * options that cuframes_preprocess would refuse. */
CUFRAMES_EXPORT size_t cuframes_preprocess_bytes(const cuframes_preprocess_options_t* options,
                                                 size_t count);

/* Converts count held frames into one batch at out (out_bytes >= cuframes_preprocess_bytes):
 * frame i becomes image i of the batch. The frames may come from different subscribers, rings,
 * sizes and formats, but all from host memory (out is then host memory, written before the call
 * returns) or all from one CUDA device (out is device memory on it; the work is queued on
 * options->cuda_stream and the call returns without waiting for it).
 *
 * Colour: each frame's colour description (cuframes_frame_info_t; UNKNOWN as described at
 * cuframes_color_matrix_t); P010 uses its 10 bits; GRAY8 gives three equal channels. Sampling:
 * pixel centres map to pixel centres; along an axis where the output has at least half as many
 * pixels as a plane has, that plane is sampled bilinearly (edges repeated), else each output
 * pixel is the area average of the plane's pixels it covers. Chroma is sited as in MPEG-2, H.264
 * and HEVC (horizontally with the even luma columns, vertically between the rows).
 *
 * transforms (may be NULL) gets one cuframes_transform_t per frame. Fails with INVALID_ARGUMENT
 * naming the bad argument (empty batch, NULL frame, bad option, frames of different devices,
 * out_bytes too small), DEVICE_LOST for CUDA failures (or CUDA frames in a build without CUDA).
 *
 * CUDA frames may be released right after the call if the release is ordered after the work:
 * cuframes_frame_release(frame, stream) with the stream used here (NULL there means the frame's
 * own consumer stream, which is that stream unless the frames come from several subscribers). */
CUFRAMES_EXPORT cuframes_status_t cuframes_preprocess(cuframes_frame_t* const* frames, size_t count,
                                                      const cuframes_preprocess_options_t* options,
                                                      void* out, size_t out_bytes,
                                                      cuframes_transform_t* transforms);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CUFRAMES_PREPROCESS_H_ */
