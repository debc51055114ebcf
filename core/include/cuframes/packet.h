/* cuframes/packet.h: the packet ring: the encoded stream beside the frames.
 * Part of the C ABI of <cuframes/cuframes.h> (include that one): the rules at its top hold
 * for every declaration here. */
#ifndef CUFRAMES_PACKET_H_
#define CUFRAMES_PACKET_H_

#include "cuframes/common.h"
#include "cuframes/publisher.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Packet ring: the encoded stream beside the frames (publisher option packet_ring_bytes), for
 * recorders that write clips without re-encoding. Readers copy packets out; a reader that is
 * lapped loses packets (counted as gaps) but never sees a torn one. */
typedef enum cuframes_codec_t {
  CUFRAMES_CODEC_UNKNOWN = 0,
  CUFRAMES_CODEC_H264 = 1,
  CUFRAMES_CODEC_HEVC = 2,
  CUFRAMES_CODEC_AV1 = 3,
  CUFRAMES_CODEC_VP9 = 4,
  CUFRAMES_CODEC_MJPEG = 5,
  CUFRAMES_CODEC_MAX_ENUM = 0x7FFFFFFF
} cuframes_codec_t;

/* "h264", "hevc", "av1", "vp9", "mjpeg", "unknown". Static storage. */
CUFRAMES_EXPORT const char* cuframes_codec_name(cuframes_codec_t codec);

#define CUFRAMES_EXTRADATA_MAX 4096
#define CUFRAMES_PACKET_KEY 1u /* packet flag: a keyframe (IDR / IRAP) */

typedef struct cuframes_codec_params_t {
  cuframes_codec_t codec;
  uint32_t width, height; /* coded picture size, pixels */
  int32_t time_base_num;  /* pts/dts unit = num/den seconds */
  int32_t time_base_den;
  const uint8_t* extradata; /* avcC/hvcC or Annex B parameter sets; may be NULL */
  uint32_t extradata_size;  /* bytes, <= CUFRAMES_EXTRADATA_MAX */
  uint64_t generation;      /* readers: bumped every time the publisher sets new params */
} cuframes_codec_params_t;

typedef struct cuframes_packet_t {
  const uint8_t* data;        /* one access unit */
  uint32_t size;              /* bytes */
  uint32_t flags;             /* CUFRAMES_PACKET_KEY */
  int64_t pts, dts;           /* in time_base units */
  uint64_t seq;               /* packet sequence number, from 1 (set by the ring for readers) */
  uint64_t params_generation; /* readers: codec params generation this packet belongs to */
} cuframes_packet_t;

/* Sets the stream's codec parameters (a publisher with a packet ring). */
CUFRAMES_EXPORT cuframes_status_t cuframes_publisher_set_codec(cuframes_publisher_t* publisher,
                                                               const cuframes_codec_params_t* p);
/* Appends one access unit and notifies readers. Fails with INVALID_ARGUMENT if the publisher has
 * no packet ring or the packet is larger than half the ring. Copies the data. */
CUFRAMES_EXPORT cuframes_status_t cuframes_publisher_write_packet(cuframes_publisher_t* publisher,
                                                                  const cuframes_packet_t* packet);

typedef struct cuframes_packet_reader_t cuframes_packet_reader_t;

typedef struct cuframes_packet_reader_options_t {
  size_t struct_size;         /* sizeof(cuframes_packet_reader_options_t); set by _init() */
  const char* runtime_dir;    /* default NULL = resolved */
  int32_t connect_timeout_ms; /* default -1 */
  int32_t start_at_oldest;    /* 1: begin with the oldest packet still in the ring (pre-roll);
                                 default 0: begin with the next packet written */
} cuframes_packet_reader_options_t;

CUFRAMES_EXPORT void cuframes_packet_reader_options_init(cuframes_packet_reader_options_t* o);
/* Fails at once with INVALID_ARGUMENT ("publisher 'KEY' has no packet ring") if the key's
 * publisher has no packet ring (cuframes-service: testsrc cameras, packet_ring: off). */
CUFRAMES_EXPORT cuframes_status_t
cuframes_packet_reader_create(const char* key, const cuframes_packet_reader_options_t* options,
                              cuframes_packet_reader_t** out);
CUFRAMES_EXPORT void cuframes_packet_reader_destroy(cuframes_packet_reader_t* reader);
CUFRAMES_EXPORT int cuframes_packet_reader_fd(const cuframes_packet_reader_t* reader);
/* The current codec parameters; extradata points into the reader and stays valid until the next
 * call of this function or destroy. FRAME_TIMEOUT if none were set yet. */
CUFRAMES_EXPORT cuframes_status_t cuframes_packet_reader_get_codec(cuframes_packet_reader_t* r,
                                                                   cuframes_codec_params_t* out);
/* Copies out the next packet; out->data stays valid until the next call or destroy. */
CUFRAMES_EXPORT cuframes_status_t cuframes_packet_reader_next(cuframes_packet_reader_t* reader,
                                                              int timeout_ms,
                                                              cuframes_packet_t* out);

typedef struct cuframes_packet_reader_stats_t {
  size_t struct_size; /* sizeof(cuframes_packet_reader_stats_t): set by the caller */
  uint64_t packets;   /* packets read */
  uint64_t bytes;     /* their bytes */
  uint64_t gaps;      /* packets lost because the writer lapped this reader */
} cuframes_packet_reader_stats_t;
CUFRAMES_EXPORT cuframes_status_t cuframes_packet_reader_get_stats(
    const cuframes_packet_reader_t* reader, cuframes_packet_reader_stats_t* out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CUFRAMES_PACKET_H_ */
