#include "packet_reader.h"

#include "clock.h"
#include "runtime_dir.h"
#include "socket.h"

namespace cuframes::detail {

Status PacketReader::Create(const char* key, const cuframes_packet_reader_options_t& o,
                            std::unique_ptr<PacketReader>* out) {
  std::string ctx = std::string("read packets of '") + (key ? key : "(null)") + "'";
  CUFRAMES_RETURN_IF_ERROR(std::move(check_key(key)).context(ctx));
  if (o.connect_timeout_ms < -1) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s: connect_timeout_ms %d", ctx.c_str(),
               o.connect_timeout_ms);
  }
  std::string dir;
  CUFRAMES_RETURN_IF_ERROR(
      std::move(resolve_runtime_dir(o.runtime_dir, &dir, DirUse::kLook)).context(ctx));
  Connection c;
  CUFRAMES_RETURN_IF_ERROR(std::move(connect_to_publisher(dir, key, make_hello(Role::kPacketReader),
                                                          o.connect_timeout_ms, &c))
                               .context(ctx));
  if (c.fds.size() != 2) {
    return Err(CUFRAMES_ERR_SHM, "%s: handshake carried %zu fds", ctx.c_str(), c.fds.size());
  }
  std::unique_ptr<PacketReader> r(new PacketReader);
  r->key_ = key;
  RingInfo info;
  CUFRAMES_RETURN_IF_ERROR(
      std::move(map_ring_header(c.fds[0].get(), c.welcome, &r->header_map_, &info)).context(ctx));
  if (c.welcome.packet_bytes == 0 || c.welcome.packet_bytes > (2ull << 30)) {
    return Err(CUFRAMES_ERR_SHM, "%s: packet ring of %llu bytes announced", ctx.c_str(),
               static_cast<unsigned long long>(c.welcome.packet_bytes));
  }
  Mapping map;
  CUFRAMES_RETURN_IF_ERROR(
      std::move(map_peer_region(c.fds[1].get(), c.welcome.packet_bytes, false, "packet ring", &map))
          .context(ctx));
  CUFRAMES_RETURN_IF_ERROR(std::move(PacketRingReader::Attach(std::move(map), info.epoch,
                                                              o.start_at_oldest != 0, &r->ring_))
                               .context(ctx));
  r->sock_ = std::move(c.sock);
  *out = std::move(r);
  return Ok();
}

Status PacketReader::next(int timeout_ms, cuframes_packet_t* out) {
  if (timeout_ms < -1) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "timeout_ms %d (want -1 or >= 0)", timeout_ms);
  }
  const int64_t deadline = deadline_after(timeout_ms);
  for (;;) {
    // Ring first, notes after: packets left from an earlier wake-up are found without one, and
    // the notes stay queued (the fd stays readable) while we deliver.
    PacketRingReader::Result r;
    CUFRAMES_RETURN_IF_ERROR(std::move(ring_->try_read(out, &r)).context(key_));
    if (r == PacketRingReader::Result::kPacket) return Ok();
    if (!gone_ && !drain_notes(sock_.get())) gone_ = true;
    CUFRAMES_RETURN_IF_ERROR(std::move(ring_->try_read(out, &r)).context(key_));
    if (r == PacketRingReader::Result::kPacket) return Ok();
    if (gone_) return Err(CUFRAMES_ERR_PUBLISHER_GONE, "publisher of '%s' is gone", key_.c_str());
    const int left = deadline == INT64_MAX ? -1 : ms_until(deadline);
    if (left == 0) {
      return Err(CUFRAMES_ERR_FRAME_TIMEOUT, "no packet from '%s' within %d ms", key_.c_str(),
                 timeout_ms);
    }
    short revents = 0;
    CUFRAMES_RETURN_IF_ERROR(poll_in(sock_.get(), left, &revents));
  }
}

}  // namespace cuframes::detail
