#!/usr/bin/env bash
# The README's C snippet, as a user builds it: libcuframes installed (cmake --install, component
# libcuframes) into a fresh prefix, the snippet compiled with `cc ... $(pkg-config --cflags
# --libs cuframes)` and, in a CMake project, with find_package(cuframes) and cuframes::cuframes;
# both run against a live publisher and must print the frame they got.
#   tests/install_test.sh BUILD_DIR TEST_PEER     (ctest passes both)
set -euo pipefail
build=$1 peer=$2
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pub=""
trap '[ -n "$pub" ] && kill "$pub" 2>/dev/null; rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" --component libcuframes >/dev/null
pc=$(dirname "$(find "$tmp/prefix" -name cuframes.pc)")
# The first ```c block after "From C" in the README: the snippet as documented, not a copy.
awk '/^From C/ { want = 1 } want && /^```c$/ { on = 1; next } on && /^```$/ { exit } on' \
  "$root/README.md" >"$tmp/sub.c"
grep -q cuframes_subscriber_create "$tmp/sub.c" || { echo "no C snippet found in README.md"; exit 1; }
cflags_libs=$(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs cuframes)
echo "cc -o sub sub.c $cflags_libs"
cc -Wall -Wextra -Werror -o "$tmp/sub" "$tmp/sub.c" $cflags_libs

# The same snippet through CMake: find_package(cuframes VERSION) and the imported target, the
# version asked for being the one the package says it is (the project version, written once).
version=$(PKG_CONFIG_PATH=$pc pkg-config --modversion cuframes)
mkdir -p "$tmp/cm"
cp "$tmp/sub.c" "$tmp/cm/sub.c"
cat >"$tmp/cm/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(sub C)
find_package(cuframes $version EXACT REQUIRED)
add_executable(sub sub.c)
target_link_libraries(sub PRIVATE cuframes::cuframes)
CMAKE
echo "cmake: find_package(cuframes $version EXACT) -> cuframes::cuframes"
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >/dev/null
cmake --build "$tmp/cm/build" >/dev/null

export CUFRAMES_RUNTIME_DIR=$tmp/rt
mkdir -p "$CUFRAMES_RUNTIME_DIR"
"$peer" publish --dir "$CUFRAMES_RUNTIME_DIR" --key cam-parking --width 64 --height 32 \
  --count -1 --fps 50 >"$tmp/peer.out" &
pub=$!
libdir=$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir cuframes)
out=$(LD_LIBRARY_PATH=$libdir "$tmp/sub")
echo "$out"
[[ $out =~ ^frame\ [0-9]+:\ 64x32\ NV12 ]] || { echo "unexpected output"; exit 1; }
out=$("$tmp/cm/build/sub")  # the installed library found through the target's RPATH
echo "$out (cmake)"
[[ $out =~ ^frame\ [0-9]+:\ 64x32\ NV12 ]] || { echo "unexpected output (cmake)"; exit 1; }
# No publisher: the message names what is wrong, within the connect timeout.
kill "$pub"; wait "$pub" 2>/dev/null || true; pub=""
if err=$(LD_LIBRARY_PATH=$libdir "$tmp/sub" 2>&1); then echo "ran without a publisher"; exit 1; fi
echo "$err"
[[ $err == *"no publisher for 'cam-parking'"* ]] || { echo "unexpected error"; exit 1; }
