#!/usr/bin/env bash
# The service and the example detector run as the images run them, without a container engine
# (the GPU machine is a VM that has none): the same files in the same places, the same
# entrypoints and commands, environment, user and runtime directory, all read from
# deploy/Dockerfile (with tests/deploy/dockerfile.py: plain Python, no PyYAML needed). CI builds
# and runs the images themselves (scripts/image-test.sh) on a machine without a GPU; this is the
# GPU half: NVDEC into a cuda ring, read by the detector with torch.
#
# In a mount namespace of its own (nothing of the machine changes), as root:
#   /usr/local/bin      cuframes-service and cuframes (installed from the build tree as the build
#                       stage installs them), cuframes-healthcheck (deploy/healthcheck.sh), over
#                       what the machine has there (an overlay: nothing of it is hidden)
#   /etc/cuframes       cuframes.yaml: CONFIG, or one made here: MEMORY and DECODER for a
#                       test-pattern camera and a file camera on CLIP
#   /opt/venv           a venv with the cuframes wheel, built as the build stage builds it (where
#                       the machine has an /opt/venv of its own: $OUT/venv, and the PATH says so)
#   /opt/cuframes       examples/detector.py and examples/detector_app/
#   /run/cuframes       a tmpfs, mode 1770, owned by the images' user: the compose volume
# then starts the service and the detector with the images' ENTRYPOINT/CMD, ENV, WORKDIR and
# user (uid/gid 10001, no other groups, no capabilities), and checks: the image's HEALTHCHECK
# command says healthy, every camera streams into a MEMORY ring (the clip decoded by DECODER),
# the detector reads every ring with the expected backend (torch for cuda, numpy for host) and
# no errors, SIGTERM ends both with exit 0.
#
# Settings (environment):
#   BUILD     the build tree with service/cuframes-service and cli/cuframes (default build)
#   MEMORY    host (default) or cuda          DECODER  software (default), nvdec or auto
#   CLIP      a video file for the file camera (default: .gpu-media/h264-1280x720.mp4 when it
#             exists, else one made with tests/service/media.py, which needs the ffmpeg CLI)
#   CONFIG    a config file to use instead (MEMORY and DECODER then say what is expected)
#   PY_DEPS   pypi (default): the wheel's build tools and the venv's packages from PyPI, as the
#             Dockerfile gets them; system: no network: the wheel is built with PYTHON's
#             scikit-build-core, and the venv sees PYTHON's packages (numpy, torch)
#   PYTHON    the interpreter (default: /usr/bin/python3 as in the images for pypi, the python3
#             on PATH for system; a venv's works too); uid 10001 must be able to run it
#   WHEEL     a cuframes wheel built before (as above), instead of building one
#   SECONDS_RUN  how long the detector reads before it is stopped (default 20)
#   OUT       where the logs go (default /tmp/cuframes-image-layout)
#
# Here (no GPU):      bash tests/gpu/image_layout.sh
# On the GPU machine: carry .gpu and .gpu-media, then
#   source .gpu/env.sh && cmake -S . -B /tmp/cuframes-build -G Ninja -DCUFRAMES_CUDA=ON \
#     -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build /tmp/cuframes-build &&
#   BUILD=/tmp/cuframes-build MEMORY=cuda DECODER=nvdec PY_DEPS=system \
#     bash tests/gpu/image_layout.sh
set -Eeuo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=$(realpath -m "${BUILD:-build}")
MEMORY=${MEMORY:-host}
DECODER=${DECODER:-software}
PY_DEPS=${PY_DEPS:-pypi}
if [ "$PY_DEPS" = system ]; then PYTHON=${PYTHON:-$(command -v python3)}; fi
PYTHON=${PYTHON:-/usr/bin/python3}
SECONDS_RUN=${SECONDS_RUN:-20}
OUT=${OUT:-/tmp/cuframes-image-layout}
T0=$((SECONDS - ${CUFRAMES_LAYOUT_ELAPSED:-0}))
STEP=setup

