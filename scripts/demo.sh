#!/usr/bin/env bash
# The quick-start demo: installs what is missing, builds, and runs cuframes-service on its
# default config (config/cuframes.yaml: one built-in test-pattern camera, no camera or GPU
# needed) with a subscriber process attached that checks every frame and prints fps and
# publish->receive latency. Stops after DEMO_SECONDS (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
export CUFRAMES_RUNTIME_DIR=${CUFRAMES_RUNTIME_DIR:-$(mktemp -d /tmp/cuframes-demo-XXXXXX)}
build/service/cuframes-service --config config/cuframes.yaml &
service=$!
trap 'kill -TERM $service 2>/dev/null; wait $service' EXIT
build/examples/cuframes-demo --subscribe cam-demo --seconds "${DEMO_SECONDS:-10}"
