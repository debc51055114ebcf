/* cuframes: decoded camera frames shared zero-copy between processes.
 *
 * A publisher owns a key ("cam-parking", [A-Za-z0-9._-]{1,64}) and a ring of frame slots in
 * host or CUDA memory. Any number of subscribers in other processes (or containers that share
 * the runtime directory) read the frames without copying them.
 *
 * Rules of this C ABI (they hold for every function below):
 *  - Handles are opaque (cuframes_<noun>_t). Each has a _create (or _next/_loan) that hands it
 *    out and a _destroy (or _release/_commit/_abandon) that takes it back; passing NULL to a
 *    _destroy is a no-op. Handles are never shared between threads unless a function says so.
 *  - Functions that can fail return cuframes_status_t. On failure the calling thread's error
 *    message is set; read it with cuframes_last_error() before the next call on that thread.
 *    Output parameters are only written on CUFRAMES_OK.
 *  - Option structs are plain structs: call the matching _init() first, then set the fields you
 *    need. Every field is documented with its meaning, default and unit.
 *  - Sized structs: the options structs (cuframes_publisher_options_t, cuframes_source_t,
 *    cuframes_subscriber_options_t, cuframes_preprocess_options_t,
 *    cuframes_packet_reader_options_t) and the stats structs (cuframes_publisher_stats_t,
 *    cuframes_subscriber_stats_t, cuframes_ring_status_t, cuframes_packet_reader_stats_t) begin
 *    with size_t struct_size: the sizeof of the struct as the caller was built. _init() sets it
 *    for options; set it yourself (= sizeof) in a stats struct before passing it (for an array,
 *    in its first element: that size is then every element's). New fields are only ever added at
 *    the end, so a caller built against an older, smaller struct keeps working: options past its
 *    size take their defaults, stats past its size are not written. A struct_size of 0, or
 *    larger than the library knows (a newer cuframes.h than the library), fails with
 *    INVALID_ARGUMENT naming the struct. Other structs (geometry, frame info, packets, codec
 *    params, transforms) are fixed: they never change size.
 *  - Strings passed in are copied; strings handed out stay valid for as long as the comment says.
 *  - Every enum ends in a _MAX_ENUM sentinel that only fixes its size (32 bits); it is never a
 *    valid value. Values outside an enum's list are refused with INVALID_ARGUMENT.
 *  - Timeouts are milliseconds: 0 means "do not wait", -1 means "wait forever".
 *  - Times are nanoseconds of CLOCK_MONOTONIC (see cuframes_now_ns()).
 *  - Frame sequence numbers start at 1 and increase by one per published frame; 0 means none.
 *  - Nothing here calls exit(), raises a signal or writes to stdout. Diagnostics about peers go
 *    to the log handler (cuframes_set_log_handler), stderr at WARN and above by default.
 *
 * Runtime directory (where the rendezvous sockets live): the runtime_dir option when set, else
 * $CUFRAMES_RUNTIME_DIR, else /run/cuframes, else $XDG_RUNTIME_DIR/cuframes, else
 * /tmp/cuframes-<euid>; the first one that exists or can be created (mode 01770: group access,
 * sticky) is used.
 */
#ifndef CUFRAMES_CUFRAMES_H_
#define CUFRAMES_CUFRAMES_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CUFRAMES_EXPORT __attribute__((visibility("default")))
#else
#define CUFRAMES_EXPORT
#endif

#include "cuframes/version.h" /* CUFRAMES_VERSION_MAJOR, _MINOR, _PATCH, _STRING */

/* Longest key and consumer name, without the terminating NUL. */
#define CUFRAMES_KEY_MAX 64
#define CUFRAMES_NAME_MAX 63
/* Limits of one ring. */
#define CUFRAMES_MAX_SLOTS 64
#define CUFRAMES_MAX_SUBSCRIBERS 64

/* ---------------------------------------------------------------------------------------------
 * Status codes. One per Python exception class of the cuframes package. */
