// nvcuvid_ceiling's arguments: parse_args fills g_opt (nvcuvid_shared.h; defined in
// nvcuvid_args.cc), parse_sweep turns --sweep into rows. A bad argument: one line naming it, exit
// status 2; --help or no FILE: the usage, 2.
#pragma once

#include <string>
#include <vector>

namespace nvcuvid {

struct Row {
  int streams, threads;
  bool ffmpeg;
};

void parse_args(int argc, char** argv);
std::vector<Row> parse_sweep(const std::string& spec);  // needs parse_args' --ffmpeg for ffN

}  // namespace nvcuvid
