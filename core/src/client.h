// The peer side of the rendezvous, shared by subscribers, observers and packet readers: connect
// (waiting for the publisher to appear), handshake, and validation of what the publisher sent.
#pragma once

#include <string>
#include <vector>

#include "fd.h"
#include "layout.h"
#include "shm.h"
#include "status.h"
#include "wire.h"

namespace cuframes::detail {

struct Connection {
  UniqueFd sock;
  Welcome welcome{};
  std::vector<UniqueFd> fds;
};

// Connects to key's socket in dir, waiting up to timeout_ms for a publisher to appear, sends
// hello and returns the publisher's Welcome with its fds. PUBLISHER_GONE when nobody is there,
// PROTOCOL_MISMATCH for another protocol, the publisher's own status when it refused us.
Status connect_to_publisher(const std::string& dir, const std::string& key, const Hello& hello,
                            int timeout_ms, Connection* out);

Hello make_hello(Role role);

// What a peer learned (and checked) from a ring header.
struct RingInfo {
  std::string key;
  uint64_t epoch = 0;
  int32_t publisher_pid = 0;
  int64_t created_ns = 0;
  cuframes_geometry_t geometry{};
  uint32_t slot_count = 0;
  uint32_t max_subscribers = 0;
  uint64_t slot_stride = 0;
  uint64_t ring_bytes = 0;
  uint64_t packet_ring_bytes = 0;
  cuframes_memory_t memory = CUFRAMES_MEMORY_HOST;
  HandleType handle_type = HandleType::kNone;
  int32_t device = -1;
  cuframes_policy_t policy = CUFRAMES_POLICY_DROP;
  uint64_t slot_mask() const { return slot_count >= 64 ? ~0ull : (1ull << slot_count) - 1; }
};

// Maps the ring header (read-only) and validates every field against itself and the Welcome.
Status map_ring_header(int fd, const Welcome& w, Mapping* map, RingInfo* info);
// Maps the subscriber table (read-only) and validates its header.
Status map_table(int fd, const Welcome& w, const RingInfo& info, Mapping* map);
// Maps a subscriber's own entry (read-write) after checking that its table view and the entry
// itself were set up for this Welcome.
Status map_own_entry(int fd, const Welcome& w, const RingInfo& info, const TableHeader& table,
                     Mapping* map);

// Reads and discards notes on a peer socket. Returns false once the publisher has hung up.
bool drain_notes(int sock);

}  // namespace cuframes::detail