typedef enum cuframes_status_t {
  CUFRAMES_OK = 0,
  CUFRAMES_ERR_PUBLISHER_GONE = 1,    /* no publisher on the key, or it died / shut down */
  CUFRAMES_ERR_FRAME_TIMEOUT = 2,     /* nothing arrived (or no slot freed) within the timeout */
  CUFRAMES_ERR_DEVICE_LOST = 3,       /* a CUDA failure on the cross-process path */
  CUFRAMES_ERR_SHM = 4,               /* socket, mmap, memfd or IPC failure; corrupt shared data */
  CUFRAMES_ERR_PROTOCOL_MISMATCH = 5, /* the peer speaks another protocol version */
  CUFRAMES_ERR_INVALID_ARGUMENT = 6,  /* a caller bug: bad key, geometry, handle or state */
  CUFRAMES_ERR_OUT_OF_MEMORY = 7,     /* host or device allocation failed */
  CUFRAMES_ERR_INTERNAL = 8,          /* a bug in libcuframes */
  CUFRAMES_ERR_OVERRUN = 9,           /* STRICT_ORDER: the publisher lapped this subscriber */
  CUFRAMES_STATUS_MAX_ENUM = 0x7FFFFFFF
} cuframes_status_t;

/* The calling thread's message for its last failed call ("" if none). Valid until the next
 * cuframes call on the same thread. */
CUFRAMES_EXPORT const char* cuframes_last_error(void);
/* "OK", "PUBLISHER_GONE", ... ; "UNKNOWN" for values outside the enum. Static storage. */
CUFRAMES_EXPORT const char* cuframes_status_name(cuframes_status_t status);

/* "0.5.0". Static storage. */
CUFRAMES_EXPORT const char* cuframes_version_string(void);
/* The socket/shared-memory protocol version spoken by this library. */
CUFRAMES_EXPORT uint32_t cuframes_protocol_version(void);
/* CLOCK_MONOTONIC now, in nanoseconds. */
CUFRAMES_EXPORT int64_t cuframes_now_ns(void);

/* ---------------------------------------------------------------------------------------------
 * Logging. The handler may be called from any thread, including the library's own. */
typedef enum cuframes_log_level_t {
  CUFRAMES_LOG_DEBUG = 0,
  CUFRAMES_LOG_INFO = 1,
  CUFRAMES_LOG_WARN = 2,
  CUFRAMES_LOG_ERROR = 3,
  CUFRAMES_LOG_OFF = 4,
  CUFRAMES_LOG_MAX_ENUM = 0x7FFFFFFF
} cuframes_log_level_t;
typedef void (*cuframes_log_fn)(void* user, cuframes_log_level_t level, const char* message);
/* Replace the process-wide handler (NULL restores the default: stderr), dropping messages below
 * min_level. Thread-safe. The handler is called without any lock held: it may run on several
 * threads at once, may log itself, and may still be called once with its old user pointer just
 * after it was replaced (keep that pointer valid a moment longer). */
CUFRAMES_EXPORT void cuframes_set_log_handler(cuframes_log_fn fn, void* user,
                                              cuframes_log_level_t min_level);

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
  const char* runtime_dir;      /* rendezvous directory; default NULL = resolved (see top) */
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

/* INVALID_ARGUMENT for a bad out->struct_size (see the top) or a NULL argument. */
CUFRAMES_EXPORT cuframes_status_t cuframes_publisher_get_stats(
    const cuframes_publisher_t* publisher, cuframes_publisher_stats_t* out);

/* ---------------------------------------------------------------------------------------------
 * Subscriber: reads one key's frames. */
typedef struct cuframes_subscriber_t cuframes_subscriber_t;
/* A frame held by a subscriber: the publisher never overwrites it until it is released. */
typedef struct cuframes_frame_t cuframes_frame_t;

typedef enum cuframes_mode_t {
  /* next_frame returns the newest frame; frames skipped in between are counted as gaps. */
  CUFRAMES_MODE_NEWEST_ONLY = 0,
  /* next_frame returns every frame in order, starting with the newest one at subscription time;
   * if the publisher has overwritten the next one, it fails once with OVERRUN (counted) and goes
   * on from the oldest frame still in the ring. */
  CUFRAMES_MODE_STRICT_ORDER = 1,
  CUFRAMES_MODE_MAX_ENUM = 0x7FFFFFFF
} cuframes_mode_t;

