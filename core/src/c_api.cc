// The C ABI: thin wrappers over the C++ internals. Every entry point converts a Status into the
// return code plus the thread's last-error message, and no exception crosses this boundary.
#include <cstring>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "clock.h"
#include "color.h"
#include "cuframes/cuframes.h"
#include "layout.h"
#include "observer.h"
#include "packet_reader.h"
#include "preprocess.h"
#include "publisher.h"
#include "registry.h"
#include "runtime_dir.h"
#include "sized.h"
#include "status.h"
#include "subscriber.h"

using cuframes::detail::Err;
using cuframes::detail::HeldFrame;
using cuframes::detail::Ok;
using cuframes::detail::out_size;
using cuframes::detail::read_options;
using cuframes::detail::Status;
using cuframes::detail::write_sized;
using cuframes::detail::write_stats;
using cuframes::detail::write_subscriber_array;

struct cuframes_publisher_t {
  std::unique_ptr<cuframes::detail::Publisher> impl;
  std::set<cuframes_loan_t*> loans;  // outstanding: orphaned (owner = NULL) at destroy
};
struct cuframes_loan_t {
  cuframes_publisher_t* owner;
  uint32_t slot;
  cuframes_frame_info_t info;
};
struct cuframes_subscriber_t {
  std::unique_ptr<cuframes::detail::Subscriber> impl;
};
struct cuframes_frame_t {
  std::unique_ptr<HeldFrame> held;
};
struct cuframes_observer_t {
  std::unique_ptr<cuframes::detail::Observer> impl;
};
struct cuframes_key_list_t {
  std::vector<std::string> keys;
};
struct cuframes_packet_reader_t {
  std::unique_ptr<cuframes::detail::PacketReader> impl;
};

namespace {

template <class F>
cuframes_status_t guard(F&& f) {
  try {
    Status st = f();
    if (st.ok()) return CUFRAMES_OK;
    return cuframes::detail::set_last_error(st);
  } catch (const std::bad_alloc&) {
    return cuframes::detail::set_last_error(Err(CUFRAMES_ERR_OUT_OF_MEMORY, "out of host memory"));
  } catch (const std::exception& e) {
    return cuframes::detail::set_last_error(Err(CUFRAMES_ERR_INTERNAL, "%s", e.what()));
  } catch (...) {
    return cuframes::detail::set_last_error(Err(CUFRAMES_ERR_INTERNAL, "unknown exception"));
  }
}

Status null_arg(const char* what) {
  return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "%s is NULL", what);
}

}  // namespace

