// The packet ring: encoded access units in a host memfd, one writer (the publisher) and any
// number of readers that copy packets out under a per-entry seqlock. A reader that is lapped
// loses packets (counted) but never returns a torn one. Layout: PacketRingHeader, then
// PacketEntry[entries], then the data bytes (a circular buffer addressed by absolute position).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "layout.h"
#include "shm.h"
#include "status.h"

namespace cuframes::detail {

struct alignas(64) PacketEntry {
  Shared<uint64_t> lock;  // 2*seq once packet seq is complete; odd while being written
  Shared<uint64_t> pos;   // absolute data position of the packet's first byte
  Shared<uint32_t> size, flags;
  Shared<int64_t> pts, dts;
  Shared<uint64_t> params_generation;
};

struct PacketRingHeader {
  Shared<uint64_t> magic;
  Shared<uint32_t> version;
  Shared<uint32_t> entries;
  Shared<uint64_t> data_bytes;
  Shared<uint64_t> epoch;
  Shared<uint64_t> region_bytes;
  // codec parameters under a seqlock (odd while being written)
  alignas(64) Shared<uint64_t> params_lock;
  Shared<uint64_t> params_generation;  // 0 until first set
  Shared<uint32_t> codec, width, height;
  Shared<int32_t> tb_num, tb_den;
  Shared<uint32_t> extradata_size;
  Shared<uint64_t> extradata[CUFRAMES_EXTRADATA_MAX / 8];
  // writer position
  alignas(64) Shared<uint64_t> write_seq;  // last complete packet, 0 = none
  Shared<uint64_t> data_head;              // absolute position reserved so far
  Shared<uint64_t> packets_written;
  Shared<uint64_t> bytes_written;
};

struct PacketRingLayout {
  uint64_t entries_offset, data_offset, region_bytes;
};
PacketRingLayout packet_ring_layout(uint32_t entries, uint64_t data_bytes);
Status check_packet_ring_options(uint64_t data_bytes, uint32_t entries);

class PacketRingWriter {
 public:
  static Status Create(uint64_t data_bytes, uint32_t entries, uint64_t epoch,
                       std::unique_ptr<PacketRingWriter>* out);
  int fd() const { return region_.fd.get(); }
  uint64_t region_bytes() const { return region_.map.size(); }
  Status set_codec(const cuframes_codec_params_t& p);
  Status write(const cuframes_packet_t& p, uint64_t* seq);

 private:
  SharedRegion region_;
  PacketRingHeader* hdr_ = nullptr;
  PacketEntry* entries_ = nullptr;
  uint8_t* data_ = nullptr;
  uint32_t n_ = 0;
  uint64_t d_ = 0;
};

// The reader's side, over a mapping received from the publisher.
class PacketRingReader {
 public:
  // Validates the mapped region against the epoch from the handshake.
  static Status Attach(Mapping map, uint64_t epoch, bool start_at_oldest,
                       std::unique_ptr<PacketRingReader>* out);
  enum class Result { kPacket, kNone };
  // Copies the next packet into buf_; *out->data points there.
  Status try_read(cuframes_packet_t* out, Result* result);
  Status codec(cuframes_codec_params_t* out);
  const cuframes_packet_reader_stats_t& stats() const { return stats_; }

 private:
  Mapping map_;
  const PacketRingHeader* hdr_ = nullptr;
  const PacketEntry* entries_ = nullptr;
  const uint8_t* data_ = nullptr;
  uint32_t n_ = 0;
  uint64_t d_ = 0;
  uint64_t want_ = 1;
  bool skipping_start_ = false;  // losses before the first packet are not gaps
  std::vector<uint8_t> buf_;
  std::vector<uint8_t> extradata_;
  cuframes_packet_reader_stats_t stats_{};
};

}  // namespace cuframes::detail
