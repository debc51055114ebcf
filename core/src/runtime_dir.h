// Runtime directory resolution, key validation and the paths derived from a key.
#pragma once

#include <string>
#include <string_view>

#include "status.h"

namespace cuframes::detail {

// [A-Za-z0-9._-]{1,64}, and not "." or "..".
bool valid_key(std::string_view key);
Status check_key(const char* key);
// [A-Za-z0-9._-]{1,63}.
bool valid_name(std::string_view name);

// A publisher makes the runtime directory; everyone else only looks.
enum class DirUse { kCreate, kLook };
// The directory per the rule in cuframes.h. kCreate creates it (01770) when missing. kLook
// creates nothing: it picks the directory a publisher would use (an existing usable candidate,
// or the first one a publisher could create) and sets *exists (if given) to whether it is there.
Status resolve_runtime_dir(const char* override_dir, std::string* out, DirUse use = DirUse::kCreate,
                           bool* exists = nullptr);

std::string socket_path(const std::string& dir, std::string_view key);
std::string lock_path(const std::string& dir, std::string_view key);

}  // namespace cuframes::detail
