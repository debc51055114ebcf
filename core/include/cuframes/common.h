/* cuframes/common.h: what every part shares: the export macro, the version, the limits of a key and
 * a ring, status codes and the thread's last error, the clock, logging.
 * Part of the C ABI of <cuframes/cuframes.h> (include that one): the rules at its top hold
 * for every declaration here. */
#ifndef CUFRAMES_COMMON_H_
#define CUFRAMES_COMMON_H_

#include <stddef.h>
#include <stdint.h>

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

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CUFRAMES_COMMON_H_ */
