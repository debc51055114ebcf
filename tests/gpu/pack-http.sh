#!/usr/bin/env bash
# Adds cpp-httplib (the service's HTTP endpoint, which the snapshot stage needs) to .gpu/http:
# ../shared/gpu/pack-deps.sh packs FFmpeg, Paho and DLPack but not it, and the GPU machine has
# no registry. Run from the project root after pack-deps.sh; tests/gpu/run.sh puts .gpu/http on
# the search paths when it is there. Debian's header, its compiled library and what that links
# that a plain Ubuntu may lack (brotli), about 1.5 MiB.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
dpkg -s libcpp-httplib-dev >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libcpp-httplib-dev >/dev/null
}
out=.gpu/http
arch=x86_64-linux-gnu
rm -rf "$out"
mkdir -p "$out/include" "$out/lib/$arch/pkgconfig"
cp /usr/include/httplib.h "$out/include/"
lib=$(readlink -f /usr/lib/$arch/libcpp-httplib.so)
cp "$lib" "$out/lib/$arch/"
ln -s "$(basename "$lib")" "$out/lib/$arch/libcpp-httplib.so"
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = "$(basename "$lib")" ] || ln -s "$(basename "$lib")" "$out/lib/$arch/$soname"
for dep in $(ldd "$lib" | awk '/libbrotli/ {print $3}'); do cp -L "$dep" "$out/lib/$arch/"; done
# the .pc relative to where it lies, so the folder works wherever the tree is; without its
# Requires.private (static linking only), whose .pc files the GPU machine lacks
sed -e 's|^prefix=.*|prefix=${pcfiledir}/../../..|' -e 's|=/usr/|=${prefix}/|' -e '/^Requires.private/d' \
  /usr/lib/$arch/pkgconfig/cpp-httplib.pc >"$out/lib/$arch/pkgconfig/cpp-httplib.pc"
du -sh "$out"
