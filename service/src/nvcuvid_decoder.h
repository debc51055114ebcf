// One camera's NVIDIA parser + decoder (CUvideoparser, CUvideodecoder, its context lock), called
// directly: `decoder: nvcuvid` (source_nvcuvid.cc). libcuda and libnvcuvid are loaded at run time
// through FFmpeg's loader (ffnvcodec's dynlink_loader.h), once per process; so this header and its
// .cc stay free of the CUDA toolkit's headers (the two cannot share a translation unit), and
// streams and device pointers pass as void* and uint64_t.
//
// The decoder runs in the device's primary context (the one cudart and the rings use), pushed
// on the calling thread around each call. Each displayed picture is mapped with its
// post-processing on the camera's stream and handed to the sink, which copies it out on that
// stream and waits for the copy; only then is it unmapped (FFmpeg's cuviddec.c unmaps before its
// copy has run: ffmpeg_cuda.h). H.264 and HEVC, 4:2:0: NV12, or P016 (the ring's P010) for 10-bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace cfsvc {

// A decoded picture, mapped (valid until on_picture returns).
struct NvcuvidPicture {
  uint64_t y = 0, uv = 0;  // device pointers (CUdeviceptr) of the luma and chroma planes
  uint32_t pitch = 0;      // of both planes, bytes
  uint32_t width = 0, height = 0;
  bool deep = false;  // P016 (10-bit and up, in the high bits), else NV12
  int64_t pts = 0;    // the timestamp given with the packet that carried it
  // The sequence's video signal description (H.264/HEVC VUI), as the parser reports it.
  int matrix_coefficients = 2;  // 2: unspecified
  bool full_range = false;
};

class NvcuvidSink {
 public:
  virtual ~NvcuvidSink() = default;
  // Each picture in display order. false: stop (the camera stops, or its publish failed).
  virtual bool on_picture(const NvcuvidPicture& picture) = 0;
  // A picture NVDEC reported broken (or refused): the camera counts it.
  virtual void on_decode_error(const std::string& what) = 0;
};

class NvcuvidDecoder {
 public:
  enum class Codec { kH264, kHevc };

  // Whether libcuda and libnvcuvid load and the driver initialises (loaded once per process);
  // false with *why naming what is missing.
  static bool available(std::string* why);

  NvcuvidDecoder();
  ~NvcuvidDecoder();
  NvcuvidDecoder(NvcuvidDecoder&& other) noexcept;
  NvcuvidDecoder& operator=(NvcuvidDecoder&& other) noexcept;
  NvcuvidDecoder(const NvcuvidDecoder&) = delete;
  NvcuvidDecoder& operator=(const NvcuvidDecoder&) = delete;

  // A parser for `codec` on CUDA device `device`, its pictures mapped on `stream` (a CUstream /
  // cudaStream_t of that device's primary context). The decoder itself comes with the first
  // sequence header. false with *error.
  bool open(Codec codec, int device, void* stream, std::string* error);

  // One access unit in Annex B; its pictures (and earlier ones) go to the sink as they are due
  // for display. false: stopped by the sink (*error untouched) or a failure (*error set).
  bool decode(const uint8_t* annexb, size_t size, int64_t pts, NvcuvidSink& sink,
              std::string* error);

  // End of stream (CUVID_PKT_ENDOFSTREAM): the pictures still queued go to the sink; what comes
  // next is taken as a new stream (a file's next loop). Same result as decode().
  bool flush(NvcuvidSink& sink, std::string* error);
  // Whether the last failure was a sequence this decoder refused (its chroma format, size or
  // depth unsupported by this NVDEC, or cuvidCreateDecoder failing for it): the stream, not the
  // GPU, so another decoder may take it.
  bool refused() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cfsvc
