#!/usr/bin/env bash
# Runs a command RUNS times, JOBS at a time, and counts the failures: for hunting flaky tests
# (issue 22). Each failing run's output is kept in OUTDIR (default: a temporary directory).
#   scripts/repeat.sh RUNS JOBS [OUTDIR] -- command args...
# Exit status: 0 when every run passed.
set -uo pipefail
runs=$1 jobs=$2
shift 2
outdir=""
if [ "${1:-}" != "--" ]; then outdir=$1; shift; fi
[ "${1:-}" = "--" ] || { echo "usage: $0 RUNS JOBS [OUTDIR] -- command..." >&2; exit 2; }
shift
outdir=${outdir:-$(mktemp -d)}
mkdir -p "$outdir"
export outdir
worker() {  # worker K: runs K, K+JOBS, ...
  local k=$1 i rc
  for ((i = k; i <= runs; i += jobs)); do
    "${cmd[@]}" >"$outdir/run-$i.log" 2>&1
    rc=$?
    if [ $rc = 0 ]; then rm -f "$outdir/run-$i.log"; else echo "run $i: exit $rc ($outdir/run-$i.log)"; fi
  done
}
cmd=("$@")
start=$(date +%s)
for ((k = 1; k <= jobs; k++)); do worker "$k" & done
wait
failed=$(find "$outdir" -name 'run-*.log' | wc -l)
echo "repeat: $runs runs of '${cmd[*]}', $jobs at a time: $failed failed, $(( $(date +%s) - start )) s"
[ "$failed" = 0 ]
