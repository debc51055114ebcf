// Messages on the rendezvous socket (SOCK_SEQPACKET, one struct per message). The Preamble of
// Hello and Welcome never changes between protocol versions, so any two versions can tell each
// other apart. See docs/protocol.md.
#pragma once

#include <cstdint>

namespace cuframes::detail {

constexpr uint64_t kWireMagic = 0x4f4c4c4546524375ull;  // "uCRFELLO"

enum class MsgType : uint32_t { kHello = 1, kWelcome = 2 };
enum class Role : uint32_t { kSubscriber = 1, kObserver = 2, kPacketReader = 3 };

// What the frame memory fd (or handle bytes) in a Welcome is.
enum class HandleType : uint32_t {
  kNone = 0,
  kMemfd = 1,      // host memory: a sealed memfd, mapped read-only
  kCudaVmmFd = 2,  // CUDA VMM allocation exported as a POSIX fd (cuMemExportToShareableHandle)
  kCudaIpc = 3     // legacy cudaIpcMemHandle_t in Welcome::handle (no fd)
};

struct Preamble {
  uint64_t magic;    // kWireMagic
  uint32_t version;  // sender's kProtocolVersion
  uint32_t type;     // MsgType
};

// Peer -> publisher, first message after connect.
struct Hello {
  Preamble pre;
  uint32_t role;        // Role
  uint32_t mode;        // subscribers: cuframes_mode_t
  int32_t pid;          // the peer's pid in its own namespace
  int32_t cuda_device;  // subscribers: device it will import a cuda ring on
  char name[64];        // subscribers: consumer name, NUL-terminated
  uint32_t reserved[2];
};

// Publisher -> peer, the reply, with fds (SCM_RIGHTS):
//   subscriber:    [ring header, table, its own entry, frame memory (if handle_type has an fd)]
//   observer:      [ring header, table]
//   packet reader: [ring header, packet ring]
// On failure (status != 0) no fds come and the publisher closes the connection.
struct Welcome {
  Preamble pre;
  int32_t status;             // cuframes_status_t
  uint32_t entry_index;       // subscribers: its table entry
  uint32_t entry_generation;  // subscribers: the entry's generation at attach
  uint32_t handle_type;       // HandleType of the frame memory
  uint64_t epoch;             // == RingHeader::epoch
  uint64_t header_bytes;      // sizes of the regions passed as fds
  uint64_t table_bytes;
  uint64_t ring_bytes;
  uint64_t packet_bytes;
  uint64_t entry_bytes;  // subscribers: size of its entry memfd (kEntryRegionBytes)
  uint32_t nfds;
  uint32_t reserved;
  uint8_t handle[64];  // kCudaIpc: the cudaIpcMemHandle_t
  char message[128];   // status != 0: why, NUL-terminated
};

// Publisher -> peer after the Welcome: "something new" (a frame or a packet). Coalesced: when the
// peer's socket buffer is full, notes are dropped; a reader that wakes up always rechecks the
// ring, so only the wake-up matters, never the count.
// Subscriber -> publisher after the Welcome: any message means "I dropped a hold while you were
// waiting for a slot" (sent only while RingHeader::publisher_waiting is set; never blocks).
// Observer <-> publisher: a Note of kind kNoteRefresh with a token asks the publisher to copy the
// subscribers' counters into the table now; it answers with the same Note once it has.
struct Note {
  uint32_t kind;  // 1 frame, 2 packet, kNoteRefresh
  uint32_t reserved;
  uint64_t seq;  // the frame's or packet's seq; refresh: the observer's token (not 0)
};
constexpr uint32_t kNoteRefresh = 3;

}  // namespace cuframes::detail
