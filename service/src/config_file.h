// Reading files named by the config safely: only regular files, opened without blocking, of a
// bounded size, so that a FIFO, a device or a file without end never holds the service.
#pragma once

#include <string>

namespace cfsvc {

// The text of a config file: a regular file of at most kMaxConfigBytes (config.h). False with
// *why (without the path) for anything else: "not a regular file (a FIFO): a config must be
// one", "the file is N bytes, larger than ...", "cannot open: <strerror>".
bool read_config_file(const std::string& path, std::string* text, std::string* why);

// For a file read later by someone else (MQTT's TLS files): true when `path` is a regular file
// (or a symlink to one) or does not exist (yet); false with *why ("not a regular file (a FIFO)")
// for a FIFO, a device, a directory or a socket.
bool regular_or_missing(const std::string& path, std::string* why);

}  // namespace cfsvc
