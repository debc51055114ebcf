// The shared-memory layout of a ring (protocol version kProtocolVersion). docs/protocol.md is the
// prose version of this file; change both together and bump kProtocolVersion on any change.
//
// Three regions, each a memfd passed over the socket:
//  - RingHeader: identity, geometry, publisher counters and the slot table. Written only by the
//    publisher; peers map it read-only (sealed F_SEAL_FUTURE_WRITE).
//  - Table: TableHeader, then one 64 KiB block per SubscriberEntry. A subscriber maps the table
//    read-only and only its own entry's page read-write, so a wild write cannot reach another
//    subscriber's entry. The publisher still validates everything it reads from the table.
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
inline T rd(const Shared<T>& a) { return a.load(std::memory_order_relaxed); }
template <class T, class V>
inline void wr(Shared<T>& a, V v) { a.store(static_cast<T>(v), std::memory_order_relaxed); }

constexpr uint32_t kProtocolVersion = 2;
constexpr uint64_t kRingMagic = 0x31474e4952464375ull;    // "uCFRING1"
constexpr uint64_t kTableMagic = 0x3142415446524375ull;   // "uCRFTAB1"
constexpr uint64_t kPacketMagic = 0x3154454b43415075ull;  // "uPACKET1"
constexpr uint32_t kMaxSlots = CUFRAMES_MAX_SLOTS;
constexpr uint32_t kMaxSubscribers = CUFRAMES_MAX_SUBSCRIBERS;
constexpr uint64_t kSlotAlignment = 4096;   // slot stride alignment, bytes
constexpr uint64_t kRegionAlignment = 4096; // header/table region sizes are page multiples
static_assert(kMaxSlots <= 64, "holds are one 64-bit mask per subscriber");

// SlotState::seq values besides a published seq (1 .. 2^56-1):
constexpr uint64_t kSeqEmpty = 0;
constexpr uint64_t kSeqClaimBit = 1ull << 63;  // | old seq: publisher is checking for holds; it
                                               // either restores the old seq or goes on writing
constexpr uint64_t kSeqWriting = 1ull << 62;   // content being replaced
constexpr uint64_t kSeqMax = (1ull << 56) - 1;

// RingHeader::newest packs (seq << 8) | slot; 0 before the first frame.
inline uint64_t pack_newest(uint64_t seq, uint32_t slot) { return (seq << 8) | slot; }
inline uint64_t newest_seq(uint64_t packed) { return packed >> 8; }
inline uint32_t newest_slot(uint64_t packed) { return static_cast<uint32_t>(packed & 0xff); }

struct alignas(64) SlotState {
  Shared<uint64_t> seq;         // see above
  Shared<int64_t> pts_ns;       // valid while seq is a published seq
  Shared<int64_t> publish_ns;   // CLOCK_MONOTONIC at publication
};

struct RingHeader {
  // identity (immutable)
  Shared<uint64_t> magic;
  Shared<uint32_t> version;
  Shared<uint32_t> header_bytes;   // size of this region
  Shared<uint64_t> epoch;          // random per publisher instance
  Shared<int32_t> publisher_pid;
  Shared<uint32_t> reserved0;
  Shared<int64_t> created_ns;
  Shared<uint64_t> key[9];         // NUL-padded, CUFRAMES_KEY_MAX bytes at most
  // geometry (immutable)
  Shared<uint32_t> format, width, height, bytes_per_sample, num_planes;
  Shared<uint32_t> pitch_y, pitch_uv, height_uv;
  Shared<uint64_t> offset_y, offset_uv, frame_bytes;
  Shared<uint64_t> slot_stride, ring_bytes;
  Shared<uint32_t> slot_count, max_subscribers;
  Shared<uint32_t> memory_kind;    // cuframes_memory_t
  Shared<uint32_t> handle_type;    // HandleType of the frame memory
  Shared<int32_t> device;          // CUDA device of the ring, -1 for host
  Shared<uint32_t> policy;         // cuframes_policy_t
  Shared<uint64_t> packet_ring_bytes;  // 0 = no packet ring
  // publisher counters
  alignas(64) Shared<uint64_t> newest;  // pack_newest(seq, slot) of the newest frame
  Shared<uint64_t> published;
  Shared<uint64_t> dropped;
  Shared<uint64_t> blocked_ns;
  Shared<int64_t> last_publish_ns;
  Shared<uint32_t> subscribers;    // attached right now
  alignas(64) SlotState slots[kMaxSlots];
};

