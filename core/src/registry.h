// The live publishers of a runtime directory: keys whose lock file is locked right now.
#pragma once

#include <string>
#include <vector>

#include "status.h"

namespace cuframes::detail {

Status list_publishers(const char* runtime_dir, std::vector<std::string>* keys);

}  // namespace cuframes::detail
