#include "packet_ring.h"

#include <sched.h>
#include <algorithm>

#include <cstring>

#include "clock.h"
#include "enums.h"

namespace cuframes::detail {
namespace {

constexpr uint64_t kMinData = 64 * 1024;
constexpr uint64_t kMaxData = 1ull << 30;
constexpr uint32_t kMinEntries = 16;
constexpr uint32_t kMaxEntries = 65536;

}  // namespace

PacketRingLayout packet_ring_layout(uint32_t entries, uint64_t data_bytes) {
  PacketRingLayout l;
  l.entries_offset = (sizeof(PacketRingHeader) + 63) / 64 * 64;
  l.data_offset = region_bytes(l.entries_offset + uint64_t{entries} * sizeof(PacketEntry));
  l.region_bytes = region_bytes(l.data_offset + data_bytes);
  return l;
}

Status check_packet_ring_options(uint64_t data_bytes, uint32_t entries) {
  if (data_bytes < kMinData || data_bytes > kMaxData) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
               "packet_ring_bytes %llu is outside 64 KiB..1 GiB (0 turns the packet ring off)",
               static_cast<unsigned long long>(data_bytes));
  }
  if (entries < kMinEntries || entries > kMaxEntries) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "packet_ring_entries %u is outside %u..%u", entries,
               kMinEntries, kMaxEntries);
  }
  return Ok();
}

Status PacketRingWriter::Create(uint64_t data_bytes, uint32_t entries, uint64_t epoch,
                                std::unique_ptr<PacketRingWriter>* out) {
  CUFRAMES_RETURN_IF_ERROR(check_packet_ring_options(data_bytes, entries));
  auto w = std::unique_ptr<PacketRingWriter>(new PacketRingWriter);
  PacketRingLayout l = packet_ring_layout(entries, data_bytes);
  CUFRAMES_RETURN_IF_ERROR(create_shared_region("cuframes-packets", l.region_bytes, &w->region_));
  uint8_t* base = w->region_.map.data();
  w->hdr_ = reinterpret_cast<PacketRingHeader*>(base);
  w->entries_ = reinterpret_cast<PacketEntry*>(base + l.entries_offset);
  w->data_ = base + l.data_offset;
  w->n_ = entries;
  w->d_ = data_bytes;
  PacketRingHeader& h = *w->hdr_;
  wr(h.version, kProtocolVersion);
  wr(h.entries, entries);
  wr(h.data_bytes, data_bytes);
  wr(h.epoch, epoch);
  wr(h.region_bytes, l.region_bytes);
  h.magic.store(kPacketMagic, std::memory_order_release);
  CUFRAMES_RETURN_IF_ERROR(seal_shared_region(w->region_, /*readonly_for_peers=*/true));
  *out = std::move(w);
  return Ok();
}

Status PacketRingWriter::set_codec(const cuframes_codec_params_t& p) {
  if (!known_codec(raw_enum(p.codec))) {  // the caller's bits (enums.h)
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "unknown codec %d",
               static_cast<int>(raw_enum(p.codec)));
  }
  if (p.extradata_size > CUFRAMES_EXTRADATA_MAX || (p.extradata_size > 0 && !p.extradata)) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "extradata of %u bytes (at most %d, non-NULL)",
               p.extradata_size, CUFRAMES_EXTRADATA_MAX);
  }
  PacketRingHeader& h = *hdr_;
  uint64_t lock = rd(h.params_lock);
  wr(h.params_lock, lock + 1);  // odd: being written
  std::atomic_thread_fence(std::memory_order_release);
  wr(h.codec, p.codec);
  wr(h.width, p.width);
  wr(h.height, p.height);
  wr(h.tb_num, p.time_base_num);
  wr(h.tb_den, p.time_base_den);
  wr(h.extradata_size, p.extradata_size);
  for (uint32_t i = 0; i < CUFRAMES_EXTRADATA_MAX / 8; ++i) {
    uint64_t word = 0;
    for (uint32_t b = 0; b < 8; ++b) {
      uint32_t at = i * 8 + b;
      if (at < p.extradata_size) word |= uint64_t{p.extradata[at]} << (8 * b);
    }
    wr(h.extradata[i], word);
  }
  wr(h.params_generation, rd(h.params_generation) + 1);
  h.params_lock.store(lock + 2, std::memory_order_release);
  return Ok();
}