/* "newest_only", "strict_order"; "invalid" otherwise. Static storage. */
CUFRAMES_EXPORT const char* cuframes_mode_name(cuframes_mode_t mode);

typedef struct cuframes_subscriber_options_t {
  size_t struct_size;         /* sizeof(cuframes_subscriber_options_t); set by _init() */
  const char* runtime_dir;    /* rendezvous directory; default NULL = resolved (see top) */
  const char* consumer_name;  /* [A-Za-z0-9._-]{1,63}; default NULL = "<program>-<pid>" */
  cuframes_mode_t mode;       /* default NEWEST_ONLY */
  int32_t cuda_device;        /* cuda rings: device to import the ring on; default 0 */
  int32_t connect_timeout_ms; /* wait this long for the publisher to appear; default -1. (Its
                                 handshake reply then has up to 5 s of its own.) */
  void* consumer_stream;      /* cuda rings: cudaStream_t the frames are consumed on; releases
                                 take effect once work queued on it has finished; default NULL
                                 = the default stream */
  uint32_t spin_us;           /* default 0: next_frame sleeps until the publisher's note wakes
                                 it. Otherwise it sleeps until spin_us before the next frame is
                                 expected (from the publisher's cadence) and busy-waits from
                                 there to spin_us after: lower latency where waking a sleeping
                                 CPU is slow (VMs), for up to 2*spin_us of CPU per frame.
                                 Microseconds, at most 10000 */
} cuframes_subscriber_options_t;

CUFRAMES_EXPORT void cuframes_subscriber_options_init(cuframes_subscriber_options_t* options);

/* Attaches to the key's publisher. Fails with PUBLISHER_GONE if none appears within
 * connect_timeout_ms, PROTOCOL_MISMATCH if it speaks another version, SHM if the handshake or
 * the shared memory is bad or the subscriber table is full. */
CUFRAMES_EXPORT cuframes_status_t cuframes_subscriber_create(
    const char* key, const cuframes_subscriber_options_t* options, cuframes_subscriber_t** out);
/* Destroys the handle. Frames still held stay valid until released: the subscriber stays
 * attached (table entry, socket) until its last frame is released. May be called from inside its
 * own frame callback (the destruction then completes when the callback returns). */
CUFRAMES_EXPORT void cuframes_subscriber_destroy(cuframes_subscriber_t* subscriber);

/* The subscriber's readiness fd, for poll/epoll/asyncio: readable when a frame may be available
 * or the publisher is gone, and it stays readable until next_frame(0) has found nothing. So on
 * each readiness call next_frame(0) until it fails with FRAME_TIMEOUT (or another error). Never
 * read from the fd yourself. Owned by the subscriber. */
CUFRAMES_EXPORT int cuframes_subscriber_fd(const cuframes_subscriber_t* subscriber);

/* Waits up to timeout_ms for a frame (see cuframes_mode_t) and holds it. Fails with
 * FRAME_TIMEOUT, PUBLISHER_GONE (at once once the publisher has gone), OVERRUN, SHM. */
CUFRAMES_EXPORT cuframes_status_t cuframes_subscriber_next(cuframes_subscriber_t* subscriber,
                                                           int timeout_ms, cuframes_frame_t** out);

/* cuframes_subscriber_next for callers that wait in slices (to handle signals or a stop flag
 * between them): the same wait, spin_us included, but a slice that ends without a frame is not
 * counted as a timeout. Count the whole wait once with cuframes_subscriber_note_timeout when it
 * gives up. */
CUFRAMES_EXPORT cuframes_status_t cuframes_subscriber_next_slice(cuframes_subscriber_t* subscriber,
                                                                 int timeout_ms,
                                                                 cuframes_frame_t** out);

CUFRAMES_EXPORT void cuframes_frame_get_info(const cuframes_frame_t* frame,
                                             cuframes_frame_info_t* out);
/* Drops the hold and frees the handle; may be called from any thread. Host rings: at once.
 * Cuda rings: once the work queued on the consumer stream before this call has finished (the
 * stream given here, or the subscriber's consumer_stream when NULL). Fails with DEVICE_LOST if
 * that cannot be arranged; the hold is then dropped at once and the handle freed anyway. */
