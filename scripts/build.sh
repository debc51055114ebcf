#!/usr/bin/env bash
# Configures and builds everything CI builds into BUILD_DIR (default build/). Extra arguments go
# to cmake's configure step, e.g. -DCUFRAMES_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" | grep -vE "^-- (Check|Detecting|Looking|Performing|Found)" || true
test "${PIPESTATUS[0]}" = 0
cmake --build "$build_dir" --parallel