# The system's tools with the system's libraries: on the GPU machine .gpu/env.sh puts its bundle
# on LD_LIBRARY_PATH (a libmount among them, too old for the machine's mount); the service and
# the detector keep it.
for tool in mount umount; do
  eval "$tool() { env -u LD_LIBRARY_PATH $tool \"\$@\"; }"
done

say() { printf '%s\n' "$*"; }
step() { STEP=$1; say "== [layout $((SECONDS - T0)) s] $STEP"; }
ok() { say "   ok: $*"; }
fail() {
  say "FAILED at step \"$STEP\": $*" >&2
  if ((BASH_SUBSHELL == 0)); then
    for f in "$OUT"/service.log "$OUT"/detector.log; do
      [ ! -f "$f" ] || { say "--- $f (last lines)"; tail -30 "$f" | sed 's/^/    /'; } >&2
    done
  fi
  exit 1
}
trap 'fail "command failed (exit $?): $BASH_COMMAND"' ERR
LAST=""
wait_for() {  # wait_for SECONDS WHAT CMD...: CMD once a second until it succeeds (output: $LAST)
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until LAST=$("$@" 2>&1); do
    ((SECONDS < deadline)) || fail "$what: not within $limit s; last: $LAST"
    sleep 1
  done
}

case $MEMORY in host | cuda) ;; *) fail "MEMORY=$MEMORY: host or cuda" ;; esac
case $DECODER in software | nvdec | auto) ;; *) fail "DECODER=$DECODER: software, nvdec or auto" ;; esac
case $PY_DEPS in pypi | system) ;; *) fail "PY_DEPS=$PY_DEPS: pypi or system" ;; esac
[ "$(id -u)" = 0 ] || fail "run as root: it mounts over /usr/local/bin and the others in a mount namespace, and starts processes as uid 10001"