CUFRAMES_EXPORT cuframes_status_t cuframes_frame_release(cuframes_frame_t* frame,
                                                         void* cuda_stream);

/* A subscriber's counters as kept in the publisher's shared subscriber table. */
typedef struct cuframes_subscriber_stats_t {
  size_t struct_size; /* sizeof(cuframes_subscriber_stats_t): set by the caller */
  char name[CUFRAMES_NAME_MAX + 1];
  int32_t pid; /* as the subscriber reported it (its own PID namespace) */
  cuframes_mode_t mode;
  uint64_t frames_received; /* frames handed out by next_frame */
  uint64_t timeouts;        /* next_frame calls that timed out */
  uint64_t errors;          /* next_frame calls that failed otherwise (OVERRUN included) */
  uint64_t gaps;            /* frames published but never handed to this subscriber */
  uint64_t overruns;        /* STRICT_ORDER laps */
  uint64_t last_seq;        /* seq of the last frame handed out; 0 before the first */
  int64_t last_frame_pts_ns;
  int64_t last_latency_ns; /* publish -> next_frame of the last frame */
  int64_t heartbeat_ns;    /* last time the subscriber called next_frame */
  int64_t attached_ns;     /* when it attached */
  uint64_t lag;            /* newest published seq - last_seq */
  uint32_t held_frames;    /* frames it holds right now */
  uint32_t slot_index;     /* its entry in the subscriber table */
} cuframes_subscriber_stats_t;

/* INVALID_ARGUMENT for a bad out->struct_size (see the top) or a NULL argument. */
CUFRAMES_EXPORT cuframes_status_t cuframes_subscriber_get_stats(
    const cuframes_subscriber_t* subscriber, cuframes_subscriber_stats_t* out);
/* For callers that wait on the fd themselves (epoll, asyncio): counts one wait that timed out in
 * the subscriber's stats, as next_frame does when its own timeout expires. Calls with timeout 0
 * never count. */
CUFRAMES_EXPORT void cuframes_subscriber_note_timeout(cuframes_subscriber_t* subscriber);
/* The resolved consumer name. Valid for the subscriber's life. */
CUFRAMES_EXPORT const char* cuframes_subscriber_name(const cuframes_subscriber_t* subscriber);
CUFRAMES_EXPORT void cuframes_subscriber_get_geometry(const cuframes_subscriber_t* subscriber,
                                                      cuframes_geometry_t* out);
CUFRAMES_EXPORT cuframes_memory_t cuframes_subscriber_memory(const cuframes_subscriber_t* sub);

/* Callback delivery on a thread of the library's own. The callback gets each frame (it owns it
 * and must release it, from any thread) with status OK, or frame NULL and the failure status
 * (OVERRUN, PUBLISHER_GONE, SHM, ...; timeouts are not reported). After any failure but OVERRUN
 * the thread ends. While it runs, next_frame fails with INVALID_ARGUMENT. stop joins the thread
 * (a no-op when none runs); called from inside the callback it only ends the loop, and a later
 * stop or destroy joins it. */
typedef void (*cuframes_frame_callback_t)(void* user, cuframes_frame_t* frame,
                                          cuframes_status_t status);
CUFRAMES_EXPORT cuframes_status_t cuframes_subscriber_start_callback(
    cuframes_subscriber_t* subscriber, cuframes_frame_callback_t callback, void* user);
CUFRAMES_EXPORT void cuframes_subscriber_stop_callback(cuframes_subscriber_t* subscriber);

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

/* ---------------------------------------------------------------------------------------------
 * Observer: reads a publisher's ring state and subscriber table without subscribing (the
 * service's health monitor and the CLI). Takes no table entry and holds no frames. */
typedef struct cuframes_observer_t cuframes_observer_t;