Status PacketRingWriter::write(const cuframes_packet_t& p, uint64_t* seq_out) {
  if (p.size == 0 || p.data == nullptr) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "empty packet");
  }
  if (p.size > d_ / 2) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
               "packet of %u bytes is more than half the %llu-byte "
               "packet ring; raise packet_ring_bytes",
               p.size, static_cast<unsigned long long>(d_));
  }
  PacketRingHeader& h = *hdr_;
  const uint64_t seq = rd(h.write_seq) + 1;
  uint64_t pos = rd(h.data_head);
  if (pos % d_ + p.size > d_) pos = (pos / d_ + 1) * d_;  // no packet wraps: skip to the start
  // Reserve first, then write: a reader that copied bytes of this packet sees the new head.
  wr(h.data_head, pos + p.size);
  std::atomic_thread_fence(std::memory_order_release);
  std::memcpy(data_ + pos % d_, p.data, p.size);

  PacketEntry& e = entries_[seq % n_];
  wr(e.lock, 2 * seq - 1);
  std::atomic_thread_fence(std::memory_order_release);
  wr(e.pos, pos);
  wr(e.size, p.size);
  wr(e.flags, p.flags);
  wr(e.pts, p.pts);
  wr(e.dts, p.dts);
  wr(e.params_generation, rd(h.params_generation));
  e.lock.store(2 * seq, std::memory_order_release);
  h.write_seq.store(seq, std::memory_order_release);
  wr(h.packets_written, rd(h.packets_written) + 1);
  wr(h.bytes_written, rd(h.bytes_written) + p.size);
  if (seq_out) *seq_out = seq;
  return Ok();
}

Status PacketRingReader::Attach(Mapping map, uint64_t epoch, bool start_at_oldest,
                                std::unique_ptr<PacketRingReader>* out) {
  if (map.size() < sizeof(PacketRingHeader)) {
    return Err(CUFRAMES_ERR_SHM, "packet ring region of %zu bytes is truncated", map.size());
  }
  const auto* h = map.as<const PacketRingHeader>();
  if (h->magic.load(std::memory_order_acquire) != kPacketMagic) {
    return Err(CUFRAMES_ERR_SHM, "packet ring: bad magic");
  }
  if (rd(h->version) != kProtocolVersion) {
    return Err(CUFRAMES_ERR_PROTOCOL_MISMATCH, "packet ring is protocol v%u, this library v%u",
               rd(h->version), kProtocolVersion);
  }
  if (rd(h->epoch) != epoch) return Err(CUFRAMES_ERR_SHM, "packet ring: epoch mismatch");
  const uint32_t n = rd(h->entries);
  const uint64_t d = rd(h->data_bytes);
  CUFRAMES_RETURN_IF_ERROR(std::move(check_packet_ring_options(d, n)).context("packet ring"));
  PacketRingLayout l = packet_ring_layout(n, d);
  if (l.region_bytes > map.size()) {
    return Err(CUFRAMES_ERR_SHM, "packet ring: %llu bytes needed, %zu mapped",
               static_cast<unsigned long long>(l.region_bytes), map.size());
  }
  auto r = std::unique_ptr<PacketRingReader>(new PacketRingReader);
  r->hdr_ = h;
  r->entries_ = reinterpret_cast<const PacketEntry*>(map.data() + l.entries_offset);
  r->data_ = map.data() + l.data_offset;
  r->n_ = n;
  r->d_ = d;
  r->map_ = std::move(map);
  const uint64_t ws = h->write_seq.load(std::memory_order_acquire);
  if (start_at_oldest) {
    r->want_ = ws >= n ? ws - n + 2 : 1;  // the entry after ws is the next to be overwritten
    r->skipping_start_ = true;
  } else {
    r->want_ = ws + 1;
  }
  *out = std::move(r);
  return Ok();
}