extern "C" {

const char* cuframes_version_string(void) {
  return CUFRAMES_VERSION_STRING;
}

uint32_t cuframes_protocol_version(void) {
  return cuframes::detail::kProtocolVersion;
}

int64_t cuframes_now_ns(void) {
  return cuframes::detail::now_ns();
}

// --- publisher ---------------------------------------------------------------------------------

void cuframes_publisher_options_init(cuframes_publisher_options_t* o) {
  if (o == nullptr) return;
  *o = cuframes_publisher_options_t{};
  o->struct_size = sizeof *o;
  o->format = CUFRAMES_FORMAT_NV12;
  o->slots = 8;
  o->memory = CUFRAMES_MEMORY_HOST;
  o->policy = CUFRAMES_POLICY_DROP;
  o->wait_timeout_ms = 1000;
  o->max_subscribers = CUFRAMES_MAX_SUBSCRIBERS;
  o->packet_ring_entries = 1024;
}

cuframes_status_t cuframes_publisher_create(const char* key,
                                            const cuframes_publisher_options_t* options,
                                            cuframes_publisher_t** out) {
  return guard([&] {
    if (options == nullptr) return null_arg("options");
    if (out == nullptr) return null_arg("out");
    cuframes_publisher_options_t o;
    CUFRAMES_RETURN_IF_ERROR(
        read_options(options, cuframes_publisher_options_init, "cuframes_publisher_options_t", &o));
    auto p = std::make_unique<cuframes_publisher_t>();
    CUFRAMES_RETURN_IF_ERROR(cuframes::detail::Publisher::Create(key, o, &p->impl));
    *out = p.release();
    return Ok();
  });
}

void cuframes_publisher_destroy(cuframes_publisher_t* publisher) {
  if (publisher == nullptr) return;
  for (cuframes_loan_t* loan : publisher->loans) loan->owner = nullptr;
  delete publisher;
}

void cuframes_publisher_get_geometry(const cuframes_publisher_t* p, cuframes_geometry_t* out) {
  if (p != nullptr && out != nullptr) *out = p->impl->geometry();
}

cuframes_status_t cuframes_publisher_loan(cuframes_publisher_t* publisher, cuframes_loan_t** out) {
  return guard([&] {
    if (publisher == nullptr) return null_arg("publisher");
    if (out == nullptr) return null_arg("out");
    auto loan = std::make_unique<cuframes_loan_t>();
    auto& impl = *publisher->impl;
    uint32_t slot = 0;
    CUFRAMES_RETURN_IF_ERROR(impl.loan(&slot));
    loan->owner = publisher;
    loan->slot = slot;
    publisher->loans.insert(loan.get());
    cuframes_frame_info_t& fi = loan->info;
    fi = cuframes_frame_info_t{};
    fi.geometry = impl.geometry();
    fi.data = impl.slot_base(slot);
    fi.plane_y = static_cast<uint8_t*>(fi.data) + fi.geometry.offset_y;
    fi.plane_uv = fi.geometry.num_planes == 2
                      ? static_cast<uint8_t*>(fi.data) + fi.geometry.offset_uv
                      : nullptr;
    fi.memory = impl.memory();
    fi.device = impl.device();
    fi.slot = slot;
    *out = loan.release();
    return Ok();
  });
}

void cuframes_loan_get_info(const cuframes_loan_t* loan, cuframes_frame_info_t* out) {
  if (loan != nullptr && out != nullptr) *out = loan->info;
}

cuframes_status_t cuframes_loan_set_color(cuframes_loan_t* loan, cuframes_color_matrix_t matrix,
                                          cuframes_color_range_t range) {
  return guard([&] {
    if (loan == nullptr) return null_arg("loan");
    const uint32_t m = cuframes::detail::raw_enum(matrix), r = cuframes::detail::raw_enum(range);
    CUFRAMES_RETURN_IF_ERROR(cuframes::detail::check_color(m, r, "loan"));
    loan->info.color_matrix = cuframes::detail::color_matrix_from(m);
    loan->info.color_range = cuframes::detail::color_range_from(r);
    return Ok();
  });
}

cuframes_status_t cuframes_publisher_commit(cuframes_publisher_t* publisher, cuframes_loan_t* loan,
                                            int64_t pts_ns, void* cuda_stream, uint64_t* seq_out) {
  std::unique_ptr<cuframes_loan_t> owned(loan);
  return guard([&] {
    if (loan == nullptr) return null_arg("loan");
    cuframes_publisher_t* owner = loan->owner;
    if (owner == nullptr) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "the loan's publisher is gone");
    owner->loans.erase(loan);
    if (owner != publisher) {
      owner->impl->abandon(loan->slot);  // still give the slot back to its publisher
      return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "loan belongs to another publisher");
    }
    return owner->impl->commit(loan->slot, pts_ns, cuda_stream, loan->info.color_matrix,
                               loan->info.color_range, seq_out);
  });
}

void cuframes_publisher_abandon(cuframes_publisher_t* publisher, cuframes_loan_t* loan) {
  (void)publisher;  // the loan knows its publisher
  if (loan == nullptr) return;
  if (loan->owner != nullptr) {
    loan->owner->loans.erase(loan);
    loan->owner->impl->abandon(loan->slot);
  }
  delete loan;
}

void cuframes_source_init(cuframes_source_t* source) {
  if (source == nullptr) return;
  *source = cuframes_source_t{};
  source->struct_size = sizeof *source;
  source->memory = CUFRAMES_MEMORY_HOST;
}

