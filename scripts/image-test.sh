#!/usr/bin/env bash
# The image stage of CI (.ci/run runs it after the test suite; it also runs on its own, as root on
# Debian 12, from the repository root or anywhere): builds every target of deploy/Dockerfile with
# podman and runs deploy/docker-compose.yml with podman-compose, as a user would, on a machine
# without a GPU. Both files are used as they are; what differs from a user's run:
#
#  - the bases. NVIDIA's CUDA images and eclipse-mosquitto:2 cannot be pulled here, so a Debian 12
#    made from Debian's packages (mmdebstrap) stands in for them: the Dockerfile gets it through
#    its BUILD_IMAGE/RUNTIME_IMAGE build args, with CUFRAMES_CUDA=OFF (no nvcc) and TORCH_SPEC=""
#    (no PyTorch); the broker is tests/image/mosquitto.Containerfile on it, tagged as the compose
#    file's broker image for the run;
#  - deploy/no-gpu.override.yml, the override for machines without an NVIDIA GPU
#    (docs/deploy.md), takes away what this one cannot honour (the GPU requests, the tmpfs
#    size podman 4.3 refuses), and nothing else;
#  - the files a user edits (docs/deploy.md, steps 2 and 3) are written by this script in a copy
#    of deploy/: config/cuframes.yaml is the shipped one with `memory: host` and `decoder:
#    software` (the no-GPU mode) and a password, .env, and the broker's users made with the
#    documented mosquitto_passwd command.
#
# Then it checks, each step saying what it saw: the service container becomes healthy through its
# own healthcheck; the example detector container gets frames from it through the shared runtime
# volume; Home Assistant's discovery messages reach the broker, which refuses clients without a
# login; `kill -s HUP` reloads a changed config; the shipped config (memory: cuda) on this
# machine makes the image's HEALTHCHECK name the camera and the reason; a missing password file
# makes the broker's log name it; `down` stops every container (exit 0) and leaves none behind.
# A failure names its step and shows the containers' log tails.
#
# Cached between runs on one machine, in CUFRAMES_CI_CACHE (default /var/cache/cuframes-ci): the
# base's rootfs tarball (made again after CUFRAMES_CI_BASE_DAYS days, default 7), the .deb files
# the image builds download, podman-compose's venv; podman keeps its layer cache. None of it is
# needed: a fresh machine makes it all. CUFRAMES_CI_KEEP=1 keeps the work directory.
set -Eeuo pipefail  # -E: functions and subshells fail through the ERR trap too
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$SECONDS

