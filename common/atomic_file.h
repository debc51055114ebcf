// Writing a file whole or not at all: the bytes go to a new temporary file beside it, which is
// renamed over the path once complete, so a reader sees the old file or the new one, never a
// part. Used by the CLI (snapshot) and the service (status file). Not installed.
#ifndef CUFRAMES_COMMON_ATOMIC_FILE_H_
#define CUFRAMES_COMMON_ATOMIC_FILE_H_

#include <string>
#include <string_view>

namespace cfcommon {

// Writes `bytes` to `path` (mode `mode` before the umask, replacing a file there). The
// temporary file, "<path>.tmp-<pid>", is created exclusively and not followed when it is a
// link; it is removed on failure. Something already at that name is a leftover of an earlier
// process with this pid (a crash mid-write; in a container the pid is the same every start) or
// was put there: it is removed (a link, not what it points to) and the creation tried once more.
// Returns "" on success, else why, naming the file (e.g. "cannot write /x/y.jpg: No such file
// or directory (creating /x/y.jpg.tmp-12)").
std::string write_file_atomic(const std::string& path, std::string_view bytes,
                              unsigned mode = 0644);

// Removes the temporary files "<path>.tmp-<pid>" that processes no longer alive left beside
// `path` (crashed mid-write); those of live processes are left alone. Returns how many it
// removed.
int remove_stale_temporaries(const std::string& path);

}  // namespace cfcommon

#endif  // CUFRAMES_COMMON_ATOMIC_FILE_H_