cuframes_status_t cuframes_publisher_publish(cuframes_publisher_t* publisher,
                                             const cuframes_source_t* source, int64_t pts_ns,
                                             uint64_t* seq_out) {
  return guard([&] {
    if (publisher == nullptr) return null_arg("publisher");
    if (source == nullptr) return null_arg("source");
    cuframes_source_t src;
    CUFRAMES_RETURN_IF_ERROR(read_options(source, cuframes_source_init, "cuframes_source_t", &src));
    return publisher->impl->publish(src, pts_ns, seq_out);
  });
}

cuframes_status_t cuframes_publisher_get_stats(const cuframes_publisher_t* p,
                                               cuframes_publisher_stats_t* out) {
  return guard([&] {
    if (p == nullptr) return null_arg("publisher");
    return write_stats(out, "cuframes_publisher_stats_t",
                       [&](cuframes_publisher_stats_t* v) { p->impl->stats(v); });
  });
}

cuframes_status_t cuframes_publisher_read_subscribers(const cuframes_publisher_t* p,
                                                      cuframes_subscriber_stats_t* subs,
                                                      size_t capacity, size_t* count) {
  return guard([&] {
    if (p == nullptr) return null_arg("publisher");
    return write_subscriber_array(subs, capacity, count,
                                  [&](cuframes_subscriber_stats_t* all, size_t cap, size_t* n) {
                                    *n = 0;
                                    p->impl->read_subscribers(all, cap, n);
                                    return Ok();
                                  });
  });
}

cuframes_status_t cuframes_publisher_set_codec(cuframes_publisher_t* publisher,
                                               const cuframes_codec_params_t* p) {
  return guard([&] {
    if (publisher == nullptr) return null_arg("publisher");
    if (p == nullptr) return null_arg("params");
    return publisher->impl->set_codec(*p);
  });
}

cuframes_status_t cuframes_publisher_write_packet(cuframes_publisher_t* publisher,
                                                  const cuframes_packet_t* packet) {
  return guard([&] {
    if (publisher == nullptr) return null_arg("publisher");
    if (packet == nullptr) return null_arg("packet");
    return publisher->impl->write_packet(*packet);
  });
}

// --- subscriber --------------------------------------------------------------------------------

void cuframes_subscriber_options_init(cuframes_subscriber_options_t* o) {
  if (o == nullptr) return;
  *o = cuframes_subscriber_options_t{};
  o->struct_size = sizeof *o;
  o->mode = CUFRAMES_MODE_NEWEST_ONLY;
  o->connect_timeout_ms = -1;
}

cuframes_status_t cuframes_subscriber_create(const char* key,
                                             const cuframes_subscriber_options_t* options,
                                             cuframes_subscriber_t** out) {
  return guard([&] {
    if (options == nullptr) return null_arg("options");
    if (out == nullptr) return null_arg("out");
    cuframes_subscriber_options_t o;
    CUFRAMES_RETURN_IF_ERROR(read_options(options, cuframes_subscriber_options_init,
                                          "cuframes_subscriber_options_t", &o));
    auto s = std::make_unique<cuframes_subscriber_t>();
    CUFRAMES_RETURN_IF_ERROR(cuframes::detail::Subscriber::Create(key, o, &s->impl));
    *out = s.release();
    return Ok();
  });
}

void cuframes_subscriber_destroy(cuframes_subscriber_t* subscriber) {
  if (subscriber == nullptr) return;
  cuframes::detail::Subscriber::destroy(std::move(subscriber->impl));
  delete subscriber;
}

int cuframes_subscriber_fd(const cuframes_subscriber_t* s) {
  return s == nullptr ? -1 : s->impl->fd();
}

cuframes_status_t cuframes_subscriber_next(cuframes_subscriber_t* subscriber, int timeout_ms,
                                           cuframes_frame_t** out) {
  return guard([&] {
    if (subscriber == nullptr) return null_arg("subscriber");
    if (out == nullptr) return null_arg("out");
    auto f = std::make_unique<cuframes_frame_t>();
    CUFRAMES_RETURN_IF_ERROR(subscriber->impl->next(timeout_ms, &f->held));
    *out = f.release();
    return Ok();
  });
}

