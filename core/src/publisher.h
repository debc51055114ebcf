// Publisher: owns a key, its ring and the rendezvous socket. The producer's calls (loan, commit,
// publish, packets) come from one thread at a time; a service thread of its own accepts peers,
// answers their handshake and reclaims the entries (and holds) of peers that hang up.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fd.h"
#include "layout.h"
#include "memory.h"
#include "packet_ring.h"
#include "shm.h"
#include "status.h"
#include "wire.h"

namespace cuframes::detail {

class Publisher {
 public:
  static Status Create(const char* key, const cuframes_publisher_options_t& options,
                       std::unique_ptr<Publisher>* out);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  const cuframes_geometry_t& geometry() const { return geometry_; }
  cuframes_memory_t memory() const { return backend_->kind(); }
  int device() const { return memory() == CUFRAMES_MEMORY_CUDA ? device_ : -1; }
  const std::string& key() const { return key_; }

  // Claims a free slot for writing (policy applies). FRAME_TIMEOUT when none could be had.
  Status loan(uint32_t* slot);
  uint8_t* slot_base(uint32_t slot) const { return ring_->base() + slot * slot_stride_; }
  // Publishes a loaned slot after the writes on stream have completed, with the frame's colour
  // description (checked by the caller).
  Status commit(uint32_t slot, int64_t pts_ns, void* stream, cuframes_color_matrix_t matrix,
                cuframes_color_range_t range, uint64_t* seq);
  void abandon(uint32_t slot);
  // Copy-in publish. *seq = 0 when dropped under DROP.
  Status publish(const cuframes_source_t& src, int64_t pts_ns, uint64_t* seq);

  void stats(cuframes_publisher_stats_t* out) const;
  void read_subscribers(cuframes_subscriber_stats_t* subs, size_t cap, size_t* count) const;

  Status set_codec(const cuframes_codec_params_t& p);
  Status write_packet(const cuframes_packet_t& p);

 private:
  struct Peer {
    UniqueFd fd;
    Role role;
    int entry;                   // subscribers: table entry, else -1
    uint64_t refresh_token = 0;  // observers: a refresh asked for and not yet answered
  };
  struct Pending {
    UniqueFd fd;
    int64_t deadline_ns;
  };

  Publisher() = default;
  Status init(const char* key, const cuframes_publisher_options_t& o);

  // Slot selection (producer thread).
  uint64_t held_mask() const;
  // held_mask(), also copied into each subscriber's table view for the peers.
  uint64_t held_mask_for_peers();
  uint64_t reserved_mask() const;
  bool try_claim(uint32_t* slot);
  Status acquire_slot(uint32_t* slot, bool* dropped);
  void notify(Role role, uint32_t kind, uint64_t seq);

  // The server: the service thread and what runs on it (publisher_server.cc; its contract, what
  // it shares with the producer thread, is publisher_server.h).
  void serve();
  void accept_peers(std::vector<Pending>* pending);
  bool handshake(Pending& p);  // true when p is done with (answered or dropped)
  // Answers a valid hello: on success the peer (taking *fd) is attached; on failure *fd stays
  // open for the error reply unless it broke.
  Status answer_hello(const Hello& hello, UniqueFd* fd);
  void remove_peer(size_t index);
  void send_deferred_notes();
  void release_entry(const Peer& peer);
  // Subscriber entries: entry_of(i) is subscriber i's own memfd while it is attached (a zero page
  // otherwise), mapped into entries_window_. make_entry creates and maps one and returns its fd for
  // the Welcome; drop_entry unmaps it; mirror_entries copies every active entry's holds and
  // counters into the table for observers, answer_refreshes does that and answers the observers
  // that asked (service thread).
  SubscriberEntry* entry_of(uint32_t index) const;
  Status make_entry(uint32_t index, uint32_t generation, UniqueFd* fd);
  void drop_entry(uint32_t index);
  void mirror_entries();
  void answer_refreshes();
  size_t count_peers(Role role) const;  // service thread only
  void warn_limited(int64_t* last_ns, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
  void wake_producer();
  void reply_error(int fd, cuframes_status_t code, const std::string& message);

  std::string key_, dir_;
  cuframes_geometry_t geometry_{};
  cuframes_policy_t policy_ = CUFRAMES_POLICY_DROP;
  int wait_timeout_ms_ = 1000;
  int device_ = 0;
  uint32_t slots_ = 0;
  uint64_t slot_mask_ = 0;
  uint64_t slot_stride_ = 0;
  uint32_t max_subscribers_ = 0;
  uint64_t epoch_ = 0;

  UniqueFd lock_fd_;
  SharedRegion header_region_, table_region_;
  RingHeader* hdr_ = nullptr;
  TableHeader* table_ = nullptr;
  Mapping entries_window_;  // max_subscribers_ x 64 KiB, see entry_of()
  MemoryBackend* backend_ = nullptr;
  std::unique_ptr<RingAllocation> ring_;
  std::unique_ptr<PacketRingWriter> packets_;
  // Private eventfd: the service thread wakes a producer blocked in STRICT_WAIT when a subscriber
  // says it dropped a hold (a note on its socket) or detaches. Never shared with peers.
  UniqueFd producer_wake_;
  // Wake-ups past the first kDirectNotes of a publication, handed to the service thread (an
  // entry bit each, the seq to announce, and a private eventfd that wakes it), so that publish()
  // costs the same with 64 sleeping subscribers as with 4.
  std::atomic<uint64_t> deferred_notes_{0};
  std::atomic<uint64_t> deferred_seq_{0};
  UniqueFd notes_wake_;

  // Producer-thread state.
  uint64_t slot_seq_[kMaxSlots] = {};  // published seq each slot holds (0: none)
  uint64_t loaned_ = 0;
  uint64_t next_seq_ = 1;
  uint32_t newest_slot_ = UINT32_MAX;

  // Table entries in use (bit per entry), and those of STRICT_ORDER subscribers. Kept here, not
  // in shared memory, so a peer scribbling on the table cannot change whose holds count.
  std::atomic<uint64_t> active_entries_{0};
  std::atomic<uint64_t> strict_entries_{0};

  // Peers: the service thread adds and removes them; notify() reads them under peers_mu_.
  mutable std::mutex peers_mu_;
  std::vector<Peer> peers_;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;
  bool socket_bound_ = false;
  ino_t socket_ino_ = 0;  // our socket's inode: we unlink only that one
  // Service-thread state.
  int64_t accept_paused_until_ = 0;
  int64_t last_accept_warn_ns_ = 0;
  int64_t last_pending_warn_ns_ = 0;
  std::thread thread_;
};

}  // namespace cuframes::detail
