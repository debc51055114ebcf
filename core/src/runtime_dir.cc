#include "runtime_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>
#include <vector>

namespace cuframes::detail {
namespace {

bool valid_chars(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Uses dir if it is a directory we can use. When it is missing, kCreate creates it (and only its
// last component); kLook creates nothing and sets *absent. private_dir additionally requires it
// to be owned by us and not a symlink (/tmp).
Status try_dir(const std::string& dir, bool private_dir, DirUse use, bool* absent) {
  *absent = false;
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "runtime dir %s", dir.c_str());
    if (use == DirUse::kLook) {
      *absent = true;
      return Ok();
    }
    if (::mkdir(dir.c_str(), 0770) != 0 && errno != EEXIST) {
      return ErrnoErr(CUFRAMES_ERR_SHM, errno, "cannot create runtime dir %s", dir.c_str());
    }
    // mkdir honours the umask; the group must get in. Sticky: members cannot remove or replace
    // each other's sockets and lock files.
    ::chmod(dir.c_str(), 01770);
    if (::lstat(dir.c_str(), &st) != 0) {
      return ErrnoErr(CUFRAMES_ERR_SHM, errno, "runtime dir %s", dir.c_str());
    }
  }
  if (private_dir) {
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
      return Err(CUFRAMES_ERR_SHM, "runtime dir %s is not a directory owned by uid %u", dir.c_str(),
                 ::geteuid());
    }
  } else if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Err(CUFRAMES_ERR_SHM, "runtime dir %s is not a directory", dir.c_str());
  }
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return ErrnoErr(CUFRAMES_ERR_SHM, errno, "runtime dir %s is not usable", dir.c_str());
  }
  return Ok();
}

// Whether a publisher could create dir (kCreate): its parent lets us add an entry.
bool creatable(const std::string& dir) {
  const std::string parent = dir.substr(0, dir.find_last_of('/') == 0 ? 1 : dir.find_last_of('/'));
  return ::access(parent.c_str(), W_OK | X_OK) == 0;
}

}  // namespace

bool valid_key(std::string_view key) {
  return valid_chars(key, CUFRAMES_KEY_MAX) && key != "." && key != "..";
}

bool valid_name(std::string_view name) {
  return valid_chars(name, CUFRAMES_NAME_MAX);
}

Status check_key(const char* key) {
  if (key == nullptr) return Err(CUFRAMES_ERR_INVALID_ARGUMENT, "key is NULL");
  if (!valid_key(key)) {
    return Err(CUFRAMES_ERR_INVALID_ARGUMENT,
               "invalid key '%.80s': want 1-64 characters of [A-Za-z0-9._-]", key);
  }
  return Ok();
}

Status resolve_runtime_dir(const char* override_dir, std::string* out, DirUse use, bool* exists) {
  bool absent = false;
  std::string chosen;
  if (override_dir != nullptr && *override_dir != '\0') {
    chosen = override_dir;
  } else if (const char* env = std::getenv("CUFRAMES_RUNTIME_DIR"); env != nullptr && *env) {
    chosen = env;
  }
  if (!chosen.empty()) {
    CUFRAMES_RETURN_IF_ERROR(try_dir(chosen, false, use, &absent));
  } else {
    // The first candidate that is there and usable, or (kCreate) can be made. Looking picks the
    // same one a publisher would, without making it.
    std::vector<std::pair<std::string, bool>> candidates{{"/run/cuframes", false}};
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg) {
      candidates.emplace_back(std::string(xdg) + "/cuframes", false);
    }
    candidates.emplace_back("/tmp/cuframes-" + std::to_string(::geteuid()), true);
    Status last;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const auto& [dir, private_dir] = candidates[i];
      const bool final = i + 1 == candidates.size();
      last = try_dir(dir, private_dir, use, &absent);
      if (last.ok() && (!absent || creatable(dir) || final)) {
        chosen = dir;
        break;
      }
      if (final) return last;
    }
  }
  if (exists != nullptr) *exists = !absent;
  *out = std::move(chosen);
  return Ok();
}

std::string socket_path(const std::string& dir, std::string_view key) {
  return dir + "/" + std::string(key) + ".sock";
}

std::string lock_path(const std::string& dir, std::string_view key) {
  return dir + "/" + std::string(key) + ".lock";
}

}  // namespace cuframes::detail