typedef struct cuframes_ring_status_t {
  size_t struct_size; /* sizeof(cuframes_ring_status_t): set by the caller */
  char key[CUFRAMES_KEY_MAX + 1];
  uint64_t epoch;        /* random per publisher instance */
  int32_t publisher_pid; /* as the publisher reported it */
  cuframes_memory_t memory;
  int32_t device; /* -1 for host rings */
  cuframes_policy_t policy;
  cuframes_geometry_t geometry;
  cuframes_publisher_stats_t stats; /* its struct_size is set by the library */
  int64_t created_ns;
  uint32_t max_subscribers;
  uint32_t has_packet_ring; /* 1 if the publisher also carries encoded packets */
  char transport[16];       /* how the frame memory is shared: "memfd" (host),
                               "cuda-vmm-fd" (CUDA VMM allocation exported as an fd),
                               "cuda-ipc" (legacy cudaIpcMemHandle fallback) */
} cuframes_ring_status_t;

CUFRAMES_EXPORT cuframes_status_t cuframes_observer_create(const char* key, const char* runtime_dir,
                                                           int connect_timeout_ms,
                                                           cuframes_observer_t** out);
CUFRAMES_EXPORT void cuframes_observer_destroy(cuframes_observer_t* observer);
/* Snapshot: the ring status, and up to capacity attached subscribers into subs (may be NULL
 * with capacity 0; else subs[0].struct_size gives every element's size); *count (may be NULL)
 * gets how many are attached. PUBLISHER_GONE once the publisher has gone. */
CUFRAMES_EXPORT cuframes_status_t cuframes_observer_read(cuframes_observer_t* observer,
                                                         cuframes_ring_status_t* ring,
                                                         cuframes_subscriber_stats_t* subs,
                                                         size_t capacity, size_t* count);
/* The ring's status as seen from a subscriber: publisher counters (published, dropped), occupancy
 * (held_slots over all subscribers), geometry. Valid after PUBLISHER_GONE too (the last state). */
CUFRAMES_EXPORT cuframes_status_t cuframes_subscriber_get_ring_status(
    const cuframes_subscriber_t* subscriber, cuframes_ring_status_t* out);
/* The subscriber table from the publisher's own handle (no socket round trip); subs and count as
 * for cuframes_observer_read. */
CUFRAMES_EXPORT cuframes_status_t cuframes_publisher_read_subscribers(
    const cuframes_publisher_t* publisher, cuframes_subscriber_stats_t* subs, size_t capacity,
    size_t* count);

/* ---------------------------------------------------------------------------------------------
 * The runtime directory that runtime_dir (NULL: the rule at the top) names, as a peer resolves
 * it: only looking, nothing is created (a publisher creates it). Written NUL-terminated into out
 * (cap bytes; CUFRAMES_PATH_MAX is enough); *exists, if not NULL, is 1 when it is there, else 0
 * (no publisher has made it yet). INVALID_ARGUMENT when cap is too small, SHM when it exists but
 * cannot be used. */
#define CUFRAMES_PATH_MAX 4096
CUFRAMES_EXPORT cuframes_status_t cuframes_runtime_dir(const char* runtime_dir, char* out,
                                                       size_t cap, int* exists);
/* The same directory as a publisher resolves it: made (mode 01770) when missing. For programs
 * that keep files of their own beside the rings (cuframes-service's status file). INVALID_ARGUMENT
 * when cap is too small, SHM when it cannot be made or used. */
CUFRAMES_EXPORT cuframes_status_t cuframes_runtime_dir_create(const char* runtime_dir, char* out,
                                                              size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Live publishers in a runtime directory (NULL = resolved, looking only: a directory that is not
 * there has none, and is not created). */
typedef struct cuframes_key_list_t cuframes_key_list_t;
CUFRAMES_EXPORT cuframes_status_t cuframes_list_publishers(const char* runtime_dir,
                                                           cuframes_key_list_t** out);
CUFRAMES_EXPORT size_t cuframes_key_list_size(const cuframes_key_list_t* list);
/* Sorted; valid until the list is destroyed. */
CUFRAMES_EXPORT const char* cuframes_key_list_get(const cuframes_key_list_t* list, size_t index);
CUFRAMES_EXPORT void cuframes_key_list_destroy(cuframes_key_list_t* list);

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

#endif /* CUFRAMES_CUFRAMES_H_ */