Status PacketRingReader::try_read(cuframes_packet_t* out, Result* result) {
  for (;;) {
    const uint64_t ws = hdr_->write_seq.load(std::memory_order_acquire);
    if (ws < want_) {
      *result = Result::kNone;
      return Ok();
    }
    auto lose = [&](uint64_t count) {
      if (!skipping_start_) stats_.gaps += count;
      want_ += count;
    };
    if (ws - want_ + 1 > n_ - 1) {  // entries older than ws-n+2 may be being rewritten
      lose(ws - n_ + 2 - want_);
      continue;
    }
    const PacketEntry& e = entries_[want_ % n_];
    const uint64_t l1 = e.lock.load(std::memory_order_acquire);
    if (l1 != 2 * want_) {
      lose(1);
      continue;
    }
    const uint64_t pos = rd(e.pos);
    const uint32_t size = rd(e.size);
    cuframes_packet_t p{};
    p.flags = rd(e.flags);
    p.pts = rd(e.pts);
    p.dts = rd(e.dts);
    p.params_generation = rd(e.params_generation);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (rd(e.lock) != l1) {
      lose(1);
      continue;
    }
    if (size == 0 || size > d_ / 2 || pos % d_ + size > d_) {
      return Err(CUFRAMES_ERR_SHM, "packet %llu: corrupt entry (pos %llu, size %u)",
                 static_cast<unsigned long long>(want_), static_cast<unsigned long long>(pos),
                 size);
    }
    buf_.resize(size);
    std::memcpy(buf_.data(), data_ + pos % d_, size);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (rd(hdr_->data_head) > pos + d_) {  // the writer has reserved over these bytes
      lose(1);
      continue;
    }
    p.data = buf_.data();
    p.size = size;
    p.seq = want_;
    ++want_;
    skipping_start_ = false;
    stats_.packets++;
    stats_.bytes += size;
    *out = p;
    *result = Result::kPacket;
    return Ok();
  }
}

Status PacketRingReader::codec(cuframes_codec_params_t* out) {
  // The writer holds the lock for a few microseconds; if it was preempted, yield to it.
  const int64_t give_up = now_ns() + 200 * 1000000;
  while (now_ns() < give_up) {
    const uint64_t l1 = hdr_->params_lock.load(std::memory_order_acquire);
    if (l1 & 1) {
      sched_yield();
      continue;
    }
    cuframes_codec_params_t p{};
    p.generation = rd(hdr_->params_generation);
    const uint32_t codec = rd(hdr_->codec);
    p.codec = codec <= CUFRAMES_CODEC_MJPEG ? static_cast<cuframes_codec_t>(codec)
                                            : CUFRAMES_CODEC_UNKNOWN;
    p.width = rd(hdr_->width);
    p.height = rd(hdr_->height);
    p.time_base_num = rd(hdr_->tb_num);
    p.time_base_den = rd(hdr_->tb_den);
    uint32_t n = std::min<uint32_t>(rd(hdr_->extradata_size), CUFRAMES_EXTRADATA_MAX);
    std::vector<uint8_t> extra(n);
    for (uint32_t i = 0; i < n; ++i) {
      extra[i] = static_cast<uint8_t>(rd(hdr_->extradata[i / 8]) >> (8 * (i % 8)));
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (rd(hdr_->params_lock) != l1) {
      sched_yield();
      continue;
    }
    if (p.generation == 0) return Err(CUFRAMES_ERR_FRAME_TIMEOUT, "no codec parameters yet");
    extradata_ = std::move(extra);
    p.extradata = extradata_.empty() ? nullptr : extradata_.data();
    p.extradata_size = n;
    *out = p;
    return Ok();
  }
  return Err(CUFRAMES_ERR_SHM, "codec parameters keep changing while read");
}

}  // namespace cuframes::detail
