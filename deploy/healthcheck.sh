#!/bin/sh
# cuframes-healthcheck: is cuframes-service healthy? Exit 0 (healthy) or 1 (unhealthy), with one
# line saying why; the container's HEALTHCHECK runs it (docs/deploy.md, "Checking health").
#
# Healthy means all of:
#  1. the service runs: its status file <runtime_dir>/cuframes-service.json exists (a clean exit
#     removes it) and the process it names is alive;
#  2. its main loop is not stuck: the file was rewritten within CUFRAMES_HEALTH_MAX_AGE seconds
#     (default 30; the service rewrites it every status_interval, 1 s by default);
#  3. every camera the status file calls "streaming" has a ring that answers in the runtime
#     directory, as detectors see it: `cuframes stat cam-<name>` attaches an observer over the
#     ring's socket (what a subscriber in another container does first);
#  4. at least CUFRAMES_HEALTH_MIN_STREAMING cameras are streaming (default 1; 0 keeps the
#     container healthy while every camera is offline: Home Assistant still shows them).
# The line names every camera that is not streaming, with its state and the service's reason
# ("not streaming: front (error: memory: cuda, but CUDA device 0 is not usable ...)").
#
# Environment: CUFRAMES_RUNTIME_DIR (default /run/cuframes), CUFRAMES_HEALTH_MAX_AGE,
# CUFRAMES_HEALTH_MIN_STREAMING, CUFRAMES_CLI (the `cuframes` tool, default from PATH).
# Needs jq and the cuframes CLI; downloads nothing.
set -u

dir=${CUFRAMES_RUNTIME_DIR:-/run/cuframes}
max_age=${CUFRAMES_HEALTH_MAX_AGE:-30}
min_streaming=${CUFRAMES_HEALTH_MIN_STREAMING:-1}
cli=${CUFRAMES_CLI:-cuframes}
status="$dir/cuframes-service.json"

unhealthy() {
  echo "unhealthy: $*"
  exit 1
}

[ -e "$status" ] || unhealthy "no $status: cuframes-service is not running (or its runtime_dir is not $dir)"
doc=$(cat "$status" 2>/dev/null) || unhealthy "cannot read $status (permissions: run as the service's uid or group)"

pid=$(printf '%s' "$doc" | jq -er '.pid') || unhealthy "$status is not the service's status document"
[ -d "/proc/$pid" ] || unhealthy "cuframes-service (pid $pid) is gone without removing $status: it crashed"

now=$(date +%s)
mtime=$(stat -c %Y "$status") || unhealthy "cannot stat $status"
age=$((now - mtime))
[ "$age" -le "$max_age" ] || unhealthy "$status was last written ${age} s ago (limit ${max_age} s): the service is stuck"

# "name state key why" per camera, in config order (names and keys have no spaces; why, the
# service's reason for a camera in state error or stalled, is the rest of the line)
cams=$(printf '%s' "$doc" | jq -r '.cameras | to_entries[] |
  "\(.key) \(.value.state) \(.value.key) \(.value.error // "" | gsub("[\\n\\t]"; " "))"') ||
  unhealthy "$status has no cameras object"
total=0
streaming=0
down=""
while read -r name state key why; do
  [ -n "$name" ] || continue
  total=$((total + 1))
  if [ "$state" = streaming ]; then
    err=$(timeout 5 "$cli" stat "$key" --runtime-dir "$dir" 2>&1 >/dev/null) ||
      unhealthy "camera $name is streaming but its ring $key does not answer in $dir: ${err:-no answer within 5 s}"
    streaming=$((streaming + 1))
  else
    down="${down:+$down; }$name ($state${why:+: $why})"
  fi
done <<EOF
$cams
EOF

cameras=cameras
[ "$total" -eq 1 ] && cameras=camera
[ "$streaming" -ge "$min_streaming" ] ||
  unhealthy "$streaming of $total $cameras streaming, at least $min_streaming wanted${down:+; not streaming: $down}"
echo "healthy: $streaming of $total $cameras streaming, their rings answer in $dir${down:+; not streaming: $down}"
exit 0
