// Shared by the one-process publish/subscribe tests (pubsub_*test.cc).
#pragma once
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "common/test_util.h"
#include "memory.h"
#include "runtime_dir.h"

using cftest::pub_options;
using cftest::publish_pattern;
using cftest::RuntimeDir;
using cftest::sub_options;

namespace cftest {

// How long a test waits for a state the publisher's service thread reaches by itself (a detach,
// a release): a deadline for a broken build, not a speed goal, so generous enough for a loaded
// machine. wait_until returns as soon as the state holds.
inline constexpr int kSettleMs = 10000;

}  // namespace cftest
