/* cuframes/frame.h: what a frame is: pixel formats, colour description, memory kinds, the layout
 * of a frame in a slot (geometry) and the description readers and writers get.
 * Part of the C ABI of <cuframes/cuframes.h> (include that one): the rules at its top hold
 * for every declaration here. */
#ifndef CUFRAMES_FRAME_H_
#define CUFRAMES_FRAME_H_

#include "cuframes/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Pixel formats and geometry. The enum is open: new values may be added. */
typedef enum cuframes_format_t {
  CUFRAMES_FORMAT_INVALID = 0,
  CUFRAMES_FORMAT_NV12 = 1,  /* 8-bit 4:2:0: Y plane (H rows), interleaved UV plane (H/2 rows) */
  CUFRAMES_FORMAT_P010 = 2,  /* 10-bit 4:2:0 like NV12, 16-bit samples, value in the high bits */
  CUFRAMES_FORMAT_GRAY8 = 3, /* 8-bit luma only */
  CUFRAMES_FORMAT_MAX_ENUM = 0x7FFFFFFF
} cuframes_format_t;

/* "NV12", "P010", "GRAY8"; "INVALID" otherwise. Static storage. */
CUFRAMES_EXPORT const char* cuframes_format_name(cuframes_format_t format);

/* Colour description of a frame: how its Y, U, V samples map to R, G, B (ITU-T H.273). Set by the
 * publisher per frame (cuframes_source_t, cuframes_loan_set_color), carried in the ring with the
 * frame, handed to readers in cuframes_frame_info_t. UNKNOWN is what a publisher that says nothing
 * gets; readers then assume (as cuframes_preprocess does): BT.709 for frames at least 720 rows
 * high, BT.601 below, and limited range (GRAY8: full range, the sample is the grey level). */
typedef enum cuframes_color_matrix_t {
  CUFRAMES_COLOR_MATRIX_UNKNOWN = 0,
  CUFRAMES_COLOR_MATRIX_BT601 = 1,  /* Kr 0.299, Kb 0.114 (SMPTE 170M, BT.470 BG) */
  CUFRAMES_COLOR_MATRIX_BT709 = 2,  /* Kr 0.2126, Kb 0.0722 */
  CUFRAMES_COLOR_MATRIX_BT2020 = 3, /* Kr 0.2627, Kb 0.0593, non-constant luminance */
  CUFRAMES_COLOR_MATRIX_MAX_ENUM = 0x7FFFFFFF
} cuframes_color_matrix_t;

typedef enum cuframes_color_range_t {
  CUFRAMES_COLOR_RANGE_UNKNOWN = 0,
  CUFRAMES_COLOR_RANGE_LIMITED = 1, /* "TV"/"MPEG": Y 16..235, U and V 16..240 (x4 for 10 bits) */
  CUFRAMES_COLOR_RANGE_FULL = 2,    /* "PC"/"JPEG": 0..255 (0..1023) */
  CUFRAMES_COLOR_RANGE_MAX_ENUM = 0x7FFFFFFF
} cuframes_color_range_t;

/* "unknown", "bt601", "bt709", "bt2020"; "invalid" otherwise. Static storage. */
CUFRAMES_EXPORT const char* cuframes_color_matrix_name(cuframes_color_matrix_t matrix);
/* "unknown", "limited", "full"; "invalid" otherwise. Static storage. */
CUFRAMES_EXPORT const char* cuframes_color_range_name(cuframes_color_range_t range);

typedef enum cuframes_memory_t {
  CUFRAMES_MEMORY_HOST = 1, /* memfd-backed host memory; frames are CPU pointers */
  CUFRAMES_MEMORY_CUDA = 2, /* device memory; frames are device pointers on the subscriber's GPU */
  CUFRAMES_MEMORY_MAX_ENUM = 0x7FFFFFFF
} cuframes_memory_t;

/* "host", "cuda"; "invalid" otherwise. Static storage. These names (and those of the policy and
 * the mode) are what the CLI, the service's status file and MQTT print. */
CUFRAMES_EXPORT const char* cuframes_memory_name(cuframes_memory_t memory);

/* Layout of one frame in a slot. Planes start at offset_y / offset_uv from the slot base. */
typedef struct cuframes_geometry_t {
  cuframes_format_t format;
  uint32_t width;            /* pixels */
  uint32_t height;           /* pixels (rows of the Y plane) */
  uint32_t bytes_per_sample; /* 1 (NV12, GRAY8) or 2 (P010) */
  uint32_t num_planes;       /* 2 (NV12, P010) or 1 (GRAY8) */
  uint32_t pitch_y;          /* bytes between rows of the Y plane, >= width * bytes_per_sample */
  uint32_t pitch_uv;         /* bytes between rows of the UV plane; 0 when there is none */
  uint32_t height_uv;        /* rows of the UV plane; 0 when there is none */
  uint64_t offset_y;         /* byte offset of the Y plane in the slot (0) */
  uint64_t offset_uv;        /* byte offset of the UV plane in the slot; 0 when there is none */
  uint64_t frame_bytes;      /* bytes from the slot base to the end of the last plane */
} cuframes_geometry_t;

/* Computes the layout of a width x height frame. pitch 0 picks the smallest pitch that is a
 * multiple of pitch_alignment (a power of two, >= 1); otherwise pitch is used as given and must be
 * >= the row size. Both planes use the same pitch. 4:2:0 formats need an even width and height.
 * Fails with INVALID_ARGUMENT naming the bad value. */
CUFRAMES_EXPORT cuframes_status_t cuframes_geometry_compute(cuframes_format_t format,
                                                            uint32_t width, uint32_t height,
                                                            uint32_t pitch,
                                                            uint32_t pitch_alignment,
                                                            cuframes_geometry_t* out);

/* Frame handed to readers and writers: where its planes are and what it is. */
typedef struct cuframes_frame_info_t {
  uint64_t seq;                 /* publisher's sequence number (0 for a loan not yet published) */
  int64_t pts_ns;               /* presentation time given by the publisher */
  int64_t publish_ns;           /* CLOCK_MONOTONIC when it was published (0 for a loan) */
  void* data;                   /* slot base; the Y plane starts here (read-only for readers) */
  void* plane_y;                /* data + geometry.offset_y */
  void* plane_uv;               /* data + geometry.offset_uv, or NULL without a UV plane */
  cuframes_geometry_t geometry; /* format, size, pitches, plane offsets */
  cuframes_memory_t memory;     /* HOST: CPU pointers; CUDA: device pointers */
  int32_t device;               /* CUDA device id of the pointers; -1 for host memory */
  uint32_t slot;                /* slot index in the ring */
  cuframes_color_matrix_t color_matrix; /* as the publisher described the frame; UNKNOWN if */
  cuframes_color_range_t color_range;   /* it did not (see cuframes_color_matrix_t) */
} cuframes_frame_info_t;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CUFRAMES_FRAME_H_ */
