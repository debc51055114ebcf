/* cuframes: decoded camera frames shared zero-copy between processes.
 *
 * A publisher owns a key ("cam-parking", [A-Za-z0-9._-]{1,64}) and a ring of frame slots in
 * host or CUDA memory. Any number of subscribers in other processes (or containers that share
 * the runtime directory) read the frames without copying them.
 *
 * Rules of this C ABI (they hold for every function of the headers included below):
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

/* One header per concept; this one includes them all (each also compiles on its own). */
#include "cuframes/common.h"     /* export macro, version, limits, status, clock, logging */
#include "cuframes/frame.h"      /* formats, colour, memory kinds, geometry, frame info */
#include "cuframes/observer.h"   /* ring status and subscriber table without subscribing */
#include "cuframes/packet.h"     /* the packet ring: encoded stream beside the frames */
#include "cuframes/preprocess.h" /* frames to a model-ready batch */
#include "cuframes/publisher.h"  /* publisher, loans, copies in, publisher stats */
#include "cuframes/runtime.h"    /* the runtime directory and its live publishers */
#include "cuframes/subscriber.h" /* subscriber, frames, subscriber stats, callbacks */

#endif /* CUFRAMES_CUFRAMES_H_ */
