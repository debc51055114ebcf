"""bench/nvcuvid_ceiling without a GPU: its demux + Annex B + loop (--demux-only, every packet
checked to be Annex B and every loop to start with a keyframe carrying its parameter sets), its
argument errors, and, on a machine without a GPU, its one-line refusal. Built only with CUDA and
FFmpeg's ffnvcodec headers (bench/CMakeLists.txt); the decode itself runs on the GPU machine
(tests/gpu/run.sh, stage nvcuvid)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import svc

BENCH = svc.SERVICE_BIN.parent.parent / "bench" / "nvcuvid_ceiling"

pytestmark = pytest.mark.skipif(
    not BENCH.exists(), reason=f"{BENCH} not built (needs CUDA and libffmpeg-nvenc-dev)")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BENCH), *args], capture_output=True, text=True, timeout=60)


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


@pytest.mark.parametrize("name", ["h264-1280x720", "hevc-2688x1520"])
def test_demux_loops_the_file(clip, name: str) -> None:
    c, path = clip(name)
    packets = 2 * c.frames + 7  # two whole loops and a bit, per stream
    r = run("--demux-only", "--packets", str(packets), "--streams", "3", "--threads", "2",
            str(path))
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("nvcuvid_ceiling ")]
    assert len(line) == 1, r.stdout
    f = fields(line[0])
    assert f["decoder"] == "demux-only"
    assert (f["streams"], f["threads"]) == ("3", "2")
    assert int(f["frames"]) == 3 * packets
    assert int(f["loops"]) == 3 * 2  # each stream went back to the start twice
    # service_bench.py's parsing of nvdec_ceiling's line reads this one too
    assert float(re.search(r"fps=([0-9.]+)", line[0]).group(1)) == float(f["fps"])
    assert re.search(r"cpu_us_per_frame=([0-9.]+)", line[0])


def test_preload_gives_the_same_packets(clip) -> None:
    c, path = clip("h264-1280x720")
    r = run("--demux-only", "--preload", "--packets", str(c.frames + 1), str(path))
    assert r.returncode == 0, r.stderr
    f = fields([ln for ln in r.stdout.splitlines() if ln.startswith("nvcuvid_ceiling ")][0])
    assert (int(f["frames"]), int(f["loops"])) == (c.frames + 1, 1)


def test_sweep_interleaves_and_prints_medians(clip) -> None:
    _, path = clip("h264-1280x720")
    r = run("--demux-only", "--seconds", "0.2", "--sweep", "2x2,2x1", "--repeat", "2", str(path))
    assert r.returncode == 0, r.stderr
    rows = [fields(ln) for ln in r.stdout.splitlines() if ln.startswith("nvcuvid_ceiling ")]
    assert [(x["streams"], x["threads"]) for x in rows] == [("2", "2"), ("2", "1")] * 2
    table = [ln.split() for ln in r.stdout.splitlines() if re.match(r"# 2x[12] ", ln)]
    assert [t[1] for t in table] == ["2x2", "2x1"]
    assert table[0][-1] == table[1][-1] == "2"  # two good runs per row
    assert table[0][9] == "-" and float(table[1][9]) > 0  # 2x1's fps ratio to 2x2


@pytest.mark.parametrize("args, says", [
    (["--streams", "0"], "--streams: '0' is not a whole number"),
    (["--threads", "3", "--streams", "2"], "--threads 3 is more than --streams 2"),
    (["--sched", "fast"], "--sched: 'fast'"),
    (["--sweep", "16x16,abc"], "--sweep: 'abc'"),
    (["--sweep", "ff16"], "needs --ffmpeg PATH"),
    (["--paced", "fast"], "--paced: 'fast' is not a number"),
    (["--frobnicate"], "unknown option --frobnicate"),
])
def test_bad_arguments_name_the_argument(clip, args: list[str], says: str) -> None:
    _, path = clip("h264-1280x720")
    r = run(*args, str(path))
    assert r.returncode == 2
    assert says in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_a_missing_value_is_named(clip) -> None:
    _, path = clip("h264-1280x720")
    r = run(str(path), "--seconds")
    assert r.returncode == 2 and r.stderr == "nvcuvid_ceiling: --seconds needs a value\n"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    r = run("--demux-only", str(tmp_path / "none.mp4"))
    assert r.returncode == 2 and "cannot open" in r.stderr and "none.mp4" in r.stderr


@pytest.mark.skipif(svc.gpu_present(), reason="this machine has a GPU")
def test_without_a_gpu_one_line_names_what_is_missing(clip) -> None:
    _, path = clip("h264-1280x720")
    r = run("--seconds", "1", str(path))
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert re.search(r"libcuda\.so\.1|libnvcuvid\.so\.1|CUDA device", r.stderr), r.stderr
    assert "nvcuvid_ceiling decoder=" not in r.stdout
