// The packet ring, reader side: CuframesPacketReader, CuframesPacket, CuframesCodecParams.
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "common.h"

namespace cfpy {
namespace {

struct Packet {
  py::bytes data;
  int64_t pts = 0;
  int64_t dts = 0;
  uint32_t flags = 0;
  uint64_t seq = 0;
  uint64_t params_generation = 0;
};

struct CodecParams {
  std::string codec;
  int codec_id = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  int32_t time_base_num = 0;
  int32_t time_base_den = 0;
  py::bytes extradata;
  uint64_t generation = 0;
};

class PacketReader {
 public:
  PacketReader(const std::string& key, int connect_timeout_ms, bool start_at_oldest,
               const py::object& runtime_dir)
      : key_(key) {
    cuframes_packet_reader_options_t o;
    cuframes_packet_reader_options_init(&o);
    std::string dir =
        runtime_dir.is_none() ? std::string() : py::cast<std::string>(py::str(runtime_dir));
    o.runtime_dir = runtime_dir.is_none() ? nullptr : dir.c_str();
    o.start_at_oldest = start_at_oldest ? 1 : 0;
    attach_in_slices(connect_timeout_ms, [&](int slice_ms) {
      o.connect_timeout_ms = slice_ms;
      const cuframes_status_t st = cuframes_packet_reader_create(key_.c_str(), &o, &r_);
      return std::make_pair(st, std::string(st == CUFRAMES_OK ? "" : cuframes_last_error()));
    });
  }
  ~PacketReader() { close(); }

  void close() {
    if (r_ == nullptr) return;
    snapshot();
    cuframes_packet_reader_destroy(r_);
    r_ = nullptr;
  }
  bool closed() const { return r_ == nullptr; }
  const std::string& key() const { return key_; }

  int fileno() {
    require_open();
    return cuframes_packet_reader_fd(r_);
  }

  Packet next_packet(int timeout_ms) {
    require_open();
    const int64_t deadline = deadline_after(timeout_ms);
    for (;;) {
      cuframes_packet_t p{};
      cuframes_status_t st = cuframes_packet_reader_next(r_, 0, &p);
      if (st == CUFRAMES_OK) {
        Packet out;
        out.data = py::bytes(reinterpret_cast<const char*>(p.data), p.size);
        out.pts = p.pts;
        out.dts = p.dts;
        out.flags = p.flags;
        out.seq = p.seq;
        out.params_generation = p.params_generation;
        return out;
      }
      if (st != CUFRAMES_ERR_FRAME_TIMEOUT) throw_status(st);
      const int left = ms_left(deadline);
      if (left == 0) {
        throw_status(CUFRAMES_ERR_FRAME_TIMEOUT,
                     "no packet from '" + key_ + "' within " + std::to_string(timeout_ms) + " ms");
      }
      wait_readable(cuframes_packet_reader_fd(r_), left);
    }
  }

  // Iteration: every packet until the publisher has gone (then StopIteration).
  Packet next_for_iter() {
    try {
      return next_packet(-1);
    } catch (const StatusError& e) {
      if (e.status == CUFRAMES_ERR_PUBLISHER_GONE) throw py::stop_iteration();
      throw;
    }
  }

  py::object codec() {
    require_open();
    cuframes_codec_params_t c{};
    cuframes_status_t st = cuframes_packet_reader_get_codec(r_, &c);
    if (st == CUFRAMES_ERR_FRAME_TIMEOUT) return py::none();
    if (st != CUFRAMES_OK) throw_status(st);
    CodecParams p;
    p.codec = cuframes_codec_name(c.codec);
    p.codec_id = static_cast<int>(c.codec);
    p.width = c.width;
    p.height = c.height;
    p.time_base_num = c.time_base_num;
    p.time_base_den = c.time_base_den;
    p.extradata = c.extradata != nullptr
                      ? py::bytes(reinterpret_cast<const char*>(c.extradata), c.extradata_size)
                      : py::bytes();
    p.generation = c.generation;
    return py::cast(std::move(p));
  }

  py::dict stats() {
    snapshot();
    py::dict d;
    d["key"] = key_;
    d["closed"] = closed();
    d["packets"] = stats_.packets;
    d["bytes"] = stats_.bytes;
    d["gaps"] = stats_.gaps;
    return d;
  }

 private:
  void require_open() const {
    if (r_ == nullptr) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, "packet reader of '" + key_ + "' is closed");
    }
  }
  void snapshot() {
    if (r_ != nullptr) cuframes_packet_reader_get_stats(r_, &stats_);
  }

  cuframes_packet_reader_t* r_ = nullptr;
  std::string key_;
  cuframes_packet_reader_stats_t stats_ = sized<cuframes_packet_reader_stats_t>();
};

}  // namespace

