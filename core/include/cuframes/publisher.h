/* cuframes/publisher.h: the publisher: a key, its ring, loans and copies in, its counters.
 * Part of the C ABI of <cuframes/cuframes.h> (include that one): the rules at its top hold
 * for every declaration here. */
#ifndef CUFRAMES_PUBLISHER_H_
#define CUFRAMES_PUBLISHER_H_

#include "cuframes/common.h"
#include "cuframes/frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Publisher: owns a key and its ring. All calls on one publisher come from one thread at a time
 * (the library runs its own thread to accept subscribers and notice their death). */
typedef struct cuframes_publisher_t cuframes_publisher_t;
/* A slot lent to the producer for writing (cuframes_publisher_loan). */
typedef struct cuframes_loan_t cuframes_loan_t;

typedef enum cuframes_policy_t {
  /* Every slot is held by a subscriber: drop the new frame and count it. Never blocks. */
  CUFRAMES_POLICY_DROP = 0,
  /* Block until a slot is free, up to wait_timeout_ms. STRICT_ORDER subscribers then also keep
   * the frames they have not read yet, so each of them gets every frame exactly once. */
  CUFRAMES_POLICY_STRICT_WAIT = 1,
  CUFRAMES_POLICY_MAX_ENUM = 0x7FFFFFFF
} cuframes_policy_t;

/* "drop", "strict_wait"; "invalid" otherwise. Static storage. */
CUFRAMES_EXPORT const char* cuframes_policy_name(cuframes_policy_t policy);

typedef struct cuframes_publisher_options_t {
  size_t struct_size;           /* sizeof(cuframes_publisher_options_t); set by _init() */
  const char* runtime_dir;      /* rendezvous directory; default NULL = resolved (see cuframes.h) */
  cuframes_format_t format;     /* pixel format; default NV12 */
  uint32_t width;               /* pixels; required, 1..16384 */
  uint32_t height;              /* pixels; required, 1..16384 */
  uint32_t pitch;               /* bytes per row; default 0 = aligned automatically (host 64,
                                   cuda 256) */
  uint32_t slots;               /* frames in the ring; default 8, 2..64 */
  cuframes_memory_t memory;     /* where the ring lives; default HOST */
  int32_t cuda_device;          /* CUDA device of a cuda ring; default 0 */
  cuframes_policy_t policy;     /* when every slot is held; default DROP */
  int32_t wait_timeout_ms;      /* STRICT_WAIT: longest block in loan/publish; default 1000 */
  uint32_t max_subscribers;     /* subscriber table size; default 64, 1..64 */
  uint64_t packet_ring_bytes;   /* encoded-packet ring data bytes; default 0 = no packet ring;
                                   otherwise 64 KiB..1 GiB */
  uint32_t packet_ring_entries; /* packets the ring indexes; default 1024, 16..65536 */
} cuframes_publisher_options_t;

CUFRAMES_EXPORT void cuframes_publisher_options_init(cuframes_publisher_options_t* options);

/* Creates the ring and starts serving the key. Fails with SHM if another live publisher holds
 * the key, INVALID_ARGUMENT for bad options, OUT_OF_MEMORY if the ring cannot be allocated. */
CUFRAMES_EXPORT cuframes_status_t cuframes_publisher_create(
    const char* key, const cuframes_publisher_options_t* options, cuframes_publisher_t** out);
/* Stops serving: subscribers see PUBLISHER_GONE; frames they still hold stay readable until they
 * release them. Outstanding loans are orphaned: abandon frees them, commit fails with
 * INVALID_ARGUMENT (and frees them). */
CUFRAMES_EXPORT void cuframes_publisher_destroy(cuframes_publisher_t* publisher);

CUFRAMES_EXPORT void cuframes_publisher_get_geometry(const cuframes_publisher_t* publisher,
                                                     cuframes_geometry_t* out);

/* Lends a free slot for writing in place (the zero-copy producer path). Waits per the policy:
 * DROP fails at once with FRAME_TIMEOUT when every slot is held, STRICT_WAIT waits up to
 * wait_timeout_ms; either way the frame counts as dropped. Several loans may be out at once. */
