#!/usr/bin/env bash
# Everything that needs the GPU, on the GPU machine (see ../shared/gpu/README.md): build (CUDA
# arch 90), ctest -L gpu, the core benchmark, the Python package's GPU tests, the service on NVDEC
# (files and RTSP), the example detector on CUDA, the CLI on a CUDA ring, the service benchmark.
# Logs go to $OUT (default /tmp/cuframes-gpu-out). Run from the repo root with .gpu carried (and
# .gpu-media: the clips made by tests/service/media.py):
#   bash tests/gpu/run.sh                       # every stage
#   STAGES="build ctest bench" bash tests/gpu/run.sh   # some (one device call is at most 10 min)
# Stages: build ctest core bench subs64 python preprocess pybench service rtsp repeat detector
# detectorbench cli servicebench nvcuvid snapshot
# pybench: tests/python/gpu's frame and fast-path tests (JAX on compact copies, stream ordering),
# then bench/python_micro.py (each Python call of the per-frame path on its own, cuda and host,
# to python-micro.txt; PYTHON_MICRO_ARGS adds arguments), bench/python_cold.py (the same calls
# cold, first after a sleeping subscriber's wake: torch asked through its C functions and through
# its Python bindings, with spin_us, and with no tensors made ahead, to python-cold.txt), then bench/python_bench.py (Python
# publisher/subscribers against torch CUDA IPC, host shm + H2D and the C path; needs the build
# stage's cuframes_bench), about 5 minutes in all; PYTHON_BENCH_ARGS adds arguments.
# preprocess: cuframes.preprocess's kernel against its CPU twin (tests/python/gpu/
# test_preprocess_gpu.py), then bench/preprocess_bench.py. Every stage that needs the Python
# package installs it from this tree first, once per run.
# detector: examples/detector.py on CUDA rings, with --detect too (torchvision's SSDlite320).
# detectorbench: bench/detector_bench.py (8 and 32 NVDEC cameras -> one detector, cuframes against
# Frigate's path), about 4 minutes; DETECTOR_BENCH_ARGS adds arguments.
# subs64: 64 subscribers on one ring (issue 16): cuframes_bench's rows with 64 host and cuda
# subscribers, then publish() p50 with 1 against 64 sleeping subscribers, alternating rounds
# (SUBS64_ARGS adds arguments), about 3 minutes. (ctest's gpu_stress_test has 64 cuda
# subscriber processes, every frame checked.)
# servicebench: bench/service_bench.py: FFmpeg's ceiling (nvdec and cuvid), then real-time
# cameras at each count with each decoder (nvdec, cuvid, nvcuvid), interleaved: min/median fps
# per camera over the window, total fps, CPU per camera and per frame, NVDEC utilisation (NVML),
# where the limit is, and where each frame's CPU goes (the ingest threads by stage, the other
# threads by name); add --variants experiments to compare issue 16's CPU experiments side by
# side (one row per variant). SERVICE_BENCH_ARGS replaces the defaults (--counts 8,32,64 --window 20: about 5 minutes;
# the big counts in a call of their own: --counts 100,128 --window 20 --ceiling-streams 128).
# nvcuvid: bench/nvcuvid_ceiling, NVIDIA's parser and decoder called directly (N streams on T
# threads: T = N is one thread per camera, T = 7 one per NVDEC engine), against FFmpeg's *_cuvid
# (bench/nvdec_ceiling --decoder cuvid, rows ffN) in the same process run: the sweep flat out
# (16, 64 and 128 streams; 6 s per row, every row twice, interleaved; medians and ratios at the
# end), then 128 streams paced at 30 fps like live cameras on 7 threads and on 128 (10 s, twice,
# interleaved): fps of the slowest stream, lag, CPU per frame and per stream. About 4 minutes,
# to nvcuvid-ceiling.txt; NVCUVID_ARGS adds arguments to both calls (e.g. --sched blocking).
# snapshot: camera snapshots of cuda rings over HTTP (tests/gpu/test_snapshot_gpu.py: scaled on the
# GPU, decoded back to the right picture), then bench/snapshot_bench.py (cost per snapshot, camera
# fps with snapshots on and off, interleaved); about 3 minutes. The build needs cpp-httplib:
# bash tests/gpu/pack-http.sh puts it in .gpu/http.
# repeat: tests/gpu/test_mini_rtsp_server.py::test_rtp_stream REPEAT_RUNS times (default 50),
# 10 at a time, with a busy loop on every core (issue 22's flaky test, under load).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/cuframes-gpu-out}
mkdir -p "$OUT"
BUILD=${BUILD:-/tmp/cuframes-build}
STAGES=${STAGES:-build ctest core bench subs64 python preprocess pybench service rtsp repeat detector detectorbench cli servicebench nvcuvid snapshot}
[ -f .gpu/env.sh ] && source .gpu/env.sh
if [ -d .gpu/http ]; then  # cpp-httplib, from tests/gpu/pack-http.sh
  export CMAKE_PREFIX_PATH=$PWD/.gpu/http${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export PKG_CONFIG_PATH=$PWD/.gpu/http/lib/x86_64-linux-gnu/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$PWD/.gpu/http/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
export CUFRAMES_TEST_EXPECT_GPU=1
export CUFRAMES_LOG_LEVEL=${CUFRAMES_LOG_LEVEL:-warn}
export CUFRAMES_SERVICE_BIN="$BUILD/service/cuframes-service"
export CUFRAMES_CLI="$BUILD/cli/cuframes"
export CUFRAMES_TEST_MEDIA_DIR="$PWD/.gpu-media"
status=0
step() { echo "=== $*" | tee -a "$OUT/summary.txt"; }
want() { [[ " $STAGES " == *" $1 "* ]]; }
# pytest on the GPU machine's python3, logs appended to python-gpu.log, summary lines kept.
gpu_pytest() {
  local from
  from=$(($( [ -f "$OUT/python-gpu.log" ] && wc -l <"$OUT/python-gpu.log" || echo 0) + 1))
  python3 -m pytest -v -s -p no:cacheprovider "$@" >>"$OUT/python-gpu.log" 2>&1 || status=1
  tail -n +"$from" "$OUT/python-gpu.log" | grep -E "checked|passed|failed|Error|SKIP" | tail -6 |
    tee -a "$OUT/summary.txt"
}

if want build; then
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
fi

if want ctest; then
  step "ctest -L gpu ${CTEST_REGEX:-}"
  ctest --test-dir "$BUILD" -L gpu ${CTEST_REGEX:+-R "$CTEST_REGEX"} --output-on-failure \
    --timeout 600 >"$OUT/ctest-gpu.log" 2>&1 || status=1
  grep -E "tests passed|Failed|\*\*\*|Passed|Not Run|GPU 0:" "$OUT/ctest-gpu.log" | tee -a "$OUT/summary.txt"
fi

if want core; then
  step "ctest -L core (the CPU suite on this machine too)"
  ctest --test-dir "$BUILD" -L core --output-on-failure --timeout 600 >"$OUT/ctest-core.log" 2>&1 || status=1
  grep -E "tests passed|Failed" "$OUT/ctest-core.log" | tee -a "$OUT/summary.txt"
fi

if want bench; then
  step "benchmark"
  "$BUILD/bench/cuframes_bench" ${BENCH_ARGS:-} >"$OUT/bench.txt" 2>&1 || status=1
  tee -a "$OUT/summary.txt" <"$OUT/bench.txt"
fi

if want subs64; then
  step "64 subscribers: cuframes_bench rows and publish() with 1 against 64"
  timeout -k 10 400 "$BUILD/bench/cuframes_bench" --floor 0 --sizes 1080p --subs 64 \
    --only host,cuda --pubcost host,cuda ${SUBS64_ARGS:-} >"$OUT/subs64.txt" 2>&1 || status=1
  tee -a "$OUT/summary.txt" <"$OUT/subs64.txt"
fi

# The Python package from this tree, installed once per run by the first stage that needs it
# (the machine may be fresh: nothing of an earlier call is there).
installed=0
need_package() {
  [ "$installed" = 1 ] && return 0
  installed=1
  python3 -m pip install --no-build-isolation ./python >"$OUT/pip.log" 2>&1 || {
    status=1
    echo "pip install ./python FAILED (pip.log)" | tee -a "$OUT/summary.txt"
  }
}

if want python; then
  step "python: pip install ./python + GPU tests"
  need_package
  # the preprocess and pybench stages run their own test files
  gpu_pytest tests/python/gpu $(want preprocess && echo --ignore=tests/python/gpu/test_preprocess_gpu.py) \
    $(want pybench && echo --ignore=tests/python/gpu/test_gpu_fast_path.py)
fi

if want preprocess; then
  step "preprocess: the kernel against its CPU twin, then bench/preprocess_bench.py"
  need_package
  gpu_pytest tests/python/gpu/test_preprocess_gpu.py
  grep -E "max \|GPU - CPU twin\||release ordered" "$OUT/python-gpu.log" | tail -2 | tee -a "$OUT/summary.txt"
  python3 bench/preprocess_bench.py ${PREPROCESS_BENCH_ARGS:-} >"$OUT/preprocess-bench.txt" 2>&1 || status=1
  tee -a "$OUT/summary.txt" <"$OUT/preprocess-bench.txt"
fi

if want pybench; then
  step "pybench: the Python per-frame path (GPU tests), then bench/python_bench.py (issue 17)"
  need_package
  gpu_pytest tests/python/gpu/test_gpu_frames.py tests/python/gpu/test_gpu_fast_path.py
  # each Python call on its own (cuda, then host), cProfile of the cuda loop
  { timeout -k 10 120 python3 bench/python_micro.py --profile ${PYTHON_MICRO_ARGS:-}
    timeout -k 10 60 python3 bench/python_micro.py --memory host --iters 2000; } \
    >"$OUT/python-micro.txt" 2>&1 || status=1
  grep -v "^ " "$OUT/python-micro.txt" | head -3 | tee -a "$OUT/summary.txt"
  { timeout -k 10 60 python3 bench/python_cold.py
    timeout -k 10 60 python3 bench/python_cold.py --bindings --seconds 8
    timeout -k 10 60 python3 bench/python_cold.py --spin-us 200 --seconds 8
    timeout -k 10 60 python3 bench/python_cold.py --fresh --seconds 6; } \
    >"$OUT/python-cold.txt" 2>&1 || status=1
  tee -a "$OUT/summary.txt" <"$OUT/python-cold.txt"
  timeout -k 10 360 python3 bench/python_bench.py --c-bench "$BUILD/bench/cuframes_bench" \
    ${PYTHON_BENCH_ARGS:-} >"$OUT/python-bench.txt" 2>&1 || status=1
  tee -a "$OUT/summary.txt" <"$OUT/python-bench.txt"
fi

if want service; then
  step "service: NVDEC file cameras verified by a torch subscriber"
  need_package
  gpu_pytest tests/gpu/test_service_nvdec.py
fi

if want rtsp && [ -f tests/gpu/test_mini_rtsp_gpu.py ]; then
  step "service: NVDEC over RTSP (tests/gpu/mini_rtsp.py), verified by a torch subscriber"
  need_package
  gpu_pytest tests/gpu/test_mini_rtsp_server.py tests/gpu/test_mini_rtsp_service.py \
    tests/gpu/test_mini_rtsp_gpu.py
fi

if want repeat; then
  runs=${REPEAT_RUNS:-50}
  step "test_rtp_stream x$runs, 10 at a time, $(nproc) busy loops beside"
  need_package
  hogs=()
  for ((i = 0; i < $(nproc); i++)); do (while :; do :; done) & hogs+=($!); done
  scripts/repeat.sh "$runs" 10 "$OUT/repeat-failures" -- python3 -m pytest -q -p no:cacheprovider \
    tests/gpu/test_mini_rtsp_server.py -k test_rtp_stream 2>&1 | tee -a "$OUT/summary.txt" || status=1
  kill "${hogs[@]}" 2>/dev/null
  wait "${hogs[@]}" 2>/dev/null
fi

if want detector && [ -f tests/gpu/test_detector_gpu.py ]; then
  step "examples/detector.py on CUDA rings (also --detect)"
  need_package
  gpu_pytest tests/gpu/test_detector_gpu.py
  grep -oE "(detection on [a-z0-9:]+: [0-9]+ batches|postprocess cuda ).*" "$OUT/python-gpu.log" \
    | tail -8 | tee -a "$OUT/summary.txt"
fi

if want detectorbench; then
  step "detector benchmark (bench/detector_bench.py)"
  need_package
  timeout -k 10 560 python3 bench/detector_bench.py --service "$BUILD/service/cuframes-service" \
    --clip .gpu-media/bench-1080p30.mp4 ${DETECTOR_BENCH_ARGS:-} >"$OUT/detector-bench.txt" 2>&1 \
    || status=1
  tee -a "$OUT/summary.txt" <"$OUT/detector-bench.txt"
fi

if want cli && [ -f tests/gpu/test_cli_gpu.py ]; then
  step "the cuframes CLI on a CUDA ring"
  need_package
  gpu_pytest tests/gpu/test_cli_gpu.py
fi

if want servicebench; then
  step "service benchmark (bench/service_bench.py)"
  timeout -k 10 560 python3 bench/service_bench.py --service "$BUILD/service/cuframes-service" \
    --ceiling "$BUILD/bench/nvdec_ceiling" --clip .gpu-media/bench-1080p30.mp4 \
    ${SERVICE_BENCH_ARGS:---counts 8,32,64 --window 20} >"$OUT/service-bench.txt" 2>&1 || status=1
  tee -a "$OUT/summary.txt" <"$OUT/service-bench.txt"
fi
if want nvcuvid; then
  step "NVIDIA's parser and decoder called directly (bench/nvcuvid_ceiling) against FFmpeg's cuvid"
  if [ ! -x "$BUILD/bench/nvcuvid_ceiling" ]; then
    echo "nvcuvid: $BUILD/bench/nvcuvid_ceiling was not built (ffnvcodec headers: .gpu)" |
      tee -a "$OUT/summary.txt"
    status=1
  else
    gpu_pytest tests/service/test_bench_nvcuvid.py  # its demux, loop and errors, here too
    {
      timeout -k 10 230 "$BUILD/bench/nvcuvid_ceiling" --ffmpeg "$BUILD/bench/nvdec_ceiling" \
        --sweep 16x16,16x7,ff16,64x64,64x7,ff64,128x128,128x7,128x14 --seconds 6 --repeat 2 \
        ${NVCUVID_ARGS:-} .gpu-media/bench-1080p30.mp4 || status=1
      timeout -k 10 100 "$BUILD/bench/nvcuvid_ceiling" --sweep 128x7,128x128 --paced 30 \
        --seconds 10 --repeat 2 ${NVCUVID_ARGS:-} .gpu-media/bench-1080p30.mp4 || status=1
    } >"$OUT/nvcuvid-ceiling.txt" 2>&1
    tee -a "$OUT/summary.txt" <"$OUT/nvcuvid-ceiling.txt"
  fi
fi
if want snapshot; then
  step "snapshots of cuda rings (HTTP), then bench/snapshot_bench.py"
  need_package
  grep -h "cuframes-service: HTTP endpoint" "$OUT/build.log" 2>/dev/null | tee -a "$OUT/summary.txt"
  gpu_pytest tests/gpu/test_snapshot_gpu.py
  grep -E "snapshots checked" "$OUT/python-gpu.log" | tail -6 | tee -a "$OUT/summary.txt"
  timeout -k 10 200 python3 bench/snapshot_bench.py --service "$BUILD/service/cuframes-service" \
    --clip .gpu-media/bench-1080p30.mp4 ${SNAPSHOT_BENCH_ARGS:-} >"$OUT/snapshot-bench.txt" 2>&1 \
    || status=1
  tee -a "$OUT/summary.txt" <"$OUT/snapshot-bench.txt"
fi
step "exit status $status"
exit $status
