// Structs that carry struct_size (cuframes.h, "Sized structs"): a caller's options read over the
// defaults, stats written up to the caller's size. The caller's struct may be smaller than ours
// (built against an older cuframes.h): nothing past its struct_size is read or written.
#pragma once

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "status.h"

namespace cuframes::detail {

// INVALID_ARGUMENT naming the struct ("cuframes_publisher_options_t.struct_size is 0 ...") for 0,
// for less than the field itself, and for more than this library knows (`known`, its sizeof).
Status check_struct_size(size_t size, size_t known, const char* name);

// The struct_size at the start of a caller's struct (read as bytes: the struct may be smaller).
inline size_t struct_size_at(const void* p) {
  size_t n;
  std::memcpy(&n, p, sizeof n);
  return n;
}

template <class T>
constexpr void assert_sized() {
  static_assert(std::is_trivially_copyable_v<T> && std::is_standard_layout_v<T>);
  static_assert(offsetof(T, struct_size) == 0, "struct_size leads");
}

// *out = defaults, overlaid with the caller's fields up to its struct_size; out->struct_size is
// then sizeof(T). Enum fields are copied as bytes: check them with raw_enum before loading them.
template <class T>
Status read_sized(const T* in, const T& defaults, const char* name, T* out) {
  assert_sized<T>();
  const size_t size = struct_size_at(in);
  CUFRAMES_RETURN_IF_ERROR(check_struct_size(size, sizeof(T), name));
  *out = defaults;
  std::memcpy(reinterpret_cast<char*>(out) + sizeof(size_t),
              reinterpret_cast<const char*>(in) + sizeof(size_t), size - sizeof(size_t));
  out->struct_size = sizeof(T);
  return Ok();
}

// Copies value's fields into the caller's struct at out, up to size (its checked struct_size);
// the caller's struct_size stays as it was.
template <class T>
void write_sized(const T& value, size_t size, void* out) {
  assert_sized<T>();
  std::memcpy(static_cast<char*>(out) + sizeof(size_t),
              reinterpret_cast<const char*>(&value) + sizeof(size_t), size - sizeof(size_t));
}

// For an output struct: its checked struct_size in *size.
template <class T>
Status out_size(const void* out, const char* name, size_t* size) {
  assert_sized<T>();
  *size = struct_size_at(out);
  return check_struct_size(*size, sizeof(T), name);
}

// A caller's options over the defaults its _init() gives.
template <class T>
Status read_options(const T* in, void (*init)(T*), const char* name, T* out) {
  T defaults;
  init(&defaults);
  return read_sized(in, defaults, name, out);
}

// Stats: fill (the library's full struct) written up to the caller's struct_size.
template <class T, class F>
Status write_stats(T* out, const char* name, F&& fill) {
  if (out == nullptr) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "out is NULL");
  size_t size = 0;
  CUFRAMES_RETURN_IF_ERROR(out_size<T>(out, name, &size));
  T value{};
  fill(&value);
  write_sized(value, size, out);
  return Ok();
}

// An array of subscriber stats at the caller's element size (subs[0].struct_size): read reads up
// to cap full structs into a buffer of ours; *count as read says.
template <class F>
Status write_subscriber_array(cuframes_subscriber_stats_t* subs, size_t cap, size_t* count,
                              F&& read) {
  if (subs == nullptr || cap == 0) {
    size_t n = 0;
    CUFRAMES_RETURN_IF_ERROR(read(nullptr, 0, &n));
    if (count != nullptr) *count = n;
    return Ok();
  }
  size_t size = 0;
  CUFRAMES_RETURN_IF_ERROR(
      out_size<cuframes_subscriber_stats_t>(subs, "cuframes_subscriber_stats_t", &size));
  std::vector<cuframes_subscriber_stats_t> all(cap);
  size_t n = 0;
  CUFRAMES_RETURN_IF_ERROR(read(all.data(), cap, &n));
  char* base = reinterpret_cast<char*>(subs);
  for (size_t i = 0; i < n && i < cap; ++i) {
    std::memcpy(base + i * size, &size, sizeof size);
    write_sized(all[i], size, base + i * size);
  }
  if (count != nullptr) *count = n;
  return Ok();
}

}  // namespace cuframes::detail