void register_packets(py::module_& m) {
  py::class_<Packet>(m, "CuframesPacket", "One encoded access unit from a packet ring.")
      .def_readonly("data", &Packet::data, "The access unit's bytes.")
      .def_readonly("pts", &Packet::pts, "Presentation time, in time_base units.")
      .def_readonly("dts", &Packet::dts, "Decode time, in time_base units.")
      .def_readonly("flags", &Packet::flags, "Bit 0: keyframe.")
      .def_readonly("seq", &Packet::seq, "Packet sequence number, from 1.")
      .def_readonly("params_generation", &Packet::params_generation,
                    "The codec parameters' generation this packet belongs to.")
      .def_property_readonly("keyframe",
                             [](const Packet& p) { return (p.flags & CUFRAMES_PACKET_KEY) != 0; })
      .def("__len__", [](const Packet& p) { return py::len(p.data); })
      .def("__repr__", [](const Packet& p) {
        return "<CuframesPacket seq=" + std::to_string(p.seq) + " pts=" + std::to_string(p.pts) +
               " " + std::to_string(py::len(p.data)) + " bytes" +
               ((p.flags & CUFRAMES_PACKET_KEY) ? " key>" : ">");
      });

  py::class_<CodecParams>(m, "CuframesCodecParams", "The encoded stream's parameters.")
      .def_readonly("codec", &CodecParams::codec,
                    "\"h264\", \"hevc\", \"av1\", \"vp9\", \"mjpeg\" or \"unknown\".")
      .def_readonly("codec_id", &CodecParams::codec_id)
      .def_readonly("width", &CodecParams::width)
      .def_readonly("height", &CodecParams::height)
      .def_property_readonly(
          "time_base",
          [](const CodecParams& c) { return py::make_tuple(c.time_base_num, c.time_base_den); },
          "(num, den): seconds per pts/dts unit.")
      .def_readonly("extradata", &CodecParams::extradata,
                    "avcC/hvcC or Annex B parameter sets (may be empty).")
      .def_readonly("generation", &CodecParams::generation,
                    "Bumped every time the publisher sets new parameters.")
      .def("__repr__", [](const CodecParams& c) {
        return "<CuframesCodecParams " + c.codec + " " + std::to_string(c.width) + "x" +
               std::to_string(c.height) + " time_base=" + std::to_string(c.time_base_num) + "/" +
               std::to_string(c.time_base_den) + ">";
      });

  py::class_<PacketReader>(
      m, "CuframesPacketReader",
      "Reads a publisher's encoded packets (use cuframes.subscribe_packets()). Iterating yields "
      "every packet until the publisher has gone. A reader that falls a whole ring behind "
      "loses packets (counted in stats()['gaps']) but never sees a torn one.")
      .def(py::init<const std::string&, int, bool, const py::object&>(), py::arg("key"),
           py::arg("connect_timeout_ms") = -1, py::arg("start_at_oldest") = false, py::kw_only(),
           py::arg("runtime_dir") = py::none())
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](PacketReader& r, const py::object&, const py::object&, const py::object&) {
             r.close();
             return false;
           })
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &PacketReader::next_for_iter)
      .def("close", &PacketReader::close, "Detaches (idempotent).")
      .def_property_readonly("closed", &PacketReader::closed)
      .def_property_readonly("key", &PacketReader::key)
      .def("fileno", &PacketReader::fileno, "Readiness fd for select/asyncio; never read it.")
      .def("next_packet", &PacketReader::next_packet, py::arg("timeout_ms") = -1,
           "The next packet, waiting up to timeout_ms. Raises CuframesFrameTimeout, "
           "CuframesPublisherGone (once every packet left in the ring was read).")
      .def_property_readonly("codec", &PacketReader::codec,
                             "The current CuframesCodecParams, or None before the publisher set "
                             "them.")
      .def("stats", &PacketReader::stats, "packets, bytes, gaps.")
      .def("__repr__", [](const PacketReader& r) {
        return "<CuframesPacketReader key='" + r.key() + "'" + (r.closed() ? " closed>" : ">");
      });

  m.def(
      "subscribe_packets",
      [](const std::string& key, int connect_timeout_ms, bool start_at_oldest,
         const py::object& runtime_dir) {
        return std::make_unique<PacketReader>(key, connect_timeout_ms, start_at_oldest,
                                              runtime_dir);
      },
      py::arg("key"), py::arg("connect_timeout_ms") = -1, py::arg("start_at_oldest") = false,
      py::kw_only(), py::arg("runtime_dir") = py::none(),
      "Attaches to key's packet ring; returns a CuframesPacketReader. start_at_oldest: begin "
      "with the oldest packet still in the ring (pre-roll) instead of the next one written. "
      "Raises CuframesInvalidArgument if the publisher has no packet ring.");
}

}  // namespace cfpy