cuframes_status_t cuframes_subscriber_next_slice(cuframes_subscriber_t* subscriber, int timeout_ms,
                                                 cuframes_frame_t** out) {
  return guard([&] {
    if (subscriber == nullptr) return null_arg("subscriber");
    if (out == nullptr) return null_arg("out");
    auto f = std::make_unique<cuframes_frame_t>();
    CUFRAMES_RETURN_IF_ERROR(subscriber->impl->next_slice(timeout_ms, &f->held));
    *out = f.release();
    return Ok();
  });
}

void cuframes_frame_get_info(const cuframes_frame_t* frame, cuframes_frame_info_t* out) {
  if (frame != nullptr && out != nullptr) *out = frame->held->info;
}

cuframes_status_t cuframes_frame_release(cuframes_frame_t* frame, void* cuda_stream) {
  if (frame == nullptr) return CUFRAMES_OK;
  std::unique_ptr<cuframes_frame_t> owned(frame);
  return guard([&] { return frame->held->release(cuda_stream); });
}

cuframes_status_t cuframes_subscriber_get_stats(const cuframes_subscriber_t* s,
                                                cuframes_subscriber_stats_t* out) {
  return guard([&] {
    if (s == nullptr) return null_arg("subscriber");
    return write_stats(out, "cuframes_subscriber_stats_t",
                       [&](cuframes_subscriber_stats_t* v) { s->impl->stats(v); });
  });
}

void cuframes_subscriber_note_timeout(cuframes_subscriber_t* s) {
  if (s != nullptr) s->impl->note_timeout();
}

cuframes_status_t cuframes_subscriber_get_ring_status(const cuframes_subscriber_t* s,
                                                      cuframes_ring_status_t* out) {
  return guard([&] {
    if (s == nullptr) return null_arg("subscriber");
    return write_stats(out, "cuframes_ring_status_t", [&](cuframes_ring_status_t* v) {
      s->impl->ring_status(v);
      v->stats.struct_size = sizeof v->stats;
    });
  });
}

const char* cuframes_subscriber_name(const cuframes_subscriber_t* s) {
  return s == nullptr ? "" : s->impl->name().c_str();
}

void cuframes_subscriber_get_geometry(const cuframes_subscriber_t* s, cuframes_geometry_t* out) {
  if (s != nullptr && out != nullptr) *out = s->impl->info().geometry;
}

cuframes_memory_t cuframes_subscriber_memory(const cuframes_subscriber_t* s) {
  return s == nullptr ? CUFRAMES_MEMORY_HOST : s->impl->info().memory;
}

cuframes_status_t cuframes_subscriber_start_callback(cuframes_subscriber_t* subscriber,
                                                     cuframes_frame_callback_t callback,
                                                     void* user) {
  return guard([&] {
    if (subscriber == nullptr) return null_arg("subscriber");
    if (callback == nullptr) return null_arg("callback");
    return subscriber->impl->start_callback(
        [callback, user](std::unique_ptr<HeldFrame> held, const Status& st) {
          if (!st.ok()) {
            cuframes::detail::set_last_error(st);  // readable from inside the callback
            callback(user, nullptr, st.code());
            return;
          }
          // If this allocation fails, held (not moved) releases the frame itself.
          cuframes_frame_t* frame = new (std::nothrow) cuframes_frame_t{std::move(held)};
          if (frame != nullptr) callback(user, frame, CUFRAMES_OK);
        });
  });
}

void cuframes_subscriber_stop_callback(cuframes_subscriber_t* subscriber) {
  if (subscriber == nullptr) return;
  try {
    subscriber->impl->stop_callback();
  } catch (const std::exception& e) {
    cuframes::detail::set_last_error(Err(CUFRAMES_ERR_INTERNAL, "%s", e.what()));
  }
}

