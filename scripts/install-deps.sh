#!/usr/bin/env bash
# Installs what building and testing cuframes needs on Debian 12 (apt + pip). Idempotent: only
# missing packages are installed. Needs root (or sudo) when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(build-essential cmake ninja-build pkg-config git libgtest-dev)
# The formatting gate (scripts/format-check.sh): Debian 12's clang-format (14).
apt_pkgs+=(clang-format)
# The Python package (python/): interpreter headers, venv (the pip install test), pybind11 and the
# DLPack header (0.6 in Debian 12; the package defines the DLPack 1.x structs it lacks).
apt_pkgs+=(python3-dev python3-venv python3-pip pybind11-dev libdlpack-dev)
# cuframes-service (service/): FFmpeg's libraries, yaml-cpp, spdlog; the JSON documents of the
# service and the CLI (common/json.h): nlohmann-json (headers only).
apt_pkgs+=(libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libyaml-cpp-dev
           libspdlog-dev nlohmann-json3-dev)
# FFmpeg's loader for NVIDIA's libraries (ffnvcodec headers): the service's decoder: nvcuvid and
# bench/nvcuvid_ceiling, built with CUDA (they open libcuda and libnvcuvid at run time).
apt_pkgs+=(libffmpeg-nvenc-dev)
# Its MQTT health monitor: Eclipse Paho MQTT C++ (and the C library under it; libssl-dev because
# libpaho-mqttpp-dev's CMake config looks for OpenSSL); the tests run a real mosquitto broker
# (started by the tests on a free port, with the Debian package's binary; openssl makes the
# certificates of its TLS listener).
apt_pkgs+=(libpaho-mqtt-dev libpaho-mqttpp-dev libssl-dev mosquitto openssl)
# The deployment's tests (tests/deploy): docker-compose 1.29 validates deploy/docker-compose.yml
# (no Docker daemon needed); jq runs in the service container's healthcheck.
apt_pkgs+=(docker-compose jq)
# The service's integration tests (tests/service): the ffmpeg CLI makes the test clips; a real RTSP
# server (gst-rtsp-server through python3-gi, run by Debian's /usr/bin/python3) encodes with
# x264enc (plugins-ugly) and x265enc (plugins-bad), packetizes with plugins-good.
apt_pkgs+=(ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
           gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly)

# The service's HTTP endpoint (cpp-httplib); its tests read /metrics with prometheus_client's
# parser (pip, below) and load the page in headless Chromium (screenshots as test artefacts).
apt_pkgs+=(libcpp-httplib-dev chromium)

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root or install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python build and test tools for the python3 on PATH (pyenv's on the CI machines; Debian's
# elsewhere, where PIP_BREAK_SYSTEM_PACKAGES lets pip install next to apt's packages).
py_missing=()
python3 -c 'import numpy, sys; sys.exit(tuple(map(int, numpy.__version__.split(".")[:2])) < (2, 1))' \
  2>/dev/null || py_missing+=("numpy>=2.1")
for m in pytest pybind11 scikit_build_core mypy jinja2; do
  python3 -c "import $m" 2>/dev/null || py_missing+=("${m//_/-}")
done
python3 -c 'import yaml' 2>/dev/null || py_missing+=("pyyaml")
# The HTTP tests: Prometheus' own text parser, and Pillow to decode the snapshots (JPEG).
python3 -c 'import prometheus_client' 2>/dev/null || py_missing+=("prometheus-client")
python3 -c 'import PIL' 2>/dev/null || py_missing+=("pillow")
# The MQTT tests' client (Home Assistant's side): paho-mqtt 2 (its callback API version 2).
python3 -c 'import paho.mqtt, sys; sys.exit(int(paho.mqtt.__version__.split(".")[0]) < 2)' \
  2>/dev/null || py_missing+=("paho-mqtt>=2")
if ((${#py_missing[@]})); then
  echo "install-deps: pip install ${py_missing[*]}"
  PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
    python3 -m pip install --quiet --disable-pip-version-check "${py_missing[@]}"
fi
