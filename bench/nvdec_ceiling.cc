// nvdec_ceiling: FFmpeg's own NVDEC decode-only throughput, the ceiling for cuframes-service.
// N threads each decode a file (looping) with libavcodec's CUDA hwaccel, exactly as
// `ffmpeg -hwaccel cuda -hwaccel_output_format cuda -i FILE -f null -` does: frames stay in
// device memory and are dropped. Prints decoded frames per second over all streams, and the
// process's CPU time per frame (user + system, all threads).
//
//   nvdec_ceiling --seconds S --streams N [--decoder nvdec|cuvid] [--own-stream]
//                 [--extra-frames K] [--copy] [--threads T] FILE...
//
// --decoder cuvid decodes with FFmpeg's <codec>_cuvid decoder (NVIDIA's parser, several pictures
// in flight) instead of the native decoder with the CUDA hwaccel (nvdec, the default): the
// ceiling of cuframes-service's `decoder: cuvid`, like with like.
//
// The options add what cuframes-service does on top of decoding, one at a time, to find where
// its per-frame cost goes: --own-stream gives the decoder a non-blocking CUDA stream (the
// service's), --extra-frames sets extra_hw_frames, --copy copies every frame into a device buffer
// on that stream and waits for the copy (the service's publish), --threads sets the decoder's
// thread_count (libavcodec's default is 1; 0 is automatic: frame threads, as the service uses
// for files).
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/hwcontext.h>
}
#include <sys/resource.h>

#include <cuda_runtime_api.h>
extern "C" {
#include <libavutil/hwcontext_cuda.h>
}

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};
bool g_own_stream = false, g_copy = false, g_cuvid = false;
int g_extra = -1;
int g_threads = -1;

AVPixelFormat pick_cuda(AVCodecContext*, const AVPixelFormat* fmts) {
  for (const AVPixelFormat* f = fmts; *f != AV_PIX_FMT_NONE; ++f)
    if (*f == AV_PIX_FMT_CUDA) return *f;
  std::fprintf(stderr, "nvdec_ceiling: NVDEC cannot decode this stream\n");
  std::exit(1);
}

