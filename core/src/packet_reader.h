// Packet reader: attaches to a publisher's packet ring and copies packets out.
#pragma once

#include <memory>

#include "client.h"
#include "packet_ring.h"

namespace cuframes::detail {

class PacketReader {
 public:
  static Status Create(const char* key, const cuframes_packet_reader_options_t& options,
                       std::unique_ptr<PacketReader>* out);
  int fd() const { return sock_.get(); }
  // Packets still in the ring are delivered after the publisher has gone; then PUBLISHER_GONE.
  Status next(int timeout_ms, cuframes_packet_t* out);
  Status codec(cuframes_codec_params_t* out) { return ring_->codec(out); }
  const cuframes_packet_reader_stats_t& stats() const { return ring_->stats(); }

 private:
  PacketReader() = default;
  std::string key_;
  UniqueFd sock_;
  Mapping header_map_;
  std::unique_ptr<PacketRingReader> ring_;
  bool gone_ = false;
};

}  // namespace cuframes::detail
