#!/bin/sh
# runtime-deps.sh FILE...: the distribution packages that hold the shared libraries FILE... are
# linked to, one a line, sorted. The Dockerfile's build stage runs it on the built binaries and
# the runtime stage installs exactly that list (FFmpeg's libraries from the distribution,
# yaml-cpp, spdlog, Paho MQTT), so the runtime image has no compiler and no -dev package.
#
# Only the libraries a file names itself (DT_NEEDED) are looked up: apt brings what they need in
# turn. A library that is not found, or that no package owns, is an error (exit 1, named on
# stderr): the runtime image would lack it. Libraries loaded with dlopen at run time (libcuda,
# libnvcuvid, libnvidia-ml) are not linked; the NVIDIA container toolkit mounts them.
set -eu

[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }

fail() {
  echo "runtime-deps: $*" >&2
  exit 1
}

owner() {  # the package owning library $1, trying the /usr-merged and unmerged spellings
  for p in "$1" "$(readlink -f "$1")" "/usr$1" "${1#/usr}"; do
    pkg=$(dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) || pkg=""
    if [ -n "$pkg" ]; then
      echo "$pkg"
      return 0
    fi
  done
  return 1
}

pkgs=""
for f in "$@"; do
  [ -f "$f" ] || fail "$f: no such file"
  resolved=$(ldd "$f") || fail "ldd $f failed"
  needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p') || fail "readelf -d $f failed"
  for soname in $needed; do
    # "libx.so.1 => /usr/lib/.../libx.so.1 (0x...)", or the loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"
    path=$(printf '%s\n' "$resolved" | awk -v s="$soname" '
      $1 == s && $2 == "=>" && $3 ~ /^\// { print $3; exit }
      $1 ~ /^\// && $1 ~ ("/" s "$") { print $1; exit }')
    [ -n "$path" ] || fail "$f needs $soname, which is not found"
    pkg=$(owner "$path") || fail "no package owns $path (needed by $f)"
    pkgs="$pkgs $pkg"
  done
done
# shellcheck disable=SC2086 # one package a word
printf '%s\n' $pkgs | sort -u
