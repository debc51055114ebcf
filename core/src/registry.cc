#include "registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "fd.h"
#include "runtime_dir.h"

namespace cuframes::detail {

Status list_publishers(const char* runtime_dir, std::vector<std::string>* keys) {
  std::string dir;
  bool exists = false;
  CUFRAMES_RETURN_IF_ERROR(resolve_runtime_dir(runtime_dir, &dir, DirUse::kLook, &exists));
  keys->clear();
  if (!exists) return Ok();  // nobody has published there yet: nothing to list, nothing made
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoErr(CUFRAMES_ERR_SHM, errno, "opening %s", dir.c_str());
  std::vector<std::string> out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    constexpr std::string_view kSuffix = ".lock";
    if (name.size() <= kSuffix.size() ||
        name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
      continue;
    }
    std::string key = name.substr(0, name.size() - kSuffix.size());
    if (!valid_key(key)) continue;
    UniqueFd fd(::openat(::dirfd(d), name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) continue;
    // Test for the publisher's write lock without taking anything.
    struct flock fl {};
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd.get(), F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) out.push_back(key);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  *keys = std::move(out);
  return Ok();
}

}  // namespace cuframes::detail