# ---- outside the namespace: what the build stage makes ------------------------------------
if [ -z "${CUFRAMES_LAYOUT_NS:-}" ]; then
  step "the build stage's output, from $BUILD"
  for f in service/cuframes-service cli/cuframes; do
    [ -x "$BUILD/$f" ] || fail "$BUILD/$f is missing: build first (see the top of this file)"
  done
  # what an earlier run left in OUT (only that: OUT may be a directory of other things too)
  rm -rf "${OUT:?}"/{staging,wheels,buildvenv,media,venv,ovl,site-dirs} "$OUT"/clip.* \
    "$OUT"/{install,wheel,service,detector}.log "$OUT/detector.out"
  mkdir -p "$OUT"
  chmod 755 "$OUT"
  # cmake --install as the build stage runs it (prefix /usr/local, into a staging root)
  DESTDIR="$OUT/staging" cmake --install "$BUILD" --prefix /usr/local >"$OUT/install.log"
  ok "staged: $(ls "$OUT/staging/usr/local/bin" | tr '\n' ' ')"
  # The wheel, as the build stage builds it (CUFRAMES_CUDA=ON for cuda rings), or WHEEL
  cuda=$([ "$MEMORY" = cuda ] && echo ON || echo OFF)
  t=$SECONDS
  if [ -n "${WHEEL:-}" ]; then
    mkdir -p "$OUT/wheels"
    cp "$WHEEL" "$OUT/wheels/"
  elif [ "$PY_DEPS" = pypi ]; then
    "$PYTHON" -m venv "$OUT/buildvenv"
    "$OUT/buildvenv/bin/pip" install --quiet --no-cache-dir "scikit-build-core>=0.10" "pybind11>=2.10"
    wheel_python=$OUT/buildvenv/bin/python3
  else
    wheel_python=$PYTHON
  fi
  if [ -z "${WHEEL:-}" ]; then
    "$wheel_python" -m pip wheel --no-cache-dir --no-build-isolation --no-deps \
      -w "$OUT/wheels" --config-settings=cmake.define.CUFRAMES_CUDA="$cuda" ./python \
      >"$OUT/wheel.log" 2>&1 || { tail -30 "$OUT/wheel.log"; fail "building the wheel failed"; }
    ok "wheel $(ls "$OUT/wheels") (CUFRAMES_CUDA=$cuda, $PY_DEPS build tools) in $((SECONDS - t)) s"
  else
    ok "wheel $WHEEL (given)"
  fi
  # The clip of the file camera (the GPU machine has no ffmpeg CLI: its clips come made)
  if [ -z "${CLIP:-}" ]; then
    if [ -f .gpu-media/h264-1280x720.mp4 ]; then
      CLIP=$PWD/.gpu-media/h264-1280x720.mp4
    else
      CLIP=$(python3 tests/service/media.py "$OUT/media" h264-1280x720 | tail -1)
    fi
  fi
  [ -f "$CLIP" ] || fail "CLIP=$CLIP: no such file"
  clip=$OUT/clip.${CLIP##*.}
  cp "$CLIP" "$clip"
  chmod 644 "$clip"
  ok "clip $CLIP"
  # The venv's packages from PYTHON (system): the directories of its sys.path
  if [ "$PY_DEPS" = system ]; then
    "$PYTHON" -c 'import os, sys; print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)))' \
      >"$OUT/site-dirs"
    ok "PYTHON $PYTHON: packages from $(tr '\n' ' ' <"$OUT/site-dirs")"
  fi
  # The venv: /opt/venv as in the image, unless the machine has one there
  venv=/opt/venv
  if [ -e /opt/venv ] && [ -n "$(ls -A /opt/venv)" ]; then
    venv=$OUT/venv
    say "   note: this machine has an /opt/venv of its own: the image's venv is $venv here"
  fi
  # The mount points (empty directories where they were missing; removed again at the end)
  made=()
  for d in /opt /etc/cuframes "$venv" /opt/cuframes /run/cuframes; do
    [ -d "$d" ] || { mkdir -p "$d"; made+=("$d"); }
  done
  rc=0
  CUFRAMES_LAYOUT_NS=1 CUFRAMES_LAYOUT_ELAPSED=$((SECONDS - T0)) CLIP=$clip OUT=$OUT \
    BUILD=$BUILD PYTHON=$PYTHON VENV=$venv unshare --mount --propagation private -- bash "$0" || rc=$?
  for ((i = ${#made[@]} - 1; i >= 0; i--)); do rmdir "${made[i]}" 2>/dev/null || true; done
  say "== image layout: $([ "$rc" = 0 ] && echo passed || echo FAILED) in $((SECONDS - T0)) s" \
      "(MEMORY=$MEMORY DECODER=$DECODER; logs in $OUT)"
  exit "$rc"
fi

# ---- in the namespace: the images' file system -------------------------------------------
step "the images' paths, in a mount namespace"
# What deploy/Dockerfile says the containers run, as shell variables and arrays
eval "$(python3 - "$ROOT" <<'PYEOF'
import json, re, shlex, sys
from pathlib import Path
root = Path(sys.argv[1])
sys.path.insert(0, str(root / "tests" / "deploy"))
from dockerfile import parse_dockerfile

_, stages = parse_dockerfile(root / "deploy" / "Dockerfile")
stage = {s.name: s for s in stages}
base_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the bases' PATH


def arr(name, items):
    print(f"{name}=(" + " ".join(shlex.quote(str(i)) for i in items) + ")")


for target in ("service", "detector"):
    st, t = stage[target], target.upper()
    env = {"PATH": base_path}
    for e in st.all("ENV"):
        for tok in shlex.split(e.args):
            k, _, v = tok.partition("=")
            env[k] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), v)
    argv = []
    for cmd in ("ENTRYPOINT", "CMD"):
        ins = st.last(cmd)
        argv += json.loads(ins.args) if ins else []
    stage_args = dict(a.args.partition("=")[::2] for a in st.all("ARG"))
    wd = st.last("WORKDIR")
    print(f"{t}_UID={stage_args['CUFRAMES_UID']} {t}_GID={stage_args['CUFRAMES_GID']} "
          f"{t}_USER={shlex.quote(st.last('USER').args)} "
          f"{t}_WORKDIR={shlex.quote(wd.args if wd else '/')}")
    arr(f"{t}_ARGV", argv)
    arr(f"{t}_ENV", [f"{k}={v}" for k, v in env.items()])
    arr(f"{t}_COPIES", [("build:" if "--from=" in c.args else "")
                        + " ".join(w for w in c.args.split() if not w.startswith("--"))
                        for c in st.all("COPY")])
hc = stage["service"].last("HEALTHCHECK").args
arr("HEALTHCHECK_ARGV", json.loads(hc[hc.index(" CMD ") + 5:]))
PYEOF
)"
[ "$SERVICE_UID:$SERVICE_GID" = "$DETECTOR_UID:$DETECTOR_GID" ] || fail "the images' users differ"
UID_GID=$SERVICE_UID:$SERVICE_GID
# The files, where the Dockerfile's COPY lines put them. /usr/local/bin: an overlay on what the
# machine has there (its python3 or cmake may be there), with the image's files on top.
mkdir -p "$OUT/ovl"
mount -t tmpfs -o mode=755 tmpfs "$OUT/ovl"
mkdir -p "$OUT/ovl/upper" "$OUT/ovl/work"
cp -a "$OUT/staging/usr/local/bin/." "$OUT/ovl/upper/"
mount -t overlay overlay -o "lowerdir=/usr/local/bin,upperdir=$OUT/ovl/upper,workdir=$OUT/ovl/work" /usr/local/bin
mount -t tmpfs -o mode=755 tmpfs /etc/cuframes
mount -t tmpfs -o mode=755 tmpfs /opt/cuframes
for c in "${SERVICE_COPIES[@]}" "${DETECTOR_COPIES[@]}"; do
  case $c in
    build:*) ;;  # the build stage's output: staged above
    *) read -r src dst <<<"$c"
       mkdir -p "$(dirname "$dst")"
       if [ -d "$ROOT/$src" ]; then  # COPY of a folder: its contents into dst
         mkdir -p "$dst" && cp -a "$ROOT/$src/." "$dst/" && rm -rf "$dst"/__pycache__
       else
         cp "$ROOT/$src" "$dst"
       fi ;;
  esac