CUFRAMES_EXPORT cuframes_status_t cuframes_publisher_loan(cuframes_publisher_t* publisher,
                                                          cuframes_loan_t** out);
CUFRAMES_EXPORT void cuframes_loan_get_info(const cuframes_loan_t* loan,
                                            cuframes_frame_info_t* out);
/* Describes the colour of the frame being written in a loan (default UNKNOWN, UNKNOWN); commit
 * publishes it with the frame. INVALID_ARGUMENT for values outside the enums. */
CUFRAMES_EXPORT cuframes_status_t cuframes_loan_set_color(cuframes_loan_t* loan,
                                                          cuframes_color_matrix_t matrix,
                                                          cuframes_color_range_t range);
/* Publishes a loaned slot with its pts. For a cuda ring, cuda_stream (a cudaStream_t, NULL = the
 * default stream) is the stream the slot was written on: the frame is published only after that
 * work has completed. The loan is consumed, also on failure. *seq_out (may be NULL) gets the seq.
 */
CUFRAMES_EXPORT cuframes_status_t cuframes_publisher_commit(cuframes_publisher_t* publisher,
                                                            cuframes_loan_t* loan, int64_t pts_ns,
                                                            void* cuda_stream, uint64_t* seq_out);
/* Gives a loaned slot back unpublished. */
CUFRAMES_EXPORT void cuframes_publisher_abandon(cuframes_publisher_t* publisher,
                                                cuframes_loan_t* loan);

/* A frame to copy in: plane pointers with their own pitches (any pitch >= the row size). */
typedef struct cuframes_source_t {
  size_t struct_size;       /* sizeof(cuframes_source_t); set by cuframes_source_init() */
  const void* planes[2];    /* Y plane, then UV plane (NULL for GRAY8) */
  uint64_t pitches[2];      /* bytes between rows of each plane */
  cuframes_memory_t memory; /* where the planes are: HOST, or CUDA (cuda rings only) */
  void* cuda_stream;        /* cuda ring: stream for the copy (NULL = default stream) */
  cuframes_color_matrix_t color_matrix; /* the frame's colour description, published with it; */
  cuframes_color_range_t color_range;   /* default UNKNOWN (see cuframes_color_matrix_t) */
} cuframes_source_t;

CUFRAMES_EXPORT void cuframes_source_init(cuframes_source_t* source);

/* Copies a frame into a free slot and publishes it. With DROP and every slot held the frame is
 * dropped and counted: the call returns OK and *seq_out = 0. With STRICT_WAIT it waits up to
 * wait_timeout_ms, then fails with FRAME_TIMEOUT (also counted as dropped). */
CUFRAMES_EXPORT cuframes_status_t cuframes_publisher_publish(cuframes_publisher_t* publisher,
                                                             const cuframes_source_t* source,
                                                             int64_t pts_ns, uint64_t* seq_out);

typedef struct cuframes_publisher_stats_t {
  size_t struct_size;      /* sizeof(cuframes_publisher_stats_t): set by the caller */
  uint64_t published;      /* frames published */
  uint64_t dropped;        /* frames dropped because no slot was free */
  uint64_t blocked_ns;     /* total time spent waiting for a slot (STRICT_WAIT) */
  uint64_t last_seq;       /* seq of the newest frame; 0 before the first */
  uint32_t slots;          /* ring size */
  uint32_t held_slots;     /* slots held by at least one subscriber right now (ring occupancy) */
  uint32_t subscribers;    /* subscribers attached right now */
  uint32_t waiting;        /* 1 while a loan/publish is blocked waiting for a slot (STRICT_WAIT) */
  int64_t last_publish_ns; /* when the newest frame was published; 0 before the first */
} cuframes_publisher_stats_t;

/* INVALID_ARGUMENT for a bad out->struct_size (see cuframes.h) or a NULL argument. */
CUFRAMES_EXPORT cuframes_status_t cuframes_publisher_get_stats(
    const cuframes_publisher_t* publisher, cuframes_publisher_stats_t* out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CUFRAMES_PUBLISHER_H_ */