// --- preprocessing -----------------------------------------------------------------------------

void cuframes_preprocess_options_init(cuframes_preprocess_options_t* o) {
  if (o != nullptr) *o = cuframes::detail::preprocess_defaults();
}

size_t cuframes_preprocess_bytes(const cuframes_preprocess_options_t* options, size_t count) {
  if (options == nullptr) return 0;
  cuframes_preprocess_options_t o;
  if (!read_options(options, cuframes_preprocess_options_init, "cuframes_preprocess_options_t", &o)
           .ok()) {
    return 0;
  }
  return cuframes::detail::preprocess_bytes(o, count);
}

cuframes_status_t cuframes_preprocess(cuframes_frame_t* const* frames, size_t count,
                                      const cuframes_preprocess_options_t* options, void* out,
                                      size_t out_bytes, cuframes_transform_t* transforms) {
  return guard([&] {
    if (frames == nullptr && count != 0) return null_arg("frames");
    if (options == nullptr) return null_arg("options");
    cuframes_preprocess_options_t o;
    CUFRAMES_RETURN_IF_ERROR(read_options(options, cuframes_preprocess_options_init,
                                          "cuframes_preprocess_options_t", &o));
    std::vector<cuframes::detail::PreprocessInput> in(count);
    for (size_t i = 0; i < count; ++i) {
      if (frames[i] == nullptr || !frames[i]->held) {
        return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "frames[%zu] is NULL", i);
      }
      const HeldFrame& h = *frames[i]->held;
      if (!h.core) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "frames[%zu] was released", i);
      in[i] = {&h.info, h.core->consumer_stream};
    }
    return cuframes::detail::preprocess(in.data(), count, o, out, out_bytes, transforms);
  });
}

// --- observer ----------------------------------------------------------------------------------

cuframes_status_t cuframes_observer_create(const char* key, const char* runtime_dir,
                                           int connect_timeout_ms, cuframes_observer_t** out) {
  return guard([&] {
    if (out == nullptr) return null_arg("out");
    auto o = std::make_unique<cuframes_observer_t>();
    CUFRAMES_RETURN_IF_ERROR(
        cuframes::detail::Observer::Create(key, runtime_dir, connect_timeout_ms, &o->impl));
    *out = o.release();
    return Ok();
  });
}

void cuframes_observer_destroy(cuframes_observer_t* observer) {
  delete observer;
}

cuframes_status_t cuframes_observer_read(cuframes_observer_t* observer,
                                         cuframes_ring_status_t* ring,
                                         cuframes_subscriber_stats_t* subs, size_t capacity,
                                         size_t* count) {
  return guard([&] {
    if (observer == nullptr) return null_arg("observer");
    size_t ring_size = 0;
    if (ring != nullptr) {
      CUFRAMES_RETURN_IF_ERROR(
          out_size<cuframes_ring_status_t>(ring, "cuframes_ring_status_t", &ring_size));
    }
    cuframes_ring_status_t r{};
    CUFRAMES_RETURN_IF_ERROR(write_subscriber_array(
        subs, capacity, count, [&](cuframes_subscriber_stats_t* all, size_t cap, size_t* n) {
          return observer->impl->read(ring != nullptr ? &r : nullptr, all, cap, n);
        }));
    if (ring != nullptr) {
      r.stats.struct_size = sizeof r.stats;
      write_sized(r, ring_size, ring);
    }
    return Ok();
  });
}

// --- listing -----------------------------------------------------------------------------------

namespace {

Status runtime_dir_into(const char* runtime_dir, cuframes::detail::DirUse use, char* out,
                        size_t cap, int* exists) {
  if (out == nullptr) return null_arg("out");
  std::string dir;
  bool there = false;
  CUFRAMES_RETURN_IF_ERROR(cuframes::detail::resolve_runtime_dir(runtime_dir, &dir, use, &there));
  if (dir.size() + 1 > cap) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "runtime dir %s needs %zu bytes, cap is %zu",
               dir.c_str(), dir.size() + 1, cap);
  }
  std::memcpy(out, dir.c_str(), dir.size() + 1);
  if (exists != nullptr) *exists = there ? 1 : 0;
  return Ok();
}

}  // namespace