uint64_t decode_loop(const std::string& file, AVBufferRef* shared_device) {
  AVBufferRef* device = shared_device;
  cudaStream_t stream = nullptr;
  if (g_own_stream) {  // a device context of its own, with the stream set as the service does
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "primary_ctx", "1", 0);
    av_hwdevice_ctx_create(&device, AV_HWDEVICE_TYPE_CUDA, "0", opts, 0);
    av_dict_free(&opts);
    cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    reinterpret_cast<AVCUDADeviceContext*>(
        reinterpret_cast<AVHWDeviceContext*>(device->data)->hwctx)
        ->stream = stream;
  }
  void* dst = nullptr;
  cudaEvent_t ev = nullptr;
  if (g_copy) cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
  AVFormatContext* fmt = nullptr;
  if (avformat_open_input(&fmt, file.c_str(), nullptr, nullptr) < 0 ||
      avformat_find_stream_info(fmt, nullptr) < 0) {
    std::fprintf(stderr, "nvdec_ceiling: cannot open %s\n", file.c_str());
    std::exit(1);
  }
  const AVCodec* dec = nullptr;
  const int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &dec, 0);
  if (si < 0) {
    std::fprintf(stderr, "nvdec_ceiling: no video stream in %s\n", file.c_str());
    std::exit(1);
  }
  if (g_cuvid) {
    const std::string name =
        std::string(avcodec_get_name(fmt->streams[si]->codecpar->codec_id)) + "_cuvid";
    dec = avcodec_find_decoder_by_name(name.c_str());
    if (dec == nullptr) {
      std::fprintf(stderr, "nvdec_ceiling: this FFmpeg has no %s\n", name.c_str());
      std::exit(1);
    }
  }
  AVCodecContext* ctx = avcodec_alloc_context3(dec);
  avcodec_parameters_to_context(ctx, fmt->streams[si]->codecpar);
  ctx->hw_device_ctx = av_buffer_ref(device);
  ctx->get_format = &pick_cuda;
  if (g_extra >= 0) ctx->extra_hw_frames = g_extra;
  if (g_threads >= 0) ctx->thread_count = g_threads;
  if (avcodec_open2(ctx, dec, nullptr) < 0) {
    std::fprintf(stderr, "nvdec_ceiling: cannot open the %s decoder\n", dec->name);
    std::exit(1);
  }
  AVPacket* pkt = av_packet_alloc();
  AVFrame* frame = av_frame_alloc();
  uint64_t frames = 0;
  while (!g_stop.load()) {
    int rc = av_read_frame(fmt, pkt);
    if (rc == AVERROR_EOF) {  // loop: back to the start, decoder flushed
      avcodec_send_packet(ctx, nullptr);
      while (avcodec_receive_frame(ctx, frame) == 0) {
        ++frames;
        av_frame_unref(frame);
      }
      avcodec_flush_buffers(ctx);
      av_seek_frame(fmt, si, 0, AVSEEK_FLAG_BACKWARD);
      continue;
    }
    if (rc < 0) break;
    if (pkt->stream_index == si && avcodec_send_packet(ctx, pkt) == 0) {
      while (avcodec_receive_frame(ctx, frame) == 0) {
        if (g_copy) {  // the service's publish: one copy into a slot, then wait for it
          const size_t bytes = static_cast<size_t>(frame->linesize[0]) * frame->height * 3 / 2;
          if (dst == nullptr) cudaMalloc(&dst, bytes);
          cudaMemcpyAsync(dst, frame->data[0], bytes, cudaMemcpyDeviceToDevice, stream);
          cudaEventRecord(ev, stream);
          cudaEventSynchronize(ev);
        }
        ++frames;
        av_frame_unref(frame);
      }
    }
    av_packet_unref(pkt);
  }
  av_frame_free(&frame);
  av_packet_free(&pkt);
  avcodec_free_context(&ctx);
  avformat_close_input(&fmt);
  return frames;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  int streams = 1;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (a == "--own-stream")
      g_own_stream = true;
    else if (a == "--copy")
      g_copy = true;
    else if (a == "--decoder" && i + 1 < argc)
      g_cuvid = std::string(argv[++i]) == "cuvid";
    else if (a == "--extra-frames" && i + 1 < argc)
      g_extra = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc)
      g_threads = std::atoi(argv[++i]);
    else if (a == "--streams" && i + 1 < argc)
      streams = std::atoi(argv[++i]);
    else
      files.push_back(a);
  }
  if (files.empty() || streams < 1) {
    std::fprintf(stderr, "usage: nvdec_ceiling --seconds S --streams N FILE...\n");
    return 2;
  }
  av_log_set_level(AV_LOG_ERROR);
  AVBufferRef* device = nullptr;
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "primary_ctx", "1", 0);  // as cuframes-service does
  if (av_hwdevice_ctx_create(&device, AV_HWDEVICE_TYPE_CUDA, "0", opts, 0) < 0) {
    std::fprintf(stderr, "nvdec_ceiling: no CUDA device\n");
    return 1;
  }
  av_dict_free(&opts);
  std::vector<uint64_t> counts(static_cast<size_t>(streams));
  std::vector<std::thread> threads;
  auto cpu_s = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  };
  const double cpu0 = cpu_s();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&, i] {
      counts[static_cast<size_t>(i)] =
          decode_loop(files[static_cast<size_t>(i) % files.size()], device);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  g_stop = true;
  for (auto& t : threads) t.join();
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  const double cpu = cpu_s() - cpu0;
  std::printf(
      "nvdec_ceiling decoder=%s streams=%d frames=%llu seconds=%.2f cpu_us_per_frame=%.1f "
      "fps=%.1f\n",
      g_cuvid ? "cuvid" : "nvdec", streams, static_cast<unsigned long long>(total), dt,
      total ? cpu * 1e6 / total : 0.0, total / dt);
  av_buffer_unref(&device);
  return 0;
}
