#!/usr/bin/env bash
# The quick-start demo: installs what is missing, builds, and runs cuframes-service on its
# default config (config/cuframes.yaml: one built-in test-pattern camera, no camera or GPU
# needed) with a subscriber process attached that checks every frame and prints fps and
# publish->receive latency. Stops after DEMO_SECONDS (default 10). The rings live in
# $CUFRAMES_RUNTIME_DIR, else in a directory of its own that it removes at the end: a clean stop
# of the service leaves it empty.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
own_dir=
if [ -z "${CUFRAMES_RUNTIME_DIR:-}" ]; then
  own_dir=$(mktemp -d /tmp/cuframes-demo-XXXXXX)
  export CUFRAMES_RUNTIME_DIR=$own_dir
fi
build/service/cuframes-service --config config/cuframes.yaml &
service=$!
stop() {
  kill -TERM "$service" 2>/dev/null || true
  wait "$service" || echo "demo: cuframes-service exited with $?" >&2
  if [ -n "$own_dir" ] && ! rmdir "$own_dir"; then
    echo "demo: cuframes-service left files in $own_dir:" >&2
    ls -la "$own_dir" >&2
  fi
}
trap stop EXIT
build/examples/cuframes-demo --subscribe cam-demo --seconds "${DEMO_SECONDS:-10}"
