// cuframes snapshot: subscribe, take the newest frame, save it as a JPEG or PNG.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "args.h"
#include "atomic_file.h"
#include "commands.h"
#include "cuframes/cuframes.hpp"
#include "errors.h"
#include "host_copy.h"
#include "image.h"

namespace cli {
namespace {

using cfimage::ImageKind;

constexpr OptionSpec kTimeout = {"--timeout", OptionSpec::kValue, "MS",
                                 "wait up to MS for a frame (default 5000; 0: only one there now)"};
constexpr OptionSpec kOptions[] = {kTimeout};

// Whole or not at all (atomic_file.h); an existing file at `path` is replaced.
void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string error = cfcommon::write_file_atomic(
      path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (!error.empty()) throw std::runtime_error(error);
}

int run(const Args& args) {
  args.expect_positionals(2, "KEY and FILE");
  const std::string& key = args.positionals()[0];
  const std::string& path = args.positionals()[1];
  const std::optional<ImageKind> kind = cfimage::image_kind_for(path);
  if (!kind) {
    throw UsageError("'" + path + "': the file name must end in .jpg, .jpeg or .png");
  }
  const int timeout_ms = static_cast<int>(args.integer(kTimeout, 5000, 0, 24 * 3600 * 1000));

  const std::string name = "cuframes-snapshot-" + std::to_string(::getpid());
  const std::optional<std::string> dir = args.value(kRuntimeDirOption);
  cuframes::Subscriber::Options opts;
  opts.runtime_dir = runtime_dir_arg(dir);
  opts.consumer_name = name.c_str();
  opts.connect_timeout_ms = 0;  // the publisher must be there now
  cuframes::Subscriber sub(key, opts);

  cuframes::Frame frame = sub.next(timeout_ms);
  const cuframes_frame_info_t info = frame.info();
  std::vector<uint8_t> bytes;
  {
    HostPlanes planes(info);  // host frames are read in place while the frame is held
    bytes = cfimage::encode_image(planes.view(), *kind);
  }
  frame.release();
  write_file(path, bytes);
  std::printf("wrote %s: %zu bytes (%s, %ux%u %s, frame seq %llu of '%s')\n", path.c_str(),
              bytes.size(), *kind == ImageKind::kPng ? "PNG" : "JPEG", info.geometry.width,
              info.geometry.height, cuframes_format_name(info.geometry.format),
              static_cast<unsigned long long>(info.seq), key.c_str());
  return kExitOk;
}

}  // namespace

const CommandSpec kSnapshotCommand = {"snapshot",
                                      "",
                                      "KEY FILE.jpg|FILE.png",
                                      kOptions,
                                      "save the newest frame as a JPEG or PNG image",
                                      &run};

}  // namespace cli
