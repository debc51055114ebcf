// cuframes C++ layer: a move-only RAII class over each handle of cuframes.h. Header-only.
//
// Errors are thrown as cuframes::Error, carrying the C status and the message; the noexcept
// try_* forms return the status instead. Lifetimes and thread safety are those of the C ABI:
// a Frame may outlive its Subscriber and be released from any thread; everything else belongs to
// one thread at a time.
#ifndef CUFRAMES_CUFRAMES_HPP_
#define CUFRAMES_CUFRAMES_HPP_

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cuframes/cuframes.h"

namespace cuframes {

class Error : public std::runtime_error {
 public:
  Error(cuframes_status_t status, const std::string& message)
      : std::runtime_error(std::string(cuframes_status_name(status)) + ": " + message),
        status_(status) {}
  cuframes_status_t status() const noexcept { return status_; }

 private:
  cuframes_status_t status_;
};

// Throws Error for anything but CUFRAMES_OK, with the thread's last error message.
inline void check(cuframes_status_t status) {
  if (status != CUFRAMES_OK) throw Error(status, cuframes_last_error());
}

inline int64_t now_ns() noexcept {
  return cuframes_now_ns();
}

// A zeroed stats struct with its struct_size set (cuframes.h, "Sized structs").
template <class T>
T sized() noexcept {
  T t{};
  t.struct_size = sizeof t;
  return t;
}

// Owns one C handle; Destroy is its _destroy function.
template <class T, void (*Destroy)(T*)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(T* p) noexcept : p_(p) {}
  Handle(Handle&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) reset(std::exchange(o.p_, nullptr));
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  T* get() const noexcept { return p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  void reset(T* p = nullptr) noexcept {
    if (p_ != nullptr) Destroy(p_);
    p_ = p;
  }
  T* release() noexcept { return std::exchange(p_, nullptr); }

 private:
  T* p_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
class Publisher;

// A slot lent for writing. Abandoned on destruction unless committed.
class Loan {
 public:
  Loan() = default;
  Loan(Loan&& o) noexcept
      : pub_(std::exchange(o.pub_, nullptr)), loan_(std::exchange(o.loan_, nullptr)) {}
  Loan& operator=(Loan&& o) noexcept {
    if (this != &o) {
      abandon();
      pub_ = std::exchange(o.pub_, nullptr);
      loan_ = std::exchange(o.loan_, nullptr);
    }
    return *this;
  }
  Loan(const Loan&) = delete;
  Loan& operator=(const Loan&) = delete;
  ~Loan() { abandon(); }

  cuframes_frame_info_t info() const noexcept {
    cuframes_frame_info_t i{};
    cuframes_loan_get_info(loan_, &i);
    return i;
  }
  void abandon() noexcept {
    if (loan_ != nullptr) cuframes_publisher_abandon(pub_, std::exchange(loan_, nullptr));
  }
  // The colour description commit publishes with the frame.
  void set_color(cuframes_color_matrix_t matrix, cuframes_color_range_t range) {
    check(cuframes_loan_set_color(loan_, matrix, range));
  }

 private:
  friend class Publisher;
  Loan(cuframes_publisher_t* pub, cuframes_loan_t* loan) : pub_(pub), loan_(loan) {}
  cuframes_publisher_t* pub_ = nullptr;
  cuframes_loan_t* loan_ = nullptr;
};

class Publisher {
 public:
  struct Options : cuframes_publisher_options_t {
    Options() { cuframes_publisher_options_init(this); }
  };

  Publisher() = default;
  Publisher(const std::string& key, const Options& options) {
    cuframes_publisher_t* p = nullptr;
    check(cuframes_publisher_create(key.c_str(), &options, &p));
    h_.reset(p);
  }

  cuframes_publisher_t* get() const noexcept { return h_.get(); }

  cuframes_geometry_t geometry() const noexcept {
    cuframes_geometry_t g{};
    cuframes_publisher_get_geometry(h_.get(), &g);
    return g;
  }
  // Throws Error(FRAME_TIMEOUT) when no slot could be had (the frame counts as dropped).
  Loan loan() {
    cuframes_loan_t* l = nullptr;
    check(cuframes_publisher_loan(h_.get(), &l));
    return Loan(h_.get(), l);
  }
  // Publishes the loan; returns its seq.
  uint64_t commit(Loan&& loan, int64_t pts_ns = now_ns(), void* cuda_stream = nullptr) {
    uint64_t seq = 0;
    cuframes_loan_t* l = std::exchange(loan.loan_, nullptr);
    loan.pub_ = nullptr;
    check(cuframes_publisher_commit(h_.get(), l, pts_ns, cuda_stream, &seq));
    return seq;
  }
  // Copies a frame in; returns its seq, 0 when it was dropped (DROP policy, every slot held).
  uint64_t publish(const cuframes_source_t& source, int64_t pts_ns = now_ns()) {
    uint64_t seq = 0;
    check(cuframes_publisher_publish(h_.get(), &source, pts_ns, &seq));
    return seq;
  }
  cuframes_publisher_stats_t stats() const noexcept {
    auto s = sized<cuframes_publisher_stats_t>();
    (void)cuframes_publisher_get_stats(h_.get(), &s);  // fails only for a moved-from handle
    return s;
  }
  std::vector<cuframes_subscriber_stats_t> subscribers() const {
    std::vector<cuframes_subscriber_stats_t> v(CUFRAMES_MAX_SUBSCRIBERS,
                                               sized<cuframes_subscriber_stats_t>());
    size_t n = 0;
    (void)cuframes_publisher_read_subscribers(h_.get(), v.data(), v.size(), &n);
    v.resize(n < v.size() ? n : v.size());
    return v;
  }
  void set_codec(const cuframes_codec_params_t& params) {
    check(cuframes_publisher_set_codec(h_.get(), &params));
  }
  void write_packet(const cuframes_packet_t& packet) {
    check(cuframes_publisher_write_packet(h_.get(), &packet));
  }

 private:
  Handle<cuframes_publisher_t, cuframes_publisher_destroy> h_;
};

// ---------------------------------------------------------------------------------------------
// A held frame. Released on destruction (on the subscriber's consumer stream).
class Frame {
 public:
  Frame() = default;
  explicit Frame(cuframes_frame_t* f) noexcept : f_(f) {}
  Frame(Frame&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  Frame& operator=(Frame&& o) noexcept {
    if (this != &o) {
      reset();
      f_ = std::exchange(o.f_, nullptr);
    }
    return *this;
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  ~Frame() { reset(); }

  explicit operator bool() const noexcept { return f_ != nullptr; }
  cuframes_frame_t* get() const noexcept { return f_; }
  cuframes_frame_info_t info() const noexcept {
    cuframes_frame_info_t i{};
    cuframes_frame_get_info(f_, &i);
    return i;
  }
  // Releases once the work queued on cuda_stream (NULL: the consumer stream) has finished.
  void release(void* cuda_stream = nullptr) {
    if (f_ != nullptr) check(cuframes_frame_release(std::exchange(f_, nullptr), cuda_stream));
  }

 private:
  void reset() noexcept {
    if (f_ != nullptr) (void)cuframes_frame_release(std::exchange(f_, nullptr), nullptr);
  }
  cuframes_frame_t* f_ = nullptr;
};

class Subscriber {
 public:
  struct Options : cuframes_subscriber_options_t {
    Options() { cuframes_subscriber_options_init(this); }
  };

  Subscriber() = default;
  Subscriber(const std::string& key, const Options& options) {
    cuframes_subscriber_t* s = nullptr;
    check(cuframes_subscriber_create(key.c_str(), &options, &s));
    h_.reset(s);
  }

  cuframes_subscriber_t* get() const noexcept { return h_.get(); }
  int fd() const noexcept { return cuframes_subscriber_fd(h_.get()); }
  std::string name() const { return cuframes_subscriber_name(h_.get()); }
  cuframes_geometry_t geometry() const noexcept {
    cuframes_geometry_t g{};
    cuframes_subscriber_get_geometry(h_.get(), &g);
    return g;
  }
  cuframes_memory_t memory() const noexcept { return cuframes_subscriber_memory(h_.get()); }

  // Throws Error: FRAME_TIMEOUT, PUBLISHER_GONE, OVERRUN, ...
  Frame next(int timeout_ms = -1) {
    cuframes_frame_t* f = nullptr;
    check(cuframes_subscriber_next(h_.get(), timeout_ms, &f));
    return Frame(f);
  }
  // The same without exceptions.
  cuframes_status_t try_next(int timeout_ms, Frame* out) noexcept {
    cuframes_frame_t* f = nullptr;
    cuframes_status_t st = cuframes_subscriber_next(h_.get(), timeout_ms, &f);
    if (st == CUFRAMES_OK) *out = Frame(f);
    return st;
  }
  // try_next for one slice of a longer wait: a slice without a frame is not counted as a timeout.
  cuframes_status_t try_next_slice(int timeout_ms, Frame* out) noexcept {
    cuframes_frame_t* f = nullptr;
    cuframes_status_t st = cuframes_subscriber_next_slice(h_.get(), timeout_ms, &f);
    if (st == CUFRAMES_OK) *out = Frame(f);
    return st;
  }
  cuframes_subscriber_stats_t stats() const noexcept {
    auto s = sized<cuframes_subscriber_stats_t>();
    (void)cuframes_subscriber_get_stats(h_.get(), &s);  // fails only for a moved-from handle
    return s;
  }
  // The ring as the publisher sees it: published, dropped, occupancy, geometry.
  cuframes_ring_status_t ring_status() const noexcept {
    auto r = sized<cuframes_ring_status_t>();
    (void)cuframes_subscriber_get_ring_status(h_.get(), &r);
    return r;
  }
  // For callers waiting on fd() themselves: count one wait that timed out.
  void note_timeout() noexcept { cuframes_subscriber_note_timeout(h_.get()); }

 private:
  Handle<cuframes_subscriber_t, cuframes_subscriber_destroy> h_;
};

// ---------------------------------------------------------------------------------------------
// Preprocessing: frames to one model-ready batch (cuframes_preprocess) in memory of the caller's.
struct PreprocessOptions : cuframes_preprocess_options_t {
  PreprocessOptions() { cuframes_preprocess_options_init(this); }
  PreprocessOptions(uint32_t w, uint32_t h) : PreprocessOptions() {
    width = w;
    height = h;
  }
};

// Bytes the batch of count frames takes (0 for options cuframes_preprocess refuses).
inline size_t preprocess_bytes(const PreprocessOptions& options, size_t count) noexcept {
  return cuframes_preprocess_bytes(&options, count);
}

// Writes frames as one batch into out; returns each frame's transform. Throws Error.
inline std::vector<cuframes_transform_t> preprocess(const std::vector<const Frame*>& frames,
                                                    const PreprocessOptions& options, void* out,
                                                    size_t out_bytes) {
  std::vector<cuframes_frame_t*> handles;
  handles.reserve(frames.size());
  for (const Frame* f : frames) handles.push_back(f != nullptr ? f->get() : nullptr);
  std::vector<cuframes_transform_t> transforms(frames.size());
  check(cuframes_preprocess(handles.data(), handles.size(), &options, out, out_bytes,
                            transforms.data()));
  return transforms;
}

// ---------------------------------------------------------------------------------------------
class Observer {
 public:
  Observer() = default;
  explicit Observer(const std::string& key, int connect_timeout_ms = 0,
                    const char* runtime_dir = nullptr) {
    cuframes_observer_t* o = nullptr;
    check(cuframes_observer_create(key.c_str(), runtime_dir, connect_timeout_ms, &o));
    h_.reset(o);
  }
  cuframes_observer_t* get() const noexcept { return h_.get(); }

  struct Snapshot {
    cuframes_ring_status_t ring = sized<cuframes_ring_status_t>();
    std::vector<cuframes_subscriber_stats_t> subscribers;
  };
  // Throws Error(PUBLISHER_GONE) once the publisher has gone.
  Snapshot read() const {
    Snapshot s;
    s.subscribers.resize(CUFRAMES_MAX_SUBSCRIBERS, sized<cuframes_subscriber_stats_t>());
    size_t n = 0;
    check(
        cuframes_observer_read(h_.get(), &s.ring, s.subscribers.data(), s.subscribers.size(), &n));
    s.subscribers.resize(n < s.subscribers.size() ? n : s.subscribers.size());
    return s;
  }

 private:
  Handle<cuframes_observer_t, cuframes_observer_destroy> h_;
};

// The runtime directory a peer looks in (nothing is created); *exists, if given, whether it is
// there.
inline std::string runtime_dir(const char* dir = nullptr, bool* exists = nullptr) {
  char buf[CUFRAMES_PATH_MAX];
  int there = 0;
  check(cuframes_runtime_dir(dir, buf, sizeof buf, &there));
  if (exists) *exists = there != 0;
  return buf;
}

// The runtime directory as a publisher resolves it, made when missing.
inline std::string runtime_dir_create(const char* dir = nullptr) {
  char buf[CUFRAMES_PATH_MAX];
  check(cuframes_runtime_dir_create(dir, buf, sizeof buf));
  return buf;
}

inline std::vector<std::string> list_publishers(const char* runtime_dir = nullptr) {
  cuframes_key_list_t* l = nullptr;
  check(cuframes_list_publishers(runtime_dir, &l));
  Handle<cuframes_key_list_t, cuframes_key_list_destroy> list(l);
  std::vector<std::string> keys;
  for (size_t i = 0; i < cuframes_key_list_size(l); ++i)
    keys.emplace_back(cuframes_key_list_get(l, i));
  return keys;
}

// ---------------------------------------------------------------------------------------------
class PacketReader {
 public:
  struct Options : cuframes_packet_reader_options_t {
    Options() { cuframes_packet_reader_options_init(this); }
  };
  PacketReader() = default;
  PacketReader(const std::string& key, const Options& options) {
    cuframes_packet_reader_t* r = nullptr;
    check(cuframes_packet_reader_create(key.c_str(), &options, &r));
    h_.reset(r);
  }
  cuframes_packet_reader_t* get() const noexcept { return h_.get(); }
  int fd() const noexcept { return cuframes_packet_reader_fd(h_.get()); }
  // out.data stays valid until the next call.
  cuframes_packet_t next(int timeout_ms = -1) {
    cuframes_packet_t p{};
    check(cuframes_packet_reader_next(h_.get(), timeout_ms, &p));
    return p;
  }
  cuframes_codec_params_t codec() {
    cuframes_codec_params_t c{};
    check(cuframes_packet_reader_get_codec(h_.get(), &c));
    return c;
  }
  cuframes_packet_reader_stats_t stats() const noexcept {
    auto s = sized<cuframes_packet_reader_stats_t>();
    (void)cuframes_packet_reader_get_stats(h_.get(), &s);
    return s;
  }

 private:
  Handle<cuframes_packet_reader_t, cuframes_packet_reader_destroy> h_;
};

}  // namespace cuframes

#endif  // CUFRAMES_CUFRAMES_HPP_
