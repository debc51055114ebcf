"""bench/python_bench.py on host memory, as CI can run it: the Python subscriber arms, the C
producer under Python subscribers (cuframes-cpub), Python and C subscribers on the same frames
(cuframes-mixed) and the C path, for 1 and 2 subscribers over 4 rounds (so that the mixed arm's
attach order and CPUs both take their turns). Its figures are the GPU machine's business
(tests/gpu/run.sh, stage pybench); here every arm must run without an error and every line the
issue's targets are read from must be printed with numbers in it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cuframes

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "python_bench.py"
# The package under test is the build tree's (PYTHONPATH=build/python): its cuframes_bench is
# build/bench/cuframes_bench.
C_BENCH = Path(cuframes.__file__).resolve().parents[2] / "bench" / "cuframes_bench"
ARMS = ["cuframes", "cuframes-cpub", "cuframes-mixed", "C host"]
NUM = r"[-+]?[0-9]+\.[0-9]"


def test_host_bench_runs_every_arm() -> None:
    assert C_BENCH.exists(), f"{C_BENCH}: the C bench is built with the package (scripts/build.sh)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(
        [sys.executable, str(BENCH), "--memory", "host", "--rounds", "4", "--seconds", "0.3",
         "--sizes", "1080p", "--subs", "1,2", "--arms", ",".join(ARMS), "--c-bench",
         str(C_BENCH)], capture_output=True, text=True, timeout=600, env=env)
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
    assert "error:" not in out, out
    assert "round 4/4 done" in out, out
    for n in (1, 2):
        for arm in ARMS:
            row = re.search(rf"^1080p\s+{n} {re.escape(arm)}\s+\|\s+({NUM})", out, re.M)
            assert row, f"no row for {arm} with {n} subscriber(s):\n{out}"
            assert float(row.group(1)) > 0
        # the C subscribers beside the Python ones, and the targets' same-frame figures
        assert re.search(rf"cuframes-mixed's C subscribers.*1080p {n} {NUM}/{NUM}/{NUM}", out), out
        targets = re.search(rf"^  1080p {n} sub: (.*)$", out, re.M)
        assert targets, out
        line = targets.group(1)
        assert re.search(rf"Python - C subscribers p50 \(<= 25\) from the pts {NUM} us, by round "
                         rf"{NUM} \[{NUM}\.\.{NUM}\], from the publication {NUM}", line), line
        assert re.search(rf"the whole Python path .* = {NUM} us", line), line
        assert re.search(rf"publish\(\) p50 less its own C call {NUM} us", line), line
        assert re.search(rf"publish\(\) p50 Python - C {NUM} us, by round {NUM} .*cuframes-cpub",
                         line), line
