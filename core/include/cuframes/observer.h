/* cuframes/observer.h: a ring's state and subscriber table, read without subscribing.
 * Part of the C ABI of <cuframes/cuframes.h> (include that one): the rules at its top hold
 * for every declaration here. */
#ifndef CUFRAMES_OBSERVER_H_
#define CUFRAMES_OBSERVER_H_

#include "cuframes/common.h"
#include "cuframes/frame.h"
#include "cuframes/publisher.h"
#include "cuframes/subscriber.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CUFRAMES_OBSERVER_H_ */
