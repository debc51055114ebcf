#!/usr/bin/env bash
# Everything that needs the GPU, in one go, on the GPU machine (see ../shared/gpu/README.md):
#   build (CUDA arch 90) -> ctest -L gpu -> the benchmark -> the Python GPU tests.
# Logs go to $OUT (default /tmp/cuframes-gpu-out). Run from the repo root with .gpu carried:
#   bash tests/gpu/run.sh [ctest-regex]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/cuframes-gpu-out}
mkdir -p "$OUT"
BUILD=${BUILD:-/tmp/cuframes-build}
[ -f .gpu/env.sh ] && source .gpu/env.sh
export CUFRAMES_TEST_EXPECT_GPU=1
export CUFRAMES_LOG_LEVEL=${CUFRAMES_LOG_LEVEL:-warn}
status=0
step() { echo "=== $*" | tee -a "$OUT/summary.txt"; }

step "machine"
{ nvidia-smi; nproc; uname -r; cmake --version | head -1; nvcc --version | tail -1; } \
  >"$OUT/machine.txt" 2>&1

step "build"
if ! { cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
         -DCMAKE_CUDA_ARCHITECTURES=90 -DCUFRAMES_CUDA=ON && cmake --build "$BUILD" -j"$(nproc)"; } \
       >"$OUT/build.log" 2>&1; then
  echo "BUILD FAILED" | tee -a "$OUT/summary.txt"
  tail -50 "$OUT/build.log"
  exit 1
fi

step "ctest -L gpu ${1:-}"
ctest --test-dir "$BUILD" -L gpu ${1:+-R "$1"} --output-on-failure --timeout 600 \
  >"$OUT/ctest-gpu.log" 2>&1 || status=1
grep -E "tests passed|Failed|\*\*\*|Passed|Not Run" "$OUT/ctest-gpu.log" | tee -a "$OUT/summary.txt"

if [ -z "${1:-}" ]; then
  step "ctest -L core (the CPU suite on this machine too)"
  ctest --test-dir "$BUILD" -L core --output-on-failure --timeout 600 >"$OUT/ctest-core.log" 2>&1 || status=1
  grep -E "tests passed|Failed" "$OUT/ctest-core.log" | tee -a "$OUT/summary.txt"

  step "benchmark"
  "$BUILD/bench/cuframes_bench" ${BENCH_ARGS:-} >"$OUT/bench.txt" 2>&1 || status=1
  cat "$OUT/bench.txt" | tee -a "$OUT/summary.txt"

  if [ -f python/pyproject.toml ] && [ -z "${SKIP_PYTHON:-}" ]; then
    step "python: pip install ./python + GPU tests"
    { python3 -m pip install --no-build-isolation ./python &&
      python3 -m pytest -v tests/python/gpu; } >"$OUT/python-gpu.log" 2>&1 || status=1
    tail -15 "$OUT/python-gpu.log" | tee -a "$OUT/summary.txt"

    if [ -x "$BUILD/service/cuframes-service" ]; then
      step "service: NVDEC file cameras verified by a torch subscriber"
      CUFRAMES_SERVICE_BIN="$BUILD/service/cuframes-service" CUFRAMES_TEST_MEDIA_DIR="$PWD/.gpu-media" \
        python3 -m pytest -v -s -p no:cacheprovider tests/gpu/test_service_nvdec.py \
        >>"$OUT/python-gpu.log" 2>&1 || status=1
      grep -E "NVDEC frames checked|passed|failed|Error" "$OUT/python-gpu.log" | tail -8 | tee -a "$OUT/summary.txt"

      step "service benchmark (bench/service_bench.py)"
      python3 bench/service_bench.py --service "$BUILD/service/cuframes-service" \
        --ceiling "$BUILD/bench/nvdec_ceiling" --clip .gpu-media/bench-1080p30.mp4 \
        ${SERVICE_BENCH_ARGS:-} >"$OUT/service-bench.txt" 2>&1 || status=1
      tee -a "$OUT/summary.txt" <"$OUT/service-bench.txt"
    fi
  fi
fi
step "exit status $status"
exit $status
