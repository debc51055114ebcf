#!/usr/bin/env bash
# The quick-start demo: installs what is missing, builds, and runs a publisher and a subscriber
# process sharing 1080p NV12 frames through host memory, printing fps and latency.
# Arguments go to cuframes-demo (--seconds, --fps, --subscribers, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
export CUFRAMES_RUNTIME_DIR=${CUFRAMES_RUNTIME_DIR:-$(mktemp -d /tmp/cuframes-demo-XXXXXX)}
exec build/examples/cuframes-demo "$@"