enum : uint32_t { kEntryFree = 0, kEntryActive = 1 };

struct TableHeader {
  Shared<uint64_t> magic;
  Shared<uint32_t> version;
  Shared<uint32_t> entries;        // == RingHeader::max_subscribers
  Shared<uint64_t> epoch;          // == RingHeader::epoch
  // Set by a publisher blocked in STRICT_WAIT; a subscriber that drops a hold while it is set
  // sends a note on its own socket, which wakes the publisher.
  alignas(64) Shared<uint32_t> publisher_waiting;
};

struct alignas(64) SubscriberEntry {
  // written by the publisher (at attach / detach)
  Shared<uint32_t> state;          // kEntryFree / kEntryActive
  Shared<uint32_t> generation;     // bumped at every attach and detach
  Shared<int32_t> pid;
  Shared<uint32_t> mode;           // cuframes_mode_t
  Shared<int64_t> attached_ns;
  Shared<uint64_t> name[8];        // NUL-padded consumer name
  // written by the subscriber (the publisher initialises them at attach)
  alignas(64) Shared<uint64_t> holds;   // bit s: slot s is held
  Shared<uint64_t> cursor;              // STRICT_ORDER: seq of the last frame consumed
  // 1 while the subscriber may wait on its socket (stored seq_cst before its last look at the
  // ring), 0 while it has frames to take or busy-waits: kind-1 Notes go only where it is 1.
  Shared<uint32_t> waiting;
  alignas(64) Shared<uint64_t> frames_received;
  Shared<uint64_t> timeouts, errors, gaps, overruns, last_seq;
  Shared<int64_t> last_frame_pts_ns, last_latency_ns, heartbeat_ns;
};

constexpr uint64_t region_bytes(uint64_t n) {
  return (n + kRegionAlignment - 1) / kRegionAlignment * kRegionAlignment;
}
constexpr uint64_t header_region_bytes() { return region_bytes(sizeof(RingHeader)); }
// The table header fills the first 64 KiB; entry i follows at i * kEntryStride. 64 KiB is a
// multiple of every Linux page size (4K, 16K, 64K), so each entry can be mapped on its own.
// Pages nobody touches cost no memory.
constexpr uint64_t kEntryStride = 64 * 1024;
constexpr uint64_t kTableEntriesOffset = kEntryStride;
static_assert(sizeof(TableHeader) <= kTableEntriesOffset);
static_assert(sizeof(SubscriberEntry) <= kEntryStride);
constexpr uint64_t entry_offset(uint32_t i) { return kTableEntriesOffset + i * kEntryStride; }
constexpr uint64_t table_region_bytes(uint32_t entries) { return entry_offset(entries); }
inline SubscriberEntry* table_entry(TableHeader* t, uint32_t i) {
  return reinterpret_cast<SubscriberEntry*>(reinterpret_cast<uint8_t*>(t) + entry_offset(i));
}
inline const SubscriberEntry* table_entry(const TableHeader* t, uint32_t i) {
  return reinterpret_cast<const SubscriberEntry*>(reinterpret_cast<const uint8_t*>(t) +
                                                  entry_offset(i));
}

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

// An entry's counters as the subscriber wrote them.
void entry_stats(const SubscriberEntry& e, uint32_t index, uint64_t newest_published_seq,
                 uint64_t slot_mask, cuframes_subscriber_stats_t* out);
// A consistent snapshot of one active entry (false if it is free or changed while read).
bool read_entry(const SubscriberEntry& e, uint32_t index, uint64_t newest_published_seq,
                uint64_t slot_mask, cuframes_subscriber_stats_t* out);

}  // namespace cuframes::detail
