// The publisher's server (publisher_server.cc): the contract between it and the producer side
// (publisher.cc). Both are members of Publisher (publisher.h); this header states who owns what.
//
// One service thread per publisher, started by Publisher::init and joined by ~Publisher (a write
// to stop_fd_ ends it). On that thread, and nowhere else:
//  - accept: connections on the key's socket (listen_fd_), at most kMaxPending waiting for their
//    hello (when full, those whose hello is already there are answered first, then the oldest
//    silent one makes room), each closed after kHandshakeTimeoutMs of silence; accepting pauses
//    kAcceptPauseMs when the process is out of fds or memory;
//  - handshake: one Hello per connection (wire.h), answered with a Welcome carrying the ring's fds,
//    or a Welcome with a failure status and a message naming what is wrong (another protocol
//    version, a malformed Hello, an unknown role or mode, a bad consumer name, a full subscriber
//    table, kMaxObservers / kMaxPacketReaders reached); garbage (no preamble, bad magic) is
//    logged and closed without a reply;
//  - per-peer connection handling: a subscriber gets its own table entry (make_entry: a memfd
//    mapped at entries_window_ + index * kEntryWindowStride); any message from it wakes a producer
//    blocked in STRICT_WAIT (producer_wake_); an observer's refresh Note is answered after
//    mirror_entries copied every entry's holds and counters into the table; a hang-up frees the
//    peer's entry and its holds (release_entry), which also wakes the producer;
//  - deferred wake-ups: notify() (producer thread) sends at most kDirectNotes Notes to sleeping
//    subscribers per publication and leaves the rest to send_deferred_notes (an entry bit each in
//    deferred_notes_, the seq in deferred_seq_, notes_wake_ to wake this thread), which reads
//    peers_ without peers_mu_ as the only thread that changes it.
// Shared with the producer thread: peers_ (the server adds and removes peers under peers_mu_,
// notify() reads them under it), active_entries_ / strict_entries_ (atomics: whose holds count),
// the entries' shared memory (holds read by the producer with seq_cst, see publisher.cc's slot
// selection), producer_wake_ and the deferred wake-ups above. Everything else the server touches
// is its own.
#pragma once

#include <cstddef>
#include <cstdint>

#include "layout.h"

namespace cuframes::detail {

constexpr int kHandshakeTimeoutMs = 2000;
constexpr size_t kMaxPending = 32;
constexpr size_t kMaxObservers = 64;
constexpr size_t kMaxPacketReaders = 64;
constexpr int kAcceptPauseMs = 100;
// Sleeping subscribers the producer wakes itself per publication (notify); the service thread
// wakes the others: a send() each would make publish() grow with the subscriber count.
constexpr int kDirectNotes = 4;
// Subscriber i's entry is mapped at entries_window_ + i * kEntryWindowStride: 64 KiB, a multiple
// of every Linux page size, so each one can be replaced on its own with MAP_FIXED.
constexpr uint64_t kEntryWindowStride = 64 * 1024;
static_assert(kEntryRegionBytes <= kEntryWindowStride);

}  // namespace cuframes::detail
