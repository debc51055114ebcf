// nvcuvid_ceiling's packets: what a file is (Clip: its codec and Annex B filter, probed once; with
// --preload its access units), and one stream's access units from it (Source: a demuxer and
// bitstream filter of its own, or the preloaded packets, looping); scan_annexb checks a packet.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
}

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nvcuvid_shared.h"

namespace nvcuvid {

struct Clip {  // what a file is, probed once
  std::string path;
  AVCodecID codec_id = AV_CODEC_ID_NONE;
  cudaVideoCodec codec = cudaVideoCodec_H264;
  const char* bsf = nullptr;
  std::vector<std::vector<uint8_t>> packets;  // --preload: the file's access units, Annex B
};

// Fills clip's codec and filter from its path; with --preload, its packets too. A file that cannot
// be opened or is not h264 / hevc: one line, exit status 2.
void probe(Clip& clip);

// Whether an Annex B access unit holds a sequence parameter set (the parser needs one after
// every loop) and a keyframe (IDR / IRAP); false when it is not Annex B at all.
bool scan_annexb(const uint8_t* p, size_t n, bool hevc, bool* sps, bool* key);

class Source {  // one stream's packets: its own demuxer (or the preloaded file), looping
 public:
  explicit Source(const Clip& clip);
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // The next access unit; false at the end of the file (then rewind()).
  bool next(const uint8_t** data, size_t* size);
  void rewind();
  uint64_t loops() const { return loops_; }

 private:
  void open();

  const Clip& clip_;
  AVFormatContext* fmt_ = nullptr;
  AVBSFContext* bsf_ = nullptr;
  AVPacket* in_ = nullptr;
  AVPacket* out_ = nullptr;
  int si_ = -1;
  size_t index_ = 0;
  uint64_t loops_ = 0;
};

}  // namespace nvcuvid
