// The shared-memory layout of a ring (protocol version kProtocolVersion). docs/protocol.md is the
// prose version of this file; change both together and bump kProtocolVersion on any change.
//
// Each region is a memfd passed over the socket. Who can write what (docs/protocol.md 4, 11):
//  - RingHeader: identity, geometry, publisher counters and the slot table. Written only by the
//    publisher; sealed F_SEAL_FUTURE_WRITE, so every peer can map it read-only and nothing else.
//  - Table: TableHeader, then one EntryView per subscriber index: who is attached, and a copy of
//    each subscriber's counters that the publisher refreshes for observers. Written only by the
//    publisher, sealed F_SEAL_FUTURE_WRITE like the header.
//  - SubscriberEntry: one memfd per attached subscriber, made at its attach and shared with that
//    subscriber alone: its holds, cursor, `waiting` flag and counters. The only memory a peer can
//    write, so a subscriber can hurt only itself; the publisher validates what it reads there.
//  - The frame memory (host memfd or CUDA allocation): slot i at i * slot_stride.
//
// Every field shared across processes is a lock-free std::atomic; immutable fields are written
// before the first peer can attach and read relaxed.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "cuframes/cuframes.h"

namespace cuframes::detail {

template <class T>
using Shared = std::atomic<T>;
static_assert(Shared<uint64_t>::is_always_lock_free && Shared<int64_t>::is_always_lock_free);
static_assert(Shared<uint32_t>::is_always_lock_free && Shared<int32_t>::is_always_lock_free);

template <class T>
inline T rd(const Shared<T>& a) {
  return a.load(std::memory_order_relaxed);
}
template <class T, class V>
inline void wr(Shared<T>& a, V v) {
  a.store(static_cast<T>(v), std::memory_order_relaxed);
}

constexpr uint32_t kProtocolVersion = 3;
constexpr uint64_t kRingMagic = 0x31474e4952464375ull;    // "uCFRING1"
constexpr uint64_t kTableMagic = 0x3142415446524375ull;   // "uCRFTAB1"
constexpr uint64_t kPacketMagic = 0x3154454b43415075ull;  // "uPACKET1"
constexpr uint64_t kEntryMagic = 0x3159544e45524375ull;   // "uCRENTY1"
constexpr uint32_t kMaxSlots = CUFRAMES_MAX_SLOTS;
constexpr uint32_t kMaxSubscribers = CUFRAMES_MAX_SUBSCRIBERS;
constexpr uint64_t kSlotAlignment = 4096;    // slot stride alignment, bytes
constexpr uint64_t kRegionAlignment = 4096;  // header/table region sizes are page multiples
static_assert(kMaxSlots <= 64, "holds are one 64-bit mask per subscriber");

// SlotState::seq values besides a published seq (1 .. 2^56-1):
constexpr uint64_t kSeqEmpty = 0;
constexpr uint64_t kSeqClaimBit = 1ull << 63;  // | old seq: publisher is checking for holds; it
                                               // either restores the old seq or goes on writing
constexpr uint64_t kSeqWriting = 1ull << 62;   // content being replaced
constexpr uint64_t kSeqMax = (1ull << 56) - 1;

// RingHeader::newest packs (seq << 8) | slot; 0 before the first frame.
inline uint64_t pack_newest(uint64_t seq, uint32_t slot) {
  return (seq << 8) | slot;
}
inline uint64_t newest_seq(uint64_t packed) {
  return packed >> 8;
}
inline uint32_t newest_slot(uint64_t packed) {
  return static_cast<uint32_t>(packed & 0xff);
}

struct alignas(64) SlotState {
  Shared<uint64_t> seq;           // see above
  Shared<int64_t> pts_ns;         // valid while seq is a published seq
  Shared<int64_t> publish_ns;     // CLOCK_MONOTONIC at publication
  Shared<uint32_t> color_matrix;  // cuframes_color_matrix_t of the frame (like pts_ns)
  Shared<uint32_t> color_range;   // cuframes_color_range_t of the frame (like pts_ns)
};
static_assert(sizeof(SlotState) == 64);

struct RingHeader {
  // identity (immutable)
  Shared<uint64_t> magic;
  Shared<uint32_t> version;
  Shared<uint32_t> header_bytes;  // size of this region
  Shared<uint64_t> epoch;         // random per publisher instance
  Shared<int32_t> publisher_pid;
  Shared<uint32_t> reserved0;
  Shared<int64_t> created_ns;
  Shared<uint64_t> key[9];  // NUL-padded, CUFRAMES_KEY_MAX bytes at most
  // geometry (immutable)
  Shared<uint32_t> format, width, height, bytes_per_sample, num_planes;
  Shared<uint32_t> pitch_y, pitch_uv, height_uv;
  Shared<uint64_t> offset_y, offset_uv, frame_bytes;
  Shared<uint64_t> slot_stride, ring_bytes;
  Shared<uint32_t> slot_count, max_subscribers;
  Shared<uint32_t> memory_kind;        // cuframes_memory_t
  Shared<uint32_t> handle_type;        // HandleType of the frame memory
  Shared<int32_t> device;              // CUDA device of the ring, -1 for host
  Shared<uint32_t> policy;             // cuframes_policy_t
  Shared<uint64_t> packet_ring_bytes;  // 0 = no packet ring
  // publisher counters
  alignas(64) Shared<uint64_t> newest;  // pack_newest(seq, slot) of the newest frame
  Shared<uint64_t> published;
  Shared<uint64_t> dropped;
  Shared<uint64_t> blocked_ns;
  Shared<int64_t> last_publish_ns;
  Shared<uint32_t> subscribers;  // attached right now
  // 1 while the producer is blocked in STRICT_WAIT (stored seq_cst): a subscriber that drops a
  // hold meanwhile sends a wake-up on its own socket.
  Shared<uint32_t> publisher_waiting;
  alignas(64) SlotState slots[kMaxSlots];
};

enum : uint32_t { kEntryFree = 0, kEntryActive = 1 };

// A subscriber's counters, by index: kept by the subscriber in its own entry, copied by the
// publisher into the table for observers. Times are int64 nanoseconds stored as uint64.
enum Counter : uint32_t {
  kFramesReceived,  // frames handed out
  kTimeouts,        // next_frame calls that timed out (timeout != 0), plus note_timeout calls
  kErrors,          // next_frame calls that failed otherwise
  kGaps,            // frames published but never handed out
  kOverruns,        // OVERRUN results
  kLastSeq,         // seq of the last frame handed out
  kLastFramePtsNs,  // its pts_ns
  kLastLatencyNs,   // handed out minus publish_ns
  kHeartbeatNs,     // every pass of next_frame's wait loop
  kCounterCount
};
struct SubscriberCounters {
  Shared<uint64_t> v[kCounterCount];
};

struct TableHeader {
  Shared<uint64_t> magic;
  Shared<uint32_t> version;
  Shared<uint32_t> entries;     // == RingHeader::max_subscribers
  Shared<uint64_t> epoch;       // == RingHeader::epoch
  Shared<int64_t> mirrored_ns;  // when the publisher last copied the counters into the views
};

// Table entry i: subscriber index i as the publisher sees it. Written only by the publisher.
struct alignas(64) EntryView {
  // at attach / detach
  Shared<uint32_t> state;       // kEntryFree / kEntryActive
  Shared<uint32_t> generation;  // bumped at every attach and detach
  Shared<int32_t> pid;
  Shared<uint32_t> mode;  // cuframes_mode_t
  Shared<int64_t> attached_ns;
  Shared<uint64_t> name[8];  // NUL-padded consumer name
  // copied from the subscriber's own entry (holds masked to the ring's slots) at every claim of
  // a slot and whenever an observer asks
  alignas(64) Shared<uint64_t> holds;
  SubscriberCounters counters;
};

// A subscriber's own entry: a memfd of kEntryRegionBytes shared by the publisher and that one
// subscriber.
struct SubscriberEntry {
  // written by the publisher when it makes the entry; the subscriber checks them at attach
  Shared<uint64_t> magic;       // kEntryMagic
  Shared<uint32_t> version;     // kProtocolVersion
  Shared<uint32_t> index;       // == Welcome::entry_index
  Shared<uint64_t> epoch;       // == RingHeader::epoch
  Shared<uint32_t> generation;  // == Welcome::entry_generation
  // written by the subscriber (the publisher initialises them)
  alignas(64) Shared<uint64_t> holds;  // bit s: slot s is held
  Shared<uint64_t> cursor;             // STRICT_ORDER: seq of the last frame consumed
  // 1 while the subscriber may wait on its socket (stored seq_cst before its last look at the
  // ring), 0 while it has frames to take or busy-waits: kind-1 Notes go only where it is 1.
  Shared<uint32_t> waiting;
  alignas(64) SubscriberCounters counters;
};

constexpr uint64_t region_bytes(uint64_t n) {
  return (n + kRegionAlignment - 1) / kRegionAlignment * kRegionAlignment;
}
constexpr uint64_t header_region_bytes() {
  return region_bytes(sizeof(RingHeader));
}
// The table header has the first 4 KiB; the views follow.
constexpr uint64_t kTableViewsOffset = 4096;
static_assert(sizeof(TableHeader) <= kTableViewsOffset);
constexpr uint64_t table_region_bytes(uint32_t entries) {
  return region_bytes(kTableViewsOffset + uint64_t{entries} * sizeof(EntryView));
}
inline EntryView* table_view(TableHeader* t, uint32_t i) {
  return reinterpret_cast<EntryView*>(reinterpret_cast<uint8_t*>(t) + kTableViewsOffset) + i;
}
inline const EntryView* table_view(const TableHeader* t, uint32_t i) {
  return reinterpret_cast<const EntryView*>(reinterpret_cast<const uint8_t*>(t) +
                                            kTableViewsOffset) +
         i;
}
constexpr uint64_t kEntryRegionBytes = region_bytes(sizeof(SubscriberEntry));

// Strings kept in arrays of atomic words.
template <size_t N>
void store_string(Shared<uint64_t> (&words)[N], std::string_view s) {
  char buf[N * 8] = {};
  for (size_t i = 0; i < s.size() && i < N * 8 - 1; ++i) buf[i] = s[i];
  for (size_t i = 0; i < N; ++i) {
    uint64_t w = 0;
    for (size_t b = 0; b < 8; ++b) w |= uint64_t{static_cast<uint8_t>(buf[i * 8 + b])} << (8 * b);
    wr(words[i], w);
  }
}
// Reads at most max characters, stopping at NUL; non-printable bytes become '?'.
template <size_t N>
std::string load_string(const Shared<uint64_t> (&words)[N], size_t max) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    uint64_t w = rd(words[i]);
    for (size_t b = 0; b < 8; ++b) {
      char c = static_cast<char>((w >> (8 * b)) & 0xff);
      if (c == '\0' || out.size() >= max) return out;
      out.push_back(c > 0x20 && c < 0x7f ? c : '?');
    }
  }
  return out;
}

cuframes_geometry_t read_geometry(const RingHeader& h);
void write_geometry(RingHeader& h, const cuframes_geometry_t& g);

// Copies every counter from `from` to `to`.
void copy_counters(const SubscriberCounters& from, SubscriberCounters* to);

// A consistent snapshot of subscriber `index`: its identity from its table view, its counters and
// holds from `counters` and `holds` (its own entry, or the view's copy). False if the view is free
// or changed while read.
bool read_entry(const EntryView& view, const SubscriberCounters& counters, uint64_t holds,
                uint32_t index, uint64_t newest_published_seq, uint64_t slot_mask,
                cuframes_subscriber_stats_t* out);

}  // namespace cuframes::detail