CACHE=${CUFRAMES_CI_CACHE:-/var/cache/cuframes-ci}
BASE_DAYS=${CUFRAMES_CI_BASE_DAYS:-7}
MIRROR=${CUFRAMES_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${CUFRAMES_CI_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PODMAN_COMPOSE_VERSION=1.6.0
PROJECT=cuframes-ci                       # the compose project (containers, volumes, network)
BASE_IMAGE=localhost/cuframes-ci/debian:12
BROKER_IMAGE=localhost/cuframes-ci/mosquitto:2
CUDA_PROBE=cuframes-ci-cuda-probe         # the container of the memory: cuda check

STEP="setup"
WORK=""
BROKER_TAG=""                             # the compose file's broker image, tagged for the run
STACK_UP=0
ANON_VOLUMES=""                           # the containers' anonymous volumes (the broker's log)

say() { printf '%s\n' "$*"; }
step() {
  STEP=$1
  say "== [image $((SECONDS - T0)) s] $STEP"
}
ok() { say "   ok: $*"; }

# The containers of the stack (and the probe), with their state and the last lines of their
# logs; those of the stack's containers that are gone already from the copies kept in $WORK/logs.
show_containers() {
  local c f
  command -v podman >/dev/null || return 0
  for c in $(podman ps -a --format '{{.Names}}' 2>/dev/null |
             grep -E "^(${PROJECT}_|${CUDA_PROBE}$)" || true); do
    say "--- $c: $(podman inspect "$c" --format '{{.State.Status}} (exit {{.State.ExitCode}}), health {{.State.Health.Status}}' 2>/dev/null || true)"
    podman logs --tail 40 "$c" 2>&1 | sed 's/^/    /' || true
  done
  for f in "${WORK:-/nonexistent}"/logs/container-*.log; do
    [ -f "$f" ] || continue
    c=${f##*/container-}
    c=${c%.log}
    podman container exists "$c" 2>/dev/null && continue
    say "--- $c (removed; its log, last lines)"
    tail -40 "$f" | sed 's/^/    /'
  done
}

fail() {
  say "FAILED at step \"$STEP\": $*" >&2
  # in a subshell ($(...)), the shell around it fails in turn and shows the containers
  ((BASH_SUBSHELL > 0)) || show_containers >&2
  exit 1
}
trap 'fail "command failed (exit $?): $BASH_COMMAND"' ERR

# wait_for SECONDS WHAT CMD...: runs CMD once a second until it succeeds (its output is then in
# $LAST); past the deadline the step fails, naming WHAT and showing CMD's last output.
LAST=""
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  while :; do
    if LAST=$("$@" 2>&1); then
      return 0
    fi
    ((SECONDS < deadline)) || fail "$what: not within $limit s; last: $LAST"
    sleep 1
  done
}

cleanup() {
  local rc=$?
  trap - ERR
  set +e
  if ((STACK_UP)); then
    pc down -v -t 5 >/dev/null 2>&1
  fi
  # shellcheck disable=SC2086 # names, one a word
  [ -z "$ANON_VOLUMES" ] || podman volume rm -f $ANON_VOLUMES >/dev/null 2>&1
  podman rm -f -t 0 "$CUDA_PROBE" >/dev/null 2>&1
  [ -z "$BROKER_TAG" ] || podman untag "$BROKER_IMAGE" "$BROKER_TAG" >/dev/null 2>&1
  if [ -n "$WORK" ] && [ "${CUFRAMES_CI_KEEP:-0}" != 1 ]; then
    rm -rf "$WORK"
  elif [ -n "$WORK" ]; then
    say "work directory kept: $WORK"
  fi
  say "== image stage: $([ "$rc" = 0 ] && echo passed || echo FAILED) in $((SECONDS - T0)) s"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root: rootful podman (see below), apt-get and mmdebstrap"

# ---- tools ---------------------------------------------------------------------------------
step "tools: podman, mmdebstrap, mosquitto clients (apt), podman-compose $PODMAN_COMPOSE_VERSION (PyPI)"
# podman 4.3 (Debian 12) as root. runc: crun 1.8 refuses cgroups in hybrid mode (v1 controllers
# plus a v2 hierarchy with a controller enabled, as on CI's VMs: "cgroups in hybrid mode not
# supported, drop all controllers from cgroupv2"). netavark + aardvark-dns: the compose network,
# where the containers find each other by service name (mosquitto:1883); iptables for its NAT.
# No fuse-overlayfs, slirp4netns or uidmap: those are for rootless podman; as root, podman uses
# the kernel's overlayfs.
apt_pkgs=(podman runc netavark aardvark-dns iptables mmdebstrap mosquitto-clients jq python3-venv
          ffmpeg)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "   apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
# PyPI's podman-compose: Debian 12's (1.0.3) does not know the `!reset` tag, so an override
# could not take the GPU requests away. In a venv of its own, kept in the cache.
pc_venv=$CACHE/podman-compose-$PODMAN_COMPOSE_VERSION
mkdir -p "$CACHE"
if ! "$pc_venv/bin/podman-compose" --version >/dev/null 2>&1; then
  rm -rf "$pc_venv"
  python3 -m venv "$pc_venv"
  "$pc_venv/bin/pip" install --quiet --disable-pip-version-check \
    "podman-compose==$PODMAN_COMPOSE_VERSION"
fi
PY=$pc_venv/bin/python3                     # has PyYAML (podman-compose needs it)

# One run at a time on a machine: the project name, the broker's port 1883 and the tags are
# the machine's.
exec 9>"$CACHE/image-test.lock"
flock -w 3600 9 || fail "another image stage holds $CACHE/image-test.lock"

# podman's configuration for this run only (CONTAINERS_CONF replaces containers.conf; nothing of
# the machine's is changed):
#  - the default ulimits: podman asks for 1048576 open files and processes, which the runtime
#    cannot set where the hard limits are lower and CAP_SYS_RESOURCE is not ours (CI's
#    sandbox: "setrlimit RLIMIT_NOFILE: Operation not permitted"). The hard limit of open files
#    is this shell's; podman 4.3 itself lowers its RLIMIT_NPROC to 32768 before starting the
#    runtime, so the processes' limit is that, or less;
#  - runc, for the cgroups (above); cgroupfs and a file for events: there is no systemd.
# Without systemd podman cannot schedule healthchecks either (it logs "unable to get systemd
# connection to add healthchecks"): this script runs them with `podman healthcheck run`, which
# runs the container's own healthcheck command and records the result as the timer would.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu)
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
export CONTAINERS_CONF=$CACHE/containers.conf
cat >"$CONTAINERS_CONF.tmp" <<EOF
# written by scripts/image-test.sh for its runs (see there)
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
EOF
mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"

# podman-compose for the project, in the work copy of deploy/, with the no-GPU override.
# --in-pod false: one container per service on the project's network, as Docker Compose has
# them (podman-compose puts them into one pod by default). podman's complaints about systemd
# (above) are dropped from its output, nothing else.
pc() {
  (cd "$WORK/deploy" &&
   "$pc_venv/bin/podman-compose" --in-pod false -p "$PROJECT" \
     -f docker-compose.yml -f no-gpu.override.yml "$@" 2>&1) |
    { grep -v 'unable to get systemd connection' || true; }
  return "${PIPESTATUS[0]}"
}
ok "$(podman --version), runtime $(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null), storage $(podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null), network $(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null), podman-compose $PODMAN_COMPOSE_VERSION"

# Leftovers of an aborted run
for c in $(podman ps -a --format '{{.Names}}' | grep -E "^(${PROJECT}_|${CUDA_PROBE}$)" || true); do
  podman rm -f -t 0 "$c" >/dev/null
done
for v in $(podman volume ls --format '{{.Name}}' | grep "^${PROJECT}_" || true); do
  podman volume rm -f "$v" >/dev/null
done

# ---- the stand-in base ---------------------------------------------------------------------
step "stand-in base: Debian 12 (minbase) from Debian's packages, as $BASE_IMAGE"
# Like the official Debian and Ubuntu images: dpkg without fsync, no manuals or translations.
# The machine's own extra CA certificates go along (as a company's base image carries its
# proxy's CA): a container then trusts what the machine trusts, through the ca-certificates
# package the Dockerfile installs (CI's sandbox reaches PyPI through a TLS proxy).
hooks=(
  --customize-hook='echo force-unsafe-io > "$1/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"'
  --customize-hook='printf "%s\n" "path-exclude=/usr/share/doc/*" "path-include=/usr/share/doc/*/copyright" "path-exclude=/usr/share/man/*" "path-exclude=/usr/share/info/*" "path-exclude=/usr/share/locale/*" > "$1/etc/dpkg/dpkg.cfg.d/excludes"'
  --customize-hook='echo "Acquire::Languages \"none\";" > "$1/etc/apt/apt.conf.d/docker-no-languages"'
  --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates" && for c in /usr/local/share/ca-certificates/*.crt; do [ ! -f "$c" ] || cp "$c" "$1/usr/local/share/ca-certificates/"; done'
)
sources=("deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main"
         "deb $SECURITY_MIRROR bookworm-security main")
base_tar=$CACHE/debian-bookworm-minbase.tar
# What the tarball is made of: these arguments and the CA certificates it takes along.
base_key=$( { printf '%s\n' "${hooks[@]}" "${sources[@]}";
              cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; } | sha256sum | cut -c1-16)
if [ ! -f "$base_tar" ] || [ "$(cat "$base_tar.key" 2>/dev/null)" != "$base_key" ] ||
   [ -n "$(find "$base_tar" -mtime +"$BASE_DAYS")" ]; then
  t=$SECONDS
  rm -f "$base_tar" "$base_tar.key"
  mmdebstrap --quiet --mode=root --variant=minbase --format=tar \
    --aptopt='Acquire::Retries "3"' "${hooks[@]}" bookworm "$base_tar.tmp" "${sources[@]}" \
    >"$CACHE/mmdebstrap.log" 2>&1 || { tail -20 "$CACHE/mmdebstrap.log"; fail "mmdebstrap failed"; }
  mv "$base_tar.tmp" "$base_tar"
  echo "$base_key" >"$base_tar.key"
  ok "made $base_tar ($(du -m "$base_tar" | cut -f1) MiB) in $((SECONDS - t)) s"
else
  ok "cached $base_tar from $(date -r "$base_tar" +%F)"
fi
# Imported again only when the tarball changed, so that podman's layer cache holds.
tar_sum=$(sha256sum "$base_tar" | cut -c1-16)
if [ "$(podman image inspect "$BASE_IMAGE" --format '{{index .Labels "org.cuframes.ci.rootfs"}}' 2>/dev/null)" != "$tar_sum" ]; then
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' --change "LABEL org.cuframes.ci.rootfs=$tar_sum" \
    "$base_tar" "$BASE_IMAGE" >/dev/null
  ok "imported as $BASE_IMAGE"
else
  ok "$BASE_IMAGE is that tarball"
fi

# ---- the images ----------------------------------------------------------------------------
# Every target of the Dockerfile, named as the compose file names its image (a stage no service
# builds: cuframes-<stage>).
mapfile -t targets < <(awk 'toupper($1) == "FROM" && toupper($3) == "AS" { print $4 }' deploy/Dockerfile)
((${#targets[@]} >= 3)) || fail "deploy/Dockerfile: stages ${targets[*]}"
declare -A image_of
while read -r target image; do
  image_of[$target]=$image
done < <("$PY" - "$ROOT/deploy/docker-compose.yml" <<'PYEOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for s in doc["services"].values():
    if isinstance(s.get("build"), dict) and s["build"].get("target"):
        print(s["build"]["target"], s["image"])
PYEOF
)
mkdir -p "$CACHE/apt-archives"
WORK=$(mktemp -d /tmp/cuframes-image-test.XXXXXX)
mkdir -p "$WORK/logs"
for target in "${targets[@]}"; do
  image=${image_of[$target]:-cuframes-$target:latest}
  step "build target $target of deploy/Dockerfile as $image"
  t=$SECONDS
  # --format docker: podman's default (OCI) image format has no HEALTHCHECK, and drops it.
  # The apt archive directory of the cache is mounted into the RUN steps (not into the image):
  # a layer that must be made again does not download its .deb files again.
  if ! podman build --format docker --pull=never --layers -f deploy/Dockerfile --target "$target" \
      --build-arg BUILD_IMAGE="$BASE_IMAGE" --build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
      --build-arg CUFRAMES_CUDA=OFF --build-arg TORCH_SPEC= \
      --volume "$CACHE/apt-archives:/var/cache/apt/archives" \
      -t "$image" . >"$WORK/logs/build-$target.log" 2>&1; then
    tail -40 "$WORK/logs/build-$target.log"
    fail "podman build --target $target failed (log above)"
  fi
  cached=$(grep -c '^--> Using cache' "$WORK/logs/build-$target.log" || true)
  ok "$image: $(podman image inspect "$image" --format '{{.Size}}' | awk '{printf "%d MiB", $1 / 1048576}'), $((SECONDS - t)) s, $cached steps from the layer cache"
done
svc_image=${image_of[service]}
# What podman kept of the service image's run-time settings (docker format: HEALTHCHECK too)
hc=$(podman image inspect "$svc_image" --format '{{json .Config.Healthcheck.Test}}')
[ "$hc" = '["CMD","cuframes-healthcheck"]' ] || fail "$svc_image: HEALTHCHECK is $hc"
user=$(podman image inspect "$svc_image" --format '{{.Config.User}}')
[ "$user" = cuframes ] || fail "$svc_image: USER is $user"
ok "$svc_image: USER $user, ENTRYPOINT $(podman image inspect "$svc_image" --format '{{json .Config.Entrypoint}}'), HEALTHCHECK $hc"
ok "runtime packages from the build stage: $(podman run --rm --entrypoint cat "${image_of[build]:-cuframes-build:latest}" /staging/runtime-packages.txt | tr '\n' ' ')"

broker=$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["services"]["mosquitto"]["image"])' deploy/docker-compose.yml)
step "stand-in broker: Debian's mosquitto as $BROKER_IMAGE, tagged $broker for this run"
t=$SECONDS
mkdir -p "$WORK/broker-context"
podman build --format docker --pull=never --layers -f tests/image/mosquitto.Containerfile \
  --build-arg BASE_IMAGE="$BASE_IMAGE" --volume "$CACHE/apt-archives:/var/cache/apt/archives" \
  -t "$BROKER_IMAGE" "$WORK/broker-context" >"$WORK/logs/build-broker.log" 2>&1 ||
  { tail -40 "$WORK/logs/build-broker.log"; fail "podman build of the stand-in broker failed"; }
# The compose file's short name resolves to localhost/<name> before any registry; the tag is
# removed at the end, so that no later `podman pull` of the real image is shadowed.
podman tag "$BROKER_IMAGE" "$broker"
BROKER_TAG=$broker
resolved=$(podman image inspect "$broker" --format '{{.Id}}')
[ "$resolved" = "$(podman image inspect "$BROKER_IMAGE" --format '{{.Id}}')" ] ||
  fail "$broker is not the stand-in"
version=$(podman run --rm --entrypoint mosquitto "$broker" -h 2>&1 || true)  # -h exits 3
ok "$broker -> $BROKER_IMAGE (${version%%$'\n'*}), $((SECONDS - t)) s"

# ---- the user's files, in a copy of deploy/ --------------------------------------------------
step "deploy/ as a user sets it up (docs/deploy.md steps 2-3), in $WORK/deploy"
# What git keeps of it (tracked, or new and not ignored): a developer's .env or passwd stays out.
git ls-files -z --cached --others --exclude-standard deploy |
  tar -C "$ROOT" --null -T - -cf - | tar -C "$WORK" -xf -
cmp deploy/docker-compose.yml "$WORK/deploy/docker-compose.yml"
MQTT_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
HA_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
printf 'CUFRAMES_MQTT_PASSWORD=%s\nTZ=UTC\n' "$MQTT_PASSWORD" >"$WORK/deploy/.env"
# The shipped config with what a machine without a GPU needs (docs/deploy.md, "No GPU") and
# the password; its cameras, node_id and topics are the shipped ones, and the checks below read
# them from it. The shipped file as it is (memory: cuda) goes to the memory: cuda check.
mkdir -p "$WORK/shipped-config"
cp deploy/config/cuframes.yaml "$WORK/shipped-config/"
# A camera that FFmpeg decodes (the shipped one is a test pattern): an H.264 file in the config
# directory, which the service sees at /etc/cuframes. ffmpeg's own test source, 4 s looped.
ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i testsrc2=size=640x360:rate=15 -t 4 \
  -pix_fmt yuv420p -c:v libx264 -g 15 -bf 0 "$WORK/deploy/config/ci-clip.mp4"
chmod 644 "$WORK/deploy/config/ci-clip.mp4"
write_config() {  # write_config [NAME URL]...: the no-GPU config, plus the cameras given
  "$PY" - "$ROOT/deploy/config/cuframes.yaml" "$WORK/deploy/config/cuframes.yaml" \
    "$MQTT_PASSWORD" "$@" <<'PYEOF'
import os, sys, yaml
src, dst, password, *extra = sys.argv[1:]
cfg = yaml.safe_load(open(src))
cfg["defaults"].update({"memory": "host", "decoder": "software"})
cfg["mqtt"]["password"] = password
for name, url in zip(extra[::2], extra[1::2]):
    cfg["cameras"][name] = {"url": url}
with open(dst + ".tmp", "w") as f:
    f.write("# scripts/image-test.sh: deploy/config/cuframes.yaml for a machine without a GPU\n")
    yaml.safe_dump(cfg, f, sort_keys=False)
os.replace(dst + ".tmp", dst)  # the service never reads a half-written file
PYEOF
}
write_config ci-clip file:///etc/cuframes/ci-clip.mp4
mapfile -t shipped < <("$PY" - "$WORK/deploy/config/cuframes.yaml" <<'PYEOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
m = cfg["mqtt"]
print(next(iter(cfg["cameras"])))
print(m["node_id"]); print(m["base_topic"]); print(m["discovery_prefix"]); print(m["username"])
print(m["port"])
PYEOF
)
CAM=${shipped[0]} NODE=${shipped[1]} BASE_TOPIC=${shipped[2]} DISCOVERY=${shipped[3]}
MQTT_USER=${shipped[4]} MQTT_PORT=${shipped[5]}
ok "config: the shipped cameras (first: $CAM) and ci-clip (H.264, $(du -k "$WORK/deploy/config/ci-clip.mp4" | cut -f1) KiB) with memory: host, decoder: software; .env with the detector's password"

step "broker without a password file: its log names the file"
# A user who skipped step 3. `run` starts the broker as `up` would (same image, same mounts).
out=$(pc run --rm --no-deps -T mosquitto) && fail "the broker started without a password file: $out"
printf '%s\n' "$out" | grep -q 'Unable to open pwfile "/mosquitto/config/passwd"' ||
  fail "the broker's log does not name the password file: $out"
ok "$(printf '%s\n' "$out" | grep 'Unable to open pwfile')"

step "broker users (docs/deploy.md step 3: mosquitto_passwd through compose)"
pc run --rm --no-deps -T mosquitto mosquitto_passwd -c -b /mosquitto/config/passwd "$MQTT_USER" "$MQTT_PASSWORD" >/dev/null
pc run --rm --no-deps -T mosquitto mosquitto_passwd -b /mosquitto/config/passwd homeassistant "$HA_PASSWORD" >/dev/null
users=$(cut -d: -f1 "$WORK/deploy/mosquitto/passwd" | tr '\n' ' ')
[ "$users" = "$MQTT_USER homeassistant " ] || fail "deploy/mosquitto/passwd has users: $users"
ok "deploy/mosquitto/passwd: $users"

# ---- the stack -----------------------------------------------------------------------------
step "podman-compose up -d (docker-compose.yml + no-gpu.override.yml)"
# What the override changes, as podman-compose merges it: exactly the GPU requests and the size.
"$PY" - "$WORK/deploy" no-gpu.override.yml <<'PYEOF' || fail "the override changes more than it should"
import subprocess, sys, yaml
d, override = sys.argv[1:]
def config(*files):
    args = sum((["-f", f] for f in files), [])
    out = subprocess.run([sys.executable, "-m", "podman_compose", *args, "config"], cwd=d,
                         check=True, capture_output=True, text=True).stdout
    return yaml.safe_load(out)
base, merged = config("docker-compose.yml"), config("docker-compose.yml", override)
gpu = []
for name, s in base["services"].items():
    devs = s.get("deploy", {}).get("resources", {}).get("reservations", {}).pop("devices", None)
    if devs:
        gpu.append(name)
    if not s.get("deploy", {}).get("resources", {}).get("reservations", {}):
        s.get("deploy", {}).get("resources", {}).pop("reservations", None)
    m = merged["services"][name]
    r = m.get("deploy", {}).get("resources", {})
    if r.get("reservations") == {}:
        r.pop("reservations")
opts = base["volumes"]["cuframes-run"]["driver_opts"]
kept = [o for o in opts["o"].split(",") if not o.startswith("size=")]
opts["o"] = ",".join(kept)
assert base == merged, (base, merged)
print(f"   ok: the override takes away the GPU requests of {', '.join(gpu)} and the tmpfs size; "
      f"nothing else differs")
PYEOF
STACK_UP=1
pc up -d --no-build >"$WORK/logs/up.log" 2>&1 || { cat "$WORK/logs/up.log"; fail "podman-compose up failed"; }
ctr() {  # the container of a compose service
  podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -1
}
SVC=$(ctr cuframes-service) DET=$(ctr detector) MQ=$(ctr mosquitto)
[ -n "$SVC" ] && [ -n "$DET" ] && [ -n "$MQ" ] || fail "containers: service '$SVC', detector '$DET', broker '$MQ'"
for c in "$SVC" "$DET" "$MQ"; do
  [ "$(podman inspect "$c" --format '{{.State.Status}}')" = running ] || fail "$c is not running"
done
ok "running: $SVC ($(podman inspect "$SVC" --format '{{.Config.User}}')), $DET, $MQ"
for c in "$SVC" "$DET" "$MQ"; do  # their logs, kept beyond `down` for a failure's report
  podman logs -f "$c" >"$WORK/logs/container-$c.log" 2>&1 &
done

step "the service container becomes healthy through its healthcheck"
health() {  # health CONTAINER STATUS: runs its healthcheck, as podman's timer would; says the
            # status and the check's output, and succeeds when the status is STATUS
  podman healthcheck run "$1" >/dev/null 2>&1 || true
  local doc
  doc=$(podman inspect "$1" --format '{{json .State.Health}}')
  printf '%s\n' "$doc" | jq -r '.Log[-1].Output // "(no output)" | rtrimstr("\n")'
  [ "$(printf '%s' "$doc" | jq -r .Status)" = "$2" ]
}
wait_for 180 "$SVC healthy" health "$SVC" healthy
ok "$SVC: $LAST"

step "the detector container gets frames through the shared runtime volume"
detector_frames() {  # detector_frames RING N: the detector has N frames of RING (its table)
  local doc
  doc=$(podman exec "$SVC" cuframes stat "$1" --json) || return 1
  printf '%s' "$doc" | jq -e --argjson n "$2" '.subscribers[] | select(.name == "detector" and .frames >= $n)' >/dev/null || {
    printf '%s' "$doc" | jq -c '{ring: .ring.key, memory: .ring.memory, subscribers: [.subscribers[] | {name, frames}]}'
    return 1
  }
  printf '%s' "$doc" | jq -r '"\(.ring.key): \(.ring.memory) ring (\(.ring.transport)), detector pid \(.subscribers[] | select(.name == "detector") | "\(.pid): \(.frames) frames, \(.gaps) gaps, \(.errors) errors")"'
}
for cam in "$CAM" ci-clip; do
  wait_for 90 "the detector receiving 40 frames of cam-$cam" detector_frames "cam-$cam" 40
  ok "$LAST (read in the service container)"
done
first=$(podman exec "$SVC" cuframes stat "cam-$CAM" --json | jq '.subscribers[] | select(.name == "detector") | .frames')
wait_for 30 "the detector's frame count of cam-$CAM growing past $first" detector_frames "cam-$CAM" $((first + 30))
ok "and still receiving: $LAST"
vol=$(podman inspect "$DET" --format '{{range .Mounts}}{{if eq .Destination "/run/cuframes"}}{{.Name}}{{end}}{{end}}')
[ "$vol" = "$(podman inspect "$SVC" --format '{{range .Mounts}}{{if eq .Destination "/run/cuframes"}}{{.Name}}{{end}}{{end}}')" ] ||
  fail "the service and the detector do not share /run/cuframes ($vol)"
ok "both mount volume $vol at /run/cuframes: $(podman exec "$SVC" sh -c 'echo "$(stat -c "%a %u:%g" /run/cuframes) $(grep " /run/cuframes " /proc/mounts | cut -d" " -f3)"')"

step "MQTT: discovery and states reach the broker, which wants a login"
mqtt_retained() {  # the retained messages under $1, as Home Assistant's user sees them
  local rc=0
  mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -u homeassistant -P "$HA_PASSWORD" \
    -t "$1" -v --retained-only -W 3 2>&1 || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 27 ]  # 27: the 3 s were up (all retained messages came)
}
has_topics() {  # has_topics REGEX...: every REGEX matches a topic of the retained messages
  local all r
  all=$(mqtt_retained '#') || { printf '%s\n' "$all"; return 1; }
  for r in "$@"; do
    # a here-string, not a pipe: grep -q stops at the first match, and under pipefail the writer
    # of a long input (a retained snapshot's JPEG) would fail on the closed pipe
    grep -Eq "^$r " <<<"$all" || { echo "no topic /$r/ in: $(cut -d' ' -f1 <<<"$all" | tr '\n' ' ')"; return 1; }
  done
  printf '%s\n' "$all"
}
payload() { printf '%s\n' "$all" | awk -v t="$1" '$1 == t { $1 = ""; print }'; }
cam_id=$(printf '%s' "$CAM" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\{1,\}/_/g')
wait_for 60 "discovery and states on the broker" has_topics \
  "$DISCOVERY/binary_sensor/[^/]+/cuframes_${NODE}_${cam_id}_connectivity/config" \
  "$DISCOVERY/binary_sensor/[^/]+/cuframes_${NODE}_ci_clip_connectivity/config" \
  "$BASE_TOPIC/status" "$BASE_TOPIC/$CAM/state" "$BASE_TOPIC/ci-clip/state" \
  "cuframes/detector/detector/$CAM" "cuframes/detector/detector/ci-clip"
all=$LAST
ok "$(grep -c "^$DISCOVERY/" <<<"$all") discovery configs, e.g. $(grep -E -m1 "^$DISCOVERY/binary_sensor/" <<<"$all" | cut -c1-160)..."
[ "$(payload "$BASE_TOPIC/status" | tr -d ' ')" = online ] || fail "$BASE_TOPIC/status: $(payload "$BASE_TOPIC/status")"
for cam in "$CAM" ci-clip; do
  state=$(payload "$BASE_TOPIC/$cam/state")
  printf '%s' "$state" | jq -e '.state == "streaming" and .memory == "host"' >/dev/null ||
    fail "$BASE_TOPIC/$cam/state: $state"
  ok "$BASE_TOPIC/$cam/state: $(printf '%s' "$state" | jq -c '{state, codec, decoder, memory, fps, frames}')"
  det=$(payload "cuframes/detector/detector/$cam")
  printf '%s' "$det" | jq -e '.frames > 0 and .memory == "host" and .errors == 0' >/dev/null ||
    fail "the detector's result for $cam: $det"
  ok "cuframes/detector/detector/$cam (the detector's): $(printf '%s' "$det" | jq -c '{frames, fps, memory, backend, luma}')"
done
# the file is decoded by FFmpeg in software (the test pattern is drawn: decoder "testsrc")
payload "$BASE_TOPIC/ci-clip/state" | jq -e '.codec == "h264" and .decoder == "software"' >/dev/null ||
  fail "ci-clip is not H.264 decoded in software: $(payload "$BASE_TOPIC/ci-clip/state")"
ok "$BASE_TOPIC/status: online"
rc=0
anon=$(mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t '#' -C 1 -W 5 2>&1) || rc=$?
[ "$rc" != 0 ] && printf '%s' "$anon" | grep -qi 'not authori' || fail "a client without a login got: rc $rc, $anon"
ok "without a login: $anon"

step "kill -s HUP reloads a changed config"
started=$(podman inspect "$SVC" --format '{{.State.StartedAt}}')
write_config ci-clip file:///etc/cuframes/ci-clip.mp4 ci-reload "testsrc://?width=320&height=240&fps=10"
pc kill -s HUP cuframes-service >/dev/null
reloaded() {
  podman logs "$SVC" 2>&1 | grep -E 'reloaded /etc/cuframes/cuframes.yaml \([0-9]+ cameras\)' | tail -1 | grep . || return 1
  podman exec "$SVC" jq -e '.cameras["ci-reload"].state == "streaming"' /run/cuframes/cuframes-service.json >/dev/null
}
wait_for 30 "the service reloading its config" reloaded
ok "service log: $(printf '%s' "$LAST" | sed 's/^.*\] //')"
[ "$(podman inspect "$SVC" --format '{{.State.StartedAt}}')" = "$started" ] || fail "the container was restarted, not reloaded"
wait_for 60 "the detector finding the new camera" detector_frames cam-ci-reload 10
ok "the same container (started $started); the detector found the new ring: $LAST"

step "the shipped config (memory: cuda) without a GPU: the image's HEALTHCHECK names the camera and why"
# The service image on its own, as `podman run` starts it: its ENTRYPOINT, CMD, USER and
# HEALTHCHECK, and the shipped config, unchanged.
out=$(podman run -d --name "$CUDA_PROBE" -v "$WORK/shipped-config:/etc/cuframes:ro" "$svc_image" 2>&1) ||
  fail "podman run $svc_image: $out"
probe_hc=$(podman inspect "$CUDA_PROBE" --format '{{json .Config.Healthcheck.Test}}')
[ "$probe_hc" = "$hc" ] || fail "the container's healthcheck is $probe_hc, not the image's $hc"
# The check fails (exit 1) at once; the container's state stays "starting" through the image's
# start period (failures there do not count) and turns "unhealthy" after 3 more.
check_fails() {  # the last check of the container failed, its line matching $2
  podman healthcheck run "$1" >/dev/null 2>&1 || true
  podman inspect "$1" --format '{{json .State.Health.Log}}' |
    jq -er --arg re "$2" '.[-1] | select(.ExitCode == 1 and (.Output | test($re))) | .Output | rtrimstr("\n")' ||
    { podman inspect "$1" --format '{{json .State.Health.Log}}' | jq -c '.[-1]'; return 1; }
}
why="not streaming: $CAM \\(error: memory: cuda, but CUDA device 0 is not usable"
wait_for 60 "the healthcheck failing, naming camera $CAM and why" check_fails "$CUDA_PROBE" "$why"
ok "$CUDA_PROBE: the healthcheck exits 1: $LAST"
podman rm -f -t 5 "$CUDA_PROBE" >/dev/null 2>&1  # (podman's complaint about systemd)

step "podman-compose down: every container stops (exit 0), none is left"
for c in "$SVC" "$DET" "$MQ"; do
  ANON_VOLUMES+=" $(podman inspect "$c" --format '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' |
                    tr ' ' '\n' | grep -E '^[0-9a-f]{64}$' | tr '\n' ' ' || true)"
done
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
pc down >"$WORK/logs/down.log" 2>&1 || { cat "$WORK/logs/down.log"; fail "podman-compose down failed"; }
left=$(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}')
[ -z "$left" ] || fail "containers left: $left"
# How each container ended, from podman's events: 0 is a stop on SIGTERM in time (the service
# drains its cameras), 137 a kill after the grace period.
exits=$(podman events --since "$since" --stream=false --filter event=died \
          --format '{{.Name}} {{.ContainerExitCode}}' 2>/dev/null | sort -u)
for c in "$SVC" "$DET"; do
  code=$(printf '%s\n' "$exits" | awk -v c="$c" '$1 == c { print $2 }' | tail -1)
  [ "$code" = 0 ] || fail "$c ended with exit code '${code:-?}' (events: $exits)"
done
ok "exit codes: $(printf '%s\n' "$exits" | tr '\n' ',' | sed 's/,$//; s/,/, /g'); no container left"
pc down -v >/dev/null 2>&1
STACK_UP=0
