// nvcuvid_ceiling's packets (nvcuvid_packets.h): libavformat's demuxer and FFmpeg's Annex B
// bitstream filter, looping.
#include "nvcuvid_packets.h"

namespace nvcuvid {
namespace {

bool codec_of(AVCodecID id, cudaVideoCodec* c, const char** bsf) {
  switch (id) {
    case AV_CODEC_ID_H264:
      *c = cudaVideoCodec_H264;
      *bsf = "h264_mp4toannexb";
      return true;
    case AV_CODEC_ID_HEVC:
      *c = cudaVideoCodec_HEVC;
      *bsf = "hevc_mp4toannexb";
      return true;
    default:
      return false;
  }
}

}  // namespace

// Whether an Annex B access unit holds a sequence parameter set (the parser needs one after
// every loop) and a keyframe (IDR / IRAP); false when it is not Annex B at all.
bool scan_annexb(const uint8_t* p, size_t n, bool hevc, bool* sps, bool* key) {
  *sps = *key = false;
  if (n < 4 || !(p[0] == 0 && p[1] == 0 && (p[2] == 1 || (p[2] == 0 && p[3] == 1)))) return false;
  for (size_t i = 0; i + 3 < n; ++i) {
    if (p[i] != 0 || p[i + 1] != 0 || p[i + 2] != 1) continue;
    const uint8_t h = p[i + 3];
    if (hevc) {
      const int t = (h >> 1) & 0x3f;
      if (t == 33) *sps = true;
      if (t >= 16 && t <= 21) *key = true;
    } else {
      const int t = h & 0x1f;
      if (t == 7) *sps = true;
      if (t == 5) *key = true;
    }
    i += 3;
  }
  return true;
}

Source::Source(const Clip& clip) : clip_(clip) {
  if (!g_opt.preload) open();
}
Source::~Source() {
  av_packet_free(&in_);
  av_packet_free(&out_);
  av_bsf_free(&bsf_);
  if (fmt_ != nullptr) avformat_close_input(&fmt_);
}

bool Source::next(const uint8_t** data, size_t* size) {
  if (g_opt.preload) {
    if (index_ >= clip_.packets.size()) return false;
    const auto& p = clip_.packets[index_++];
    *data = p.data();
    *size = p.size();
    return true;
  }
  av_packet_unref(out_);
  for (;;) {
    const int rc = av_bsf_receive_packet(bsf_, out_);
    if (rc == 0) {
      *data = out_->data;
      *size = static_cast<size_t>(out_->size);
      return true;
    }
    if (rc != AVERROR(EAGAIN)) die(1, "%s: the %s filter failed", clip_.path.c_str(), clip_.bsf);
    const int rd = av_read_frame(fmt_, in_);
    if (rd == AVERROR_EOF) return false;
    if (rd < 0) die(1, "%s: cannot read a packet", clip_.path.c_str());
    if (in_->stream_index != si_) {
      av_packet_unref(in_);
      continue;
    }
    if (av_bsf_send_packet(bsf_, in_) < 0)
      die(1, "%s: the %s filter refused a packet", clip_.path.c_str(), clip_.bsf);
  }
}

void Source::rewind() {
  ++loops_;
  if (g_opt.preload) {
    index_ = 0;
    return;
  }
  if (av_seek_frame(fmt_, si_, 0, AVSEEK_FLAG_BACKWARD) < 0)
    die(1, "%s: cannot seek back to the start", clip_.path.c_str());
  av_bsf_flush(bsf_);  // parameter sets go in again before the first keyframe
}

void Source::open() {
  if (avformat_open_input(&fmt_, clip_.path.c_str(), nullptr, nullptr) < 0 ||
      avformat_find_stream_info(fmt_, nullptr) < 0)
    die(2, "cannot open %s", clip_.path.c_str());
  si_ = av_find_best_stream(fmt_, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (si_ < 0) die(2, "no video stream in %s", clip_.path.c_str());
  const AVBitStreamFilter* f = av_bsf_get_by_name(clip_.bsf);
  if (f == nullptr) die(1, "this FFmpeg has no %s bitstream filter", clip_.bsf);
  if (av_bsf_alloc(f, &bsf_) < 0 ||
      avcodec_parameters_copy(bsf_->par_in, fmt_->streams[si_]->codecpar) < 0)
    die(1, "cannot allocate the %s filter", clip_.bsf);
  bsf_->time_base_in = fmt_->streams[si_]->time_base;
  if (av_bsf_init(bsf_) < 0)
    die(1, "%s: cannot start the %s filter", clip_.path.c_str(), clip_.bsf);
  in_ = av_packet_alloc();
  out_ = av_packet_alloc();
}

void probe(Clip& clip) {
  AVFormatContext* fmt = nullptr;
  if (avformat_open_input(&fmt, clip.path.c_str(), nullptr, nullptr) < 0 ||
      avformat_find_stream_info(fmt, nullptr) < 0)
    die(2, "cannot open %s", clip.path.c_str());
  const int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (si < 0) die(2, "no video stream in %s", clip.path.c_str());
  clip.codec_id = fmt->streams[si]->codecpar->codec_id;
  avformat_close_input(&fmt);
  if (!codec_of(clip.codec_id, &clip.codec, &clip.bsf))
    die(2, "%s: codec %s is not one this bench feeds to NVIDIA's parser (h264, hevc)",
        clip.path.c_str(), avcodec_get_name(clip.codec_id));
  if (g_opt.preload) {
    const bool saved = g_opt.preload;
    g_opt.preload = false;
    {
      Source s(clip);
      const uint8_t* d = nullptr;
      size_t n = 0;
      while (s.next(&d, &n)) clip.packets.emplace_back(d, d + n);
    }
    g_opt.preload = saved;
    if (clip.packets.empty()) die(2, "%s: no video packets", clip.path.c_str());
  }
}

}  // namespace nvcuvid