cuframes_status_t cuframes_runtime_dir(const char* runtime_dir, char* out, size_t cap,
                                       int* exists) {
  return guard([&] {
    return runtime_dir_into(runtime_dir, cuframes::detail::DirUse::kLook, out, cap, exists);
  });
}

cuframes_status_t cuframes_runtime_dir_create(const char* runtime_dir, char* out, size_t cap) {
  return guard([&] {
    return runtime_dir_into(runtime_dir, cuframes::detail::DirUse::kCreate, out, cap, nullptr);
  });
}

cuframes_status_t cuframes_list_publishers(const char* runtime_dir, cuframes_key_list_t** out) {
  return guard([&] {
    if (out == nullptr) return null_arg("out");
    auto list = std::make_unique<cuframes_key_list_t>();
    CUFRAMES_RETURN_IF_ERROR(cuframes::detail::list_publishers(runtime_dir, &list->keys));
    *out = list.release();
    return Ok();
  });
}

size_t cuframes_key_list_size(const cuframes_key_list_t* list) {
  return list == nullptr ? 0 : list->keys.size();
}

const char* cuframes_key_list_get(const cuframes_key_list_t* list, size_t index) {
  if (list == nullptr || index >= list->keys.size()) return nullptr;
  return list->keys[index].c_str();
}

void cuframes_key_list_destroy(cuframes_key_list_t* list) {
  delete list;
}

// --- packets -----------------------------------------------------------------------------------

void cuframes_packet_reader_options_init(cuframes_packet_reader_options_t* o) {
  if (o == nullptr) return;
  *o = cuframes_packet_reader_options_t{};
  o->struct_size = sizeof *o;
  o->connect_timeout_ms = -1;
}

cuframes_status_t cuframes_packet_reader_create(const char* key,
                                                const cuframes_packet_reader_options_t* options,
                                                cuframes_packet_reader_t** out) {
  return guard([&] {
    if (options == nullptr) return null_arg("options");
    if (out == nullptr) return null_arg("out");
    cuframes_packet_reader_options_t o;
    CUFRAMES_RETURN_IF_ERROR(read_options(options, cuframes_packet_reader_options_init,
                                          "cuframes_packet_reader_options_t", &o));
    auto r = std::make_unique<cuframes_packet_reader_t>();
    CUFRAMES_RETURN_IF_ERROR(cuframes::detail::PacketReader::Create(key, o, &r->impl));
    *out = r.release();
    return Ok();
  });
}

void cuframes_packet_reader_destroy(cuframes_packet_reader_t* reader) {
  delete reader;
}

int cuframes_packet_reader_fd(const cuframes_packet_reader_t* r) {
  return r == nullptr ? -1 : r->impl->fd();
}

cuframes_status_t cuframes_packet_reader_get_codec(cuframes_packet_reader_t* r,
                                                   cuframes_codec_params_t* out) {
  return guard([&] {
    if (r == nullptr) return null_arg("reader");
    if (out == nullptr) return null_arg("out");
    return r->impl->codec(out);
  });
}

cuframes_status_t cuframes_packet_reader_next(cuframes_packet_reader_t* reader, int timeout_ms,
                                              cuframes_packet_t* out) {
  return guard([&] {
    if (reader == nullptr) return null_arg("reader");
    if (out == nullptr) return null_arg("out");
    return reader->impl->next(timeout_ms, out);
  });
}

cuframes_status_t cuframes_packet_reader_get_stats(const cuframes_packet_reader_t* r,
                                                   cuframes_packet_reader_stats_t* out) {
  return guard([&] {
    if (r == nullptr) return null_arg("reader");
    return write_stats(out, "cuframes_packet_reader_stats_t",
                       [&](cuframes_packet_reader_stats_t* v) { *v = r->impl->stats(); });
  });
}

}  // extern "C"
