// Service logging: spdlog to stderr, one logger per camera ("[cam parking] ..."), with
// libcuframes' and FFmpeg's messages routed into it.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace cfsvc {

// Sets up the default logger and routes libcuframes and FFmpeg logging; level by name.
void init_logging(const std::string& level);
bool set_log_level(const std::string& level);  // false for an unknown name
bool valid_log_level(const std::string& level);
// A logger that prefixes messages with the camera's name.
std::shared_ptr<spdlog::logger> camera_logger(const std::string& camera);

}  // namespace cfsvc