done
# The config the image's CMD names, and the clip next to it (where uid 10001 reads it, whatever
# OUT's parents allow)
cp "$CLIP" "/etc/cuframes/clip.${CLIP##*.}"
CLIP=/etc/cuframes/clip.${CLIP##*.}
if [ -n "${CONFIG:-}" ]; then
  cp "$CONFIG" /etc/cuframes/cuframes.yaml
else
  cat >/etc/cuframes/cuframes.yaml <<EOF
# tests/gpu/image_layout.sh: a test pattern and a file camera
status_interval: 1s
defaults:
  memory: $MEMORY
  decoder: $DECODER
cameras:
  demo:
    url: "testsrc://?width=1280&height=720&fps=15"
  clip:
    url: "file://$CLIP"
EOF
fi
chmod 644 /etc/cuframes/cuframes.yaml "$CLIP"
for f in /usr/local/bin/cuframes-service /usr/local/bin/cuframes /usr/local/bin/cuframes-healthcheck \
         /etc/cuframes/cuframes.yaml /opt/cuframes/examples/detector.py \
         /opt/cuframes/examples/detector_app/cli.py; do
  [ -f "$f" ] || fail "$f is not where the images have it (COPY: ${SERVICE_COPIES[*]} | ${DETECTOR_COPIES[*]})"
done
# The venv of the detector image (its Dockerfile line: pip install the wheel, numpy, paho-mqtt)
mount -t tmpfs -o mode=755 tmpfs "$VENV"
"$PYTHON" -m venv "$VENV"
if [ "$PY_DEPS" = pypi ]; then
  "$VENV/bin/pip" install --quiet --no-cache-dir "$OUT"/wheels/cuframes-*.whl "numpy>=2.1" "paho-mqtt>=2"
else
  "$VENV/bin/pip" install --quiet --no-cache-dir --no-deps --no-index "$OUT"/wheels/cuframes-*.whl
  # PYTHON's packages after the venv's own, each bound (read-only) where uid 10001 reaches it
  # (a venv under /root would not be)
  site=$("$VENV/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  n=0
  while read -r d; do
    n=$((n + 1))
    mkdir -p "$VENV/layout-site/$n"
    mount --bind -o ro "$d" "$VENV/layout-site/$n"
    echo "$VENV/layout-site/$n" >>"$site/zz-layout-system-packages.pth"
  done <"$OUT/site-dirs"
fi
# The image's ENV names /opt/venv
if [ "$VENV" != /opt/venv ]; then
  for i in "${!DETECTOR_ENV[@]}"; do DETECTOR_ENV[i]=${DETECTOR_ENV[i]//\/opt\/venv/$VENV}; done
fi
# The runtime directory: the compose file's volume (a tmpfs, mode 1770, the user's)
mount -t tmpfs -o "mode=1770,uid=${UID_GID%:*},gid=${UID_GID#*:}" tmpfs /run/cuframes
ok "/usr/local/bin: $(cd "$OUT/ovl/upper" && ls | tr '\n' ' ')(over the machine's)"
ok "/etc/cuframes/cuframes.yaml: ${CONFIG:-memory $MEMORY, decoder $DECODER, cameras demo (testsrc) and clip}"
ok "$VENV: $("$VENV/bin/python3" --version), cuframes $("$VENV/bin/python3" -c 'import cuframes; print(cuframes.__version__)')"
ok "/run/cuframes: $(stat -c '%a %u:%g' /run/cuframes), $(grep ' /run/cuframes ' /proc/mounts | cut -d' ' -f3)"

# image_exec NAME CMD...: becomes CMD as the images run it: their user (no other groups, no
# capabilities), the stage's ENV and WORKDIR (the machine's LD_LIBRARY_PATH kept: the GPU
# machine's libraries are where .gpu/env.sh put them; the images have them in the system's)
image_exec() {
  local -n envs=${1}_ENV wd=${1}_WORKDIR
  shift
  cd "$wd"
  exec setpriv --reuid="${UID_GID%:*}" --regid="${UID_GID#*:}" --clear-groups --inh-caps=-all \
    env -i "${envs[@]}" ${LD_LIBRARY_PATH:+"LD_LIBRARY_PATH=$LD_LIBRARY_PATH"} "$@"
}
as_image() { (image_exec "$@"); }

step "the detector image's Python, as its user"
out=$(as_image DETECTOR python3 -c '
import sys, cuframes, numpy
msg = f"cuframes {cuframes.__version__} ({cuframes.__file__}), numpy {numpy.__version__}"
if sys.argv[1] == "cuda":
    import torch
    assert torch.cuda.is_available(), f"torch {torch.__version__} has no usable CUDA"
    msg += f", torch {torch.__version__} on {torch.cuda.get_device_name(0)}"
print(msg)' "$MEMORY" 2>&1) || fail "python3 of the detector image's ENV, as uid ${UID_GID%:*}: $out"
ok "$out"

step "the service: ${SERVICE_ARGV[*]} as $SERVICE_USER ($UID_GID)"
image_exec SERVICE "${SERVICE_ARGV[@]}" >"$OUT/service.log" 2>&1 &
svc_pid=$!
det_pid=""
stop_all() {
  [ -z "$det_pid" ] || kill "$det_pid" 2>/dev/null || true
  kill "$svc_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop_all EXIT
healthy() { as_image SERVICE "${HEALTHCHECK_ARGV[@]}"; }  # the image's HEALTHCHECK, as its user
wait_for 60 "the healthcheck saying healthy" healthy
ok "${HEALTHCHECK_ARGV[*]}: $LAST"
ids=$(ps -o uid=,gid=,comm= -p "$svc_pid" | awk '{ print $1 ":" $2 " " $3 }')
[ "$ids" = "$UID_GID cuframes-servic" ] || fail "the service runs as: $ids"
ok "process $svc_pid: uid:gid $ids"
status=/run/cuframes/cuframes-service.json
all_streaming() {
  jq -e '[.cameras[] | .state == "streaming"] | all' "$status" >/dev/null || {
    jq -c '[.cameras | to_entries[] | {name: .key, state: .value.state, error: .value.error}]' "$status"
    return 1
  }
  jq -r '.cameras | to_entries[] | "\(.key): \(.value.state), decoder \(.value.decoder // "-")"' "$status" | paste -sd ';' -
}
wait_for 60 "every camera streaming" all_streaming
ok "$LAST"
for key in $(jq -r '.cameras[].key' "$status"); do
  mem=$(as_image SERVICE cuframes stat "$key" --json | jq -r '"\(.ring.memory) \(.ring.transport)"')
  [ "${mem%% *}" = "$MEMORY" ] || fail "ring $key: memory ${mem%% *}, not $MEMORY"
  ok "ring $key: $mem"
done
if [ "$DECODER" != auto ] && [ -z "${CONFIG:-}" ]; then
  dec=$(jq -r '.cameras.clip.decoder' "$status")
  [ "$dec" = "$DECODER" ] || fail "camera clip decodes with $dec, not $DECODER"
fi

step "the detector: ${DETECTOR_ARGV[*]} as $DETECTOR_USER ($UID_GID)"
image_exec DETECTOR "${DETECTOR_ARGV[@]}" >"$OUT/detector.out" 2>"$OUT/detector.log" &
det_pid=$!
reading() {  # the detector in every ring's subscriber table, with at least $1 frames
  local key n
  for key in $(jq -r '.cameras[].key' "$status"); do
    n=$(as_image SERVICE cuframes stat "$key" --json |
        jq '[.subscribers[] | select(.name == "detector") | .frames] | max // 0')
    [ "$n" -ge "$1" ] || { echo "$key: detector $n frames"; return 1; }
    printf '%s: %s frames; ' "$key" "$n"
  done
}
wait_for 60 "the detector reading every ring" reading 10
ok "$LAST"
# It reads for SECONDS_RUN s (the run's length, not a wait for anything), then SIGTERM ends it
# with one summary line per camera.
sleep "$SECONDS_RUN"
kill -TERM "$det_pid"
rc=0
wait "$det_pid" || rc=$?
det_pid=""
[ "$rc" = 0 ] || fail "the detector exited with $rc on SIGTERM"
backend=$([ "$MEMORY" = cuda ] && echo torch || echo numpy)
n=0
while read -r line; do
  n=$((n + 1))
  for want in "memory=$MEMORY" "backend=$backend" "errors=0"; do
    [[ " $line " == *" $want "* ]] || fail "detector: $want expected in: $line"
  done
  frames=$(sed -n 's/.* frames=\([0-9]*\) .*/\1/p' <<<"$line")
  [ "${frames:-0}" -ge 30 ] || fail "detector: too few frames in: $line"
  ok "$line"
done < <(grep '^summary ' "$OUT/detector.out")
[ "$n" = "$(jq '.cameras | length' "$status")" ] ||
  fail "detector: $n summaries for $(jq '.cameras | length' "$status") cameras"

step "SIGTERM ends the service"
kill -TERM "$svc_pid"
rc=0
wait "$svc_pid" || rc=$?
[ "$rc" = 0 ] || fail "the service exited with $rc on SIGTERM"
[ ! -e "$status" ] || fail "the service left $status"
trap - EXIT
ok "exit 0, $status removed"
