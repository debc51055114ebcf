/* cuframes/subscriber.h: the subscriber: one key's frames, held until released; its counters and
 * callback delivery.
 * Part of the C ABI of <cuframes/cuframes.h> (include that one): the rules at its top hold
 * for every declaration here. */
#ifndef CUFRAMES_SUBSCRIBER_H_
#define CUFRAMES_SUBSCRIBER_H_

#include "cuframes/common.h"
#include "cuframes/frame.h"

#ifdef __cplusplus
extern "C" {
#endif

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
  const char* runtime_dir;    /* rendezvous directory; default NULL = resolved (see cuframes.h) */
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
  /* Called on the waiting thread each time a spin window opens with no frame there yet (after
     the sleep before it, before the busy-wait), or at warm_us's wake-up, with spin_warm_arg. A
     place to touch what the caller needs once the frame comes, whose caches went cold while the
     thread slept (the Python binding takes its GIL there once). It must not call this
     subscriber. A frame that arrives meanwhile is seen when it returns. Default NULL */
  void (*spin_warm)(void* arg);
  void* spin_warm_arg;
  /* Default 0. Otherwise, with spin_us 0, next_frame sleeping for a frame wakes once warm_us
     before it is expected (from the publisher's cadence), looks, calls spin_warm (if set), and
     sleeps again until the publisher's note: the caller's caches warm when the frame comes, and
     the CPU wakes from a short sleep, for one more wake-up per frame and no busy-wait.
     Microseconds, at most 10000 */
  uint32_t warm_us;
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

/* INVALID_ARGUMENT for a bad out->struct_size (see cuframes.h) or a NULL argument. */
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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CUFRAMES_SUBSCRIBER_H_ */
