#!/usr/bin/env bash
# The whole test suite (what CI runs): installs what is missing, builds, and runs every test
# that needs no GPU. The GPU tests (ctest label "gpu") run on the GPU machine: tests/gpu/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --label-exclude gpu --output-on-failure --timeout 600

# The Python package: built by the same CMake project into build/python, tested on host memory
# (tests/python/gpu needs a GPU: tests/gpu/run.sh).
scripts/build.sh -DBUILD_PYTHON_BINDINGS=ON
PYTHONPATH="$PWD/build/python" python3 -m pytest tests/python --ignore=tests/python/gpu -v

# cuframes-service end to end (tests/service): testsrc, FFmpeg-made files and a real RTSP server,
# read back through the Python package (host memory, software decode: no GPU needed).
PYTHONPATH="$PWD/build/python" python3 -m pytest tests/service -v

# The `cuframes` command-line tool (tests/cli): list, stat, snapshot and sub against real rings
# published by the Python package and by cuframes-service.
PYTHONPATH="$PWD/build/python" python3 -m pytest tests/cli -v

# tests/gpu/mini_rtsp.py, the stdlib RTSP server of the GPU tests and bench/service_bench.py: its
# demuxer, RTSP/RTP against a client of the tests and FFmpeg's, and cuframes-service pulling it
# into host rings (software decode). Its NVDEC part (test_mini_rtsp_gpu.py) runs on the GPU
# machine (tests/gpu/run.sh, stage rtsp).
PYTHONPATH="$PWD/build/python" python3 -m pytest -v \
  tests/gpu/test_mini_rtsp_server.py tests/gpu/test_mini_rtsp_service.py

# The docker-compose deployment (tests/deploy): compose file, Dockerfile, healthcheck and
# examples/detector.py against cuframes-service on host memory, with a real mosquitto.
PYTHONPATH="$PWD/build/python" python3 -m pytest tests/deploy -v
