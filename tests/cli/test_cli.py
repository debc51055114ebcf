"""The `cuframes` command-line tool against real publishers (host memory, no GPU): list, stat
(once, --json, --watch on a pipe, a terminal and as JSON lines), snapshot (JPEG and PNG of
NV12, P010 and GRAY8 frames, checked pixel by pixel), sub (fps, latency, gaps, overruns),
errors and exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import cuframes

import clitest
from clitest import CLI, PF, run_cli

NV12, P010, GRAY8 = PF.NV12, PF.P010, PF.GRAY8


# ---- command line --------------------------------------------------------------------------

def test_version_and_help() -> None:
    r = run_cli("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"cuframes {cuframes.version_string()} (libcuframes "
                               f"{cuframes.version_string()}, protocol "
                               f"{cuframes.protocol_version()})")
    for args in (["help"], ["--help"], ["stat", "--help"]):
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("usage: cuframes COMMAND")
        for command in ("list", "stat", "snapshot", "sub"):
            assert f"\n  {command} " in r.stdout


def _usage_rows(text: str, section: str) -> list[str]:
    """The left column of a section of the usage ("Commands:", "Options:"): each row starts
    with two spaces; its help follows after two or more spaces, or on the lines below."""
    rows: list[str] = []
    lines = text.split("\n")
    start = lines.index(section) + 1
    for line in lines[start:]:
        if not line.strip():
            break
        if line.startswith("  ") and not line.startswith("   "):
            rows.append(re.split(r"\s{2,}", line.strip())[0])
    return rows


def test_help_matches_docs() -> None:
    """docs/cli.md against the usage that the command table prints: the command table of
    "Command line" lists exactly the usage's commands, each command's section opens with its
    synopsis, and every option of the usage is documented (and no other)."""
    usage = run_cli("--help").stdout
    commands = _usage_rows(usage, "Commands:")
    options = _usage_rows(usage, "Options:")
    assert commands and options, usage
    doc = (clitest.ROOT / "docs" / "cli.md").read_text()

    section = doc.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    documented = [re.sub(r"`", "", row.split(" | ")[0][2:]).replace("\\|", "|")
                  for row in section.split("\n") if row.startswith("| `")]
    assert documented == commands, (documented, commands)

    common = [o for o in options if o.startswith("--runtime-dir")]
    assert common == ["--runtime-dir DIR"], options
    for synopsis in commands:
        name = synopsis.split(" ")[0].rstrip(",")
        if name in ("help", "--version"):
            continue
        line = f"    cuframes {synopsis} [{common[0]}]"
        assert f"\n## {name}\n" in doc, name
        assert line in doc.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0], line

    in_usage = {o.split(" ")[0] for o in options}
    # Not options of a command: the pseudo-commands, cmake's (how to build), "--opt=value".
    others = {"--help", "--version", "--build", "--install", "--opt"}
    in_doc = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", doc)) - others
    assert in_usage == in_doc, (sorted(in_usage - in_doc), sorted(in_doc - in_usage))


@pytest.mark.parametrize("args, message", [
    ([], "no command given"),
    (["bogus"], "unknown command 'bogus'"),
    (["list", "--bogus"], "unknown option '--bogus'"),
    (["list", "extra"], "unexpected argument 'extra'"),
    (["list", "--json=1"], "option --json takes no value"),
    (["stat"], "missing KEY"),
    (["stat", "k", "--runtime-dir"], "option --runtime-dir needs a value"),
    (["stat", "k", "--watch", "0"], "option --watch: '0' is not a number from 0.05"),
    (["stat", "k", "--watch", "soon"], "unexpected argument 'soon'"),
    (["snapshot", "k"], "missing KEY and FILE"),
    (["snapshot", "k", "frame.gif"], "must end in .jpg, .jpeg or .png"),
    (["snapshot", "k", "frame.png", "--timeout", "-5"], "option --timeout: '-5'"),
    (["sub", "k", "--mode", "fast"], "option --mode: 'fast' is not newest_only (newest) or strict_order (strict)"),
    (["sub", "k", "--seconds", "x"], "option --seconds: 'x' is not a number"),
    # Values the library refuses are bad values too (issue 20).
    (["stat", "bad key"], "invalid key 'bad key'"),
    (["snapshot", "bad/key", "f.png"], "invalid key 'bad/key'"),
    (["sub", "k", "--name", "bad name"], "invalid consumer_name 'bad name'"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    r = run_cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert message in r.stderr
    assert "\nusage: cuframes COMMAND" in r.stderr


@pytest.mark.parametrize("args", [
    ["stat", "nokey"], ["stat", "nokey", "--watch", "0.1"], ["stat", "nokey", "--json"],
    ["snapshot", "nokey", "out.png"], ["sub", "nokey"],
])
def test_missing_key(args: list[str], runtime_dir: str, tmp_path: Path) -> None:
    r = run_cli(*args, "--runtime-dir", runtime_dir)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert f"cuframes {args[0]}: PUBLISHER_GONE" in r.stderr
    assert f"no publisher for 'nokey' in {runtime_dir}" in r.stderr
    assert "usage:" not in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_output_not_written(runtime_dir: str) -> None:
    """Output that cannot be written (a full disk) is a failure, not a silent success."""
    with open("/dev/full", "w") as full:
        r = subprocess.run([str(clitest.CLI), "list", "--runtime-dir", runtime_dir],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 1
    assert "cuframes list: cannot write the output" in r.stderr


def test_bad_runtime_dir(tmp_path: Path) -> None:
    # Missing: nothing there, nothing made (only a publisher makes it).
    missing = tmp_path / "no" / "such" / "dir"
    r = run_cli("list", "--runtime-dir", str(missing))
    assert r.returncode == 0, r.stderr
    assert "no such directory" in r.stdout and not (tmp_path / "no").exists()
    # There, but not a directory: an error naming it.
    (tmp_path / "file").write_text("")
    r = run_cli("list", "--runtime-dir", str(tmp_path / "file"))
    assert r.returncode == 1
    assert f"cuframes list: SHM: runtime dir {tmp_path / 'file'} is not a directory" in r.stderr


def test_runtime_dir_from_environment(runtime_dir: str, key: str,
                                      publish: Callable[..., Any]) -> None:
    publish(key, 64, 48)
    r = subprocess.run([str(clitest.CLI), "list"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, CUFRAMES_RUNTIME_DIR=runtime_dir))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].split()[0] == key


# ---- list ----------------------------------------------------------------------------------

def test_list_empty(runtime_dir: str) -> None:
    r = run_cli("list", "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"no live publishers in {runtime_dir}\n"
    r = run_cli("list", "--runtime-dir", runtime_dir, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_list_looks_without_creating(tmp_path: Path) -> None:
    """A directory that is not there: named (the default one too), and not created (issue 20)."""
    missing = tmp_path / "rt2"
    r = run_cli("list", "--runtime-dir", str(missing))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"no live publishers in {missing} (no such directory: no publisher has made it yet)\n"
    assert not missing.exists()
    r = subprocess.run([str(CLI), "list"], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if k != "CUFRAMES_RUNTIME_DIR"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("no live publishers in /") or "KEY" in r.stdout, r.stdout


def test_list(runtime_dir: str, key: str, publish: Callable[..., Any]) -> None:
    a = publish(key + "-a", 640, 480, NV12, slots=4)
    b = publish(key + "-b", 1365, 767, GRAY8, policy=cuframes.PublisherPolicy.STRICT_WAIT)
    for _ in range(3):
        a.publish(clitest.make_frame(NV12, 640, 480))
    b.publish(clitest.make_frame(GRAY8, 1365, 767))
    with cuframes.subscribe(key + "-a", consumer_name="det", connect_timeout_ms=5000,
                            runtime_dir=runtime_dir):
        r = run_cli("list", "--runtime-dir", runtime_dir)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].split() == ["KEY", "FORMAT", "SIZE", "MEMORY", "TRANSPORT", "SLOTS",
                                    "SUBSCRIBERS", "PUBLISHED", "DROPPED"]
        assert [ln.split() for ln in lines[1:]] == [
            [key + "-a", "NV12", "640x480", "host", "memfd", "4", "1", "3", "0"],
            [key + "-b", "GRAY8", "1365x767", "host", "memfd", "8", "0", "1", "0"],
        ]

        r = run_cli("list", "--runtime-dir", runtime_dir, "--json")
        assert r.returncode == 0, r.stderr
        rings = json.loads(r.stdout)
    assert [x["key"] for x in rings] == [key + "-a", key + "-b"]
    ra, rb = rings
    assert ra["format"] == "NV12" and (ra["width"], ra["height"]) == (640, 480)
    assert (ra["memory"], ra["device"], ra["transport"]) == ("host", -1, "memfd")
    assert (ra["slots"], ra["subscribers"], ra["published"], ra["dropped"]) == (4, 1, 3, 0)
    assert ra["pitch_y"] == a.pitch_y and ra["publisher_pid"] == os.getpid()
    assert rb["format"] == "GRAY8" and (rb["width"], rb["height"]) == (1365, 767)
    assert rb["policy"] == "strict_wait" and rb["pitch_uv"] == 0


# ---- stat ----------------------------------------------------------------------------------

def test_stat_once(runtime_dir: str, key: str, publish: Callable[..., Any],
                   cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 1366, 768, NV12, slots=6)
    frame = clitest.make_frame(NV12, 1366, 768)
    for _ in range(3):
        pub.publish(frame)
    # Two subscribers: one here (strict, holding a frame), one the CLI's own `sub`.
    cli_sub = cli_proc("sub", key, "--runtime-dir", runtime_dir, "--name", "det-cli")
    cli_sub.expect(r"^subscribed to ")
    with cuframes.subscribe(key, consumer_name="det-py", mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=5000, runtime_dir=runtime_dir) as sub:
        held = sub.next_frame(timeout_ms=5000)
        assert held.seq == 3
        clitest.wait_for(lambda: (clitest.subscriber_entry(key, runtime_dir, "det-cli")
                                  or {}).get("last_seq") == 3, 10, "the CLI subscriber's frame")

        r = run_cli("stat", key, "--runtime-dir", runtime_dir)
        assert r.returncode == 0, r.stderr
        text = r.stdout
        assert text.startswith(f"{key}: publisher pid {os.getpid()}, up ")
        for pattern in [r"\n  geometry +NV12 1366x768, 1 byte/sample, pitch Y 1408 UV 1408, "
                        rf"{1408 * 768 * 3 // 2} bytes/frame\n",
                        r"\n  memory +host, transport memfd\n",
                        r"\n  policy +drop\n",
                        r"\n  slots +6, 1 held \(occupancy 16%\)\n",
                        r"\n  published +3, last seq 3, \S+ \S+ ago\n",
                        r"\n  dropped +0\n",
                        r"\n  fps +average (\d+\.\d|-) since start\n",
                        r"\n  waiting +no\n",
                        r"\n  subscribers +2 of 64\n"]:
            assert re.search(pattern, text), (pattern, text)
        table = text.split("\n\n", 1)[1].splitlines()
        assert table[0].split() == ["NAME", "PID", "MODE", "FRAMES", "GAPS", "TIMEOUTS",
                                    "ERRORS", "OVERRUNS", "LAG", "LATENCY", "HELD", "HEARTBEAT"]
        rows = {ln.split()[0]: ln.split() for ln in table[1:]}
        assert set(rows) == {"det-py", "det-cli"}
        assert rows["det-py"][1:9] == [str(os.getpid()), "strict_order", "1", "0", "0", "0", "0", "0"]
        assert rows["det-py"][11] == "1"  # held
        assert rows["det-cli"][1:9] == [str(cli_sub.proc.pid), "newest_only", "1", "0", "0", "0", "0",
                                        "0"]
        assert rows["det-cli"][11] == "0"

        r = run_cli("stat", key, "--runtime-dir", runtime_dir, "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        held.release()
    ring = doc["ring"]
    assert ring["key"] == key and ring["publisher_pid"] == os.getpid()
    assert (ring["format"], ring["width"], ring["height"]) == ("NV12", 1366, 768)
    assert (ring["pitch_y"], ring["pitch_uv"], ring["bytes_per_sample"]) == (1408, 1408, 1)
    assert (ring["memory"], ring["transport"], ring["policy"]) == ("host", "memfd", "drop")
    assert (ring["slots"], ring["held_slots"], ring["max_subscribers"]) == (6, 1, 64)
    assert (ring["published"], ring["dropped"], ring["last_seq"]) == (3, 0, 3)
    assert ring["waiting"] is False and ring["packet_ring"] is False
    assert ring["fps"] is None and ring["fps_window_s"] is None
    assert ring["age_s"] > 0
    assert ring["last_publish_age_ms"] >= 0
    subs = {s["name"]: s for s in doc["subscribers"]}
    py = subs["det-py"]
    assert (py["pid"], py["mode"], py["frames"], py["held"], py["last_seq"]) == (
        os.getpid(), "strict_order", 1, 1, 3)
    assert (py["gaps"], py["timeouts"], py["errors"], py["overruns"], py["lag"]) == (0, 0, 0, 0, 0)
    assert py["last_latency_ns"] > 0 and py["heartbeat_age_ms"] >= 0 and py["fps"] is None
    assert (subs["det-cli"]["pid"], subs["det-cli"]["mode"], subs["det-cli"]["held"]) == (
        cli_sub.proc.pid, "newest_only", 0)
    rc, _ = clitest.stop(cli_sub)
    assert rc == 0


def test_stat_no_subscribers(runtime_dir: str, key: str, publish: Callable[..., Any]) -> None:
    publish(key, 320, 240, P010)
    r = run_cli("stat", key, "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    assert "2 bytes/sample" in r.stdout and "published    0\n" in r.stdout
    assert r.stdout.endswith("\n\n  (no subscribers)\n")
    doc = json.loads(run_cli("stat", key, "--runtime-dir", runtime_dir, "--json").stdout)
    assert doc["subscribers"] == [] and doc["ring"]["last_publish_age_ms"] is None


def test_stat_watch_pipe(runtime_dir: str, key: str, publish: Callable[..., Any],
                         feed: Callable[..., Any],
                         cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 640, 480)
    feed(pub, clitest.make_frame(NV12, 640, 480))
    watch = cli_proc("stat", key, "--runtime-dir", runtime_dir, "--watch", "0.2")
    header = rf"^cuframes stat {re.escape(key)}, every 0.2 s, \d\d:\d\d:\d\d \(Ctrl-C to quit\)$"
    watch.expect(header)
    watch.expect(r"^  fps +average ")  # the first refresh has no window yet
    watch.expect(header)
    watch.expect(r"^  fps +\d+\.\d over 0\.\d\d s \(average \d+\.\d since start\)$")
    rc, _ = clitest.stop(watch)
    assert rc == 0, watch.stderr_text()
    assert not any("\x1b" in line for line in watch.seen)  # no terminal codes on a pipe


def test_stat_watch_terminal(runtime_dir: str, key: str, publish: Callable[..., Any],
                             cli_proc: Callable[..., clitest.LineProc]) -> None:
    publish(key, 640, 480)
    watch = cli_proc("stat", key, "--runtime-dir", runtime_dir, "--watch", "0.1", pty=True)
    clear = "\x1b[H\x1b[2J"
    watch.read_text(clear)
    refresh = watch.read_text(clear)  # a whole refresh, up to the next screen clear
    assert f"cuframes stat {key}, every 0.1 s" in refresh
    assert "(no subscribers)" in refresh
    watch.signal(signal.SIGINT)
    assert watch.wait() == 0


def test_stat_watch_json(runtime_dir: str, key: str, publish: Callable[..., Any],
                         feed: Callable[..., Any],
                         cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 640, 480)
    feed(pub, clitest.make_frame(NV12, 640, 480))
    with cuframes.subscribe(key, consumer_name="det", connect_timeout_ms=5000,
                            runtime_dir=runtime_dir):
        watch = cli_proc("stat", key, "--runtime-dir", runtime_dir, "--watch", "0.25", "--json")
        first = json.loads(watch.readline() or "")
        second = json.loads(watch.readline() or "")
        rc, rest = clitest.stop(watch)
    assert rc == 0, watch.stderr_text()
    for line in rest:
        json.loads(line)
    assert first["ring"]["fps"] is None
    assert second["time_ns"] > first["time_ns"]
    ring = second["ring"]
    assert ring["fps"] is not None and ring["fps"] > 0
    assert ring["fps_window_s"] == pytest.approx((second["time_ns"] - first["time_ns"]) / 1e9,
                                                 rel=1e-3)
    assert [s["name"] for s in second["subscribers"]] == ["det"]
    assert second["subscribers"][0]["fps"] == 0  # attached, but reads nothing


def test_stat_watch_publisher_gone(runtime_dir: str, key: str, publish: Callable[..., Any],
                                   cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 64, 48)
    watch = cli_proc("stat", key, "--runtime-dir", runtime_dir, "--watch", "0.1")
    watch.expect(r"^cuframes stat ")
    pub.close()
    watch.rest()
    assert watch.wait() == 1
    assert f"cuframes stat: the publisher of '{key}' is gone" in watch.stderr_text()


# ---- snapshot ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, width, height, pitch, name", [
    (NV12, 640, 480, 0, "frame.png"),
    (NV12, 640, 480, 0, "frame.jpg"),
    (NV12, 1366, 768, 0, "frame.png"),    # odd geometry: pitch 1408, BT.709
    (NV12, 1366, 768, 0, "frame.JPEG"),
    (NV12, 1920, 1080, 2048, "frame.png"),  # an NVDEC-like pitch
    (P010, 1366, 768, 0, "frame.png"),
    (P010, 1366, 768, 0, "frame.jpg"),
    (GRAY8, 1365, 767, 0, "frame.png"),   # odd width and height
    (GRAY8, 1365, 767, 0, "frame.jpeg"),
], ids=lambda v: v.name if isinstance(v, PF) else str(v))
def test_snapshot(fmt: PF, width: int, height: int, pitch: int, name: str, runtime_dir: str,
                  key: str, publish: Callable[..., Any], tmp_path: Path) -> None:
    pub = publish(key, width, height, fmt, pitch=pitch)
    assert pub.pitch_y > width * (2 if fmt == P010 else 1) or pitch == 0
    seq = pub.publish(clitest.make_frame(fmt, width, height))
    out = tmp_path / name
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    size = out.stat().st_size
    jpeg = not name.endswith(".png")
    assert r.stdout == (f"wrote {out}: {size} bytes ({'JPEG' if jpeg else 'PNG'}, "
                        f"{width}x{height} {fmt.name}, frame seq {seq} of '{key}')\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left

    info = clitest.probe(out)
    assert info == {"codec_name": "mjpeg" if jpeg else "png", "width": width, "height": height}
    rgb = clitest.decode_rgb(out, width, height).astype(np.float64)
    want = clitest.expected_rgb(fmt, width, height)
    # Away from the quadrant borders (chroma upsampling, JPEG blocks), every pixel matches.
    inside = clitest.interior(height, width, 16 if jpeg else 4)
    diff = np.abs(rgb - want)[inside]
    assert diff.max() <= (10 if jpeg else 3), (
        f"max difference {diff.max()}; want {np.unique(want.reshape(-1, 3), axis=0)}, got "
        f"{np.unique(rgb[inside].reshape(-1, 3), axis=0)[:8]}")
    # The snapshot's subscriber has detached.
    assert cuframes.observe(key, runtime_dir=runtime_dir)["subscribers"] == []


@pytest.mark.parametrize("matrix, rng", [
    (cuframes.ColorMatrix.BT601, cuframes.ColorRange.FULL),     # an MJPEG camera's frames
    (cuframes.ColorMatrix.BT709, cuframes.ColorRange.FULL),
    (cuframes.ColorMatrix.BT709, cuframes.ColorRange.LIMITED),  # SD size, said BT.709
], ids=lambda v: v.name)
def test_snapshot_follows_the_colour_description(matrix: cuframes.ColorMatrix,
                                                 rng: cuframes.ColorRange, runtime_dir: str,
                                                 key: str, publish: Callable[..., Any],
                                                 tmp_path: Path) -> None:
    """The frame's colour description, where it has one, decides the conversion (not the size
    guess): a flat colour comes out as its matrix and range say."""
    width, height = 320, 240  # SD: the guess would be limited-range BT.601
    yuv = np.array([150, 100, 170])
    pub = publish(key, width, height)
    frame = np.empty((height * 3 // 2, width), np.uint8)
    frame[:height] = yuv[0]
    frame[height:, 0::2] = yuv[1]
    frame[height:, 1::2] = yuv[2]
    pub.publish(frame, color_matrix=matrix, color_range=rng)
    out = tmp_path / "colour.png"
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    got = clitest.decode_rgb(out, width, height).reshape(-1, 3).astype(np.float64)
    want = clitest.yuv_to_rgb(yuv.astype(np.float64), matrix == cuframes.ColorMatrix.BT709,
                              rng == cuframes.ColorRange.FULL)
    assert np.abs(got - want).max() <= 2, (np.unique(got, axis=0), want)


def test_snapshot_waits_for_a_frame(runtime_dir: str, key: str, publish: Callable[..., Any],
                                    cli_proc: Callable[..., clitest.LineProc],
                                    tmp_path: Path) -> None:
    pub = publish(key, 320, 240)
    out = tmp_path / "first.png"
    snap = cli_proc("snapshot", key, str(out), "--runtime-dir", runtime_dir, "--timeout", "20000")
    clitest.wait_for(lambda: cuframes.observe(key, runtime_dir=runtime_dir)["subscribers"], 10,
                     "the snapshot to subscribe")
    assert not out.exists()
    seq = pub.publish(clitest.make_frame(NV12, 320, 240))
    snap.expect(rf"^wrote {re.escape(str(out))}: \d+ bytes \(PNG, 320x240 NV12, frame seq {seq} ")
    assert snap.wait() == 0
    assert clitest.probe(out)["width"] == 320


def test_snapshot_replaces_file(runtime_dir: str, key: str, publish: Callable[..., Any],
                                tmp_path: Path) -> None:
    pub = publish(key, 320, 240)
    pub.publish(clitest.make_frame(NV12, 320, 240))
    out = tmp_path / "old.png"
    out.write_bytes(b"not an image")
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir)
    assert r.returncode == 0, r.stderr
    assert clitest.probe(out) == {"codec_name": "png", "width": 320, "height": 240}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]


def test_snapshot_timeout(runtime_dir: str, key: str, publish: Callable[..., Any],
                          tmp_path: Path) -> None:
    publish(key, 320, 240)
    out = tmp_path / "never.jpg"
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir, "--timeout", "200")
    assert r.returncode == 1
    assert f"cuframes snapshot: FRAME_TIMEOUT: no frame from '{key}' within 200 ms" in r.stderr
    assert not out.exists()


def test_snapshot_unwritable(runtime_dir: str, key: str, publish: Callable[..., Any],
                             tmp_path: Path) -> None:
    pub = publish(key, 320, 240)
    pub.publish(clitest.make_frame(NV12, 320, 240))
    out = tmp_path / "no-such-dir" / "x.png"
    r = run_cli("snapshot", key, str(out), "--runtime-dir", runtime_dir)
    assert r.returncode == 1
    assert f"cuframes snapshot: cannot write {out}: No such file or directory" in r.stderr


# ---- sub -----------------------------------------------------------------------------------

LINE = re.compile(r"^ +(\d+\.\d) s  fps (\d+\.\d)  latency p50 (\S+ \S+|-) p99 (\S+ \S+|-)  "
                  r"gaps (\d+)  overruns (\d+)$")
TOTAL = re.compile(r"^total: (\d+) frames? in (\d+\.\d) s \((\d+\.\d) fps\), latency p50 "
                   r"(\S+ \S+|-) p99 (\S+ \S+|-) max (\S+ \S+|-), gaps (\d+), overruns (\d+), "
                   r"errors (\d+), publisher dropped (\d+)$")


def totals(lines: list[str]) -> re.Match[str]:
    found = [m for m in map(TOTAL.match, lines) if m]
    assert len(found) == 1, lines
    return found[0]


def test_sub_prints_fps_and_totals(runtime_dir: str, key: str, publish: Callable[..., Any],
                                   feed: Callable[..., Any],
                                   cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 640, 480)
    feed(pub, clitest.make_frame(NV12, 640, 480), fps=50)
    sub = cli_proc("sub", key, "--runtime-dir", runtime_dir, "--seconds", "2.5", "--name",
                   "det-s")
    sub.expect(rf"^subscribed to '{re.escape(key)}' \(NV12 640x480, host\) as 'det-s', "
               r"mode newest_only$")
    lines = sub.rest(30)
    assert sub.wait() == 0, sub.stderr_text()
    per_second = [m for m in map(LINE.match, lines) if m]
    assert [m[1] for m in per_second[:2]] == ["1.0", "2.0"], lines
    assert all(float(m[2]) > 0 and m[3] != "-" for m in per_second[:2]), lines
    t = totals(lines)
    assert int(t[1]) > 0 and float(t[2]) == pytest.approx(2.5, abs=0.2)
    assert sum(round(float(m[2]) * 1.0) for m in per_second[:2]) <= int(t[1]) + 2


def test_sub_rate_leaves_out_the_frame_from_before(runtime_dir: str, key: str,
                                                   publish: Callable[..., Any],
                                                   cli_proc: Callable[..., clitest.LineProc]) -> None:
    """The frame already in the ring at attach is taken but is not part of the rate: a source
    that publishes nothing more reads 0 fps, not 1 (issue 20: 31-33 fps on a 30 fps source)."""
    pub = publish(key, 64, 32)
    pub.publish(clitest.make_frame(NV12, 64, 32))
    sub = cli_proc("sub", key, "--runtime-dir", runtime_dir, "--seconds", "1.2")
    sub.expect(r"^subscribed to ")
    lines = sub.rest(30)
    assert sub.wait() == 0, sub.stderr_text()
    per_second = [m for m in map(LINE.match, lines) if m]
    assert per_second and float(per_second[0][2]) == 0.0, lines
    t = totals(lines)
    assert int(t[1]) == 1 and lines[-1].split("(")[1].startswith("0.0 fps"), lines


def test_sub_counts_gaps(runtime_dir: str, key: str, publish: Callable[..., Any],
                         cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 320, 240)
    frame = clitest.make_frame(NV12, 320, 240)
    sub = cli_proc("sub", key, "--runtime-dir", runtime_dir, "--name", "det-g")
    sub.expect(r"^subscribed to ")
    pub.publish(frame)
    clitest.wait_for(lambda: (clitest.subscriber_entry(key, runtime_dir, "det-g")
                              or {}).get("last_seq") == 1, 10, "frame 1 to be read")
    # Stopped, the subscriber misses frames 2..10 and then reads the newest, 11: 9 gaps.
    sub.signal(signal.SIGSTOP)
    clitest.wait_for(lambda: clitest.process_stopped(sub.proc.pid), 10, "the CLI to stop")
    for _ in range(10):
        pub.publish(frame)
    sub.signal(signal.SIGCONT)
    clitest.wait_for(lambda: (clitest.subscriber_entry(key, runtime_dir, "det-g")
                              or {}).get("last_seq") == 11, 10, "frame 11 to be read")
    sub.expect(r"  gaps 9  overruns 0$")  # the second's line
    rc, lines = clitest.stop(sub)
    assert rc == 0, sub.stderr_text()
    t = totals(lines)
    assert (int(t[1]), int(t[7]), int(t[8])) == (2, 9, 0), t[0]


def test_sub_strict_counts_overruns(runtime_dir: str, key: str, publish: Callable[..., Any],
                                    cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 320, 240, slots=4)
    frame = clitest.make_frame(NV12, 320, 240)
    sub = cli_proc("sub", key, "--runtime-dir", runtime_dir, "--mode", "strict", "--name", "det-o")
    sub.expect(r"mode strict_order$")
    pub.publish(frame)
    clitest.wait_for(lambda: (clitest.subscriber_entry(key, runtime_dir, "det-o")
                              or {}).get("last_seq") == 1, 10, "frame 1 to be read")
    # Stopped, the subscriber is lapped: 10 frames through a ring of 4.
    sub.signal(signal.SIGSTOP)
    clitest.wait_for(lambda: clitest.process_stopped(sub.proc.pid), 10, "the CLI to stop")
    for _ in range(10):
        pub.publish(frame)
    sub.signal(signal.SIGCONT)
    clitest.wait_for(lambda: (clitest.subscriber_entry(key, runtime_dir, "det-o")
                              or {}).get("last_seq") == 11, 10, "frame 11 to be read")
    rc, lines = clitest.stop(sub)
    assert rc == 0, sub.stderr_text()
    t = totals(lines)
    frames, gaps, overruns = int(t[1]), int(t[7]), int(t[8])
    assert overruns == 1 and gaps > 0 and frames + gaps == 11, t[0]


def test_sub_publisher_gone(runtime_dir: str, key: str, publish: Callable[..., Any],
                            cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 320, 240)
    sub = cli_proc("sub", key, "--runtime-dir", runtime_dir)
    sub.expect(r"^subscribed to ")
    pub.publish(clitest.make_frame(NV12, 320, 240))
    pub.close()
    lines = sub.rest()
    assert sub.wait() == 1
    assert int(totals(lines)[1]) <= 1
    assert f"cuframes sub: the publisher of '{key}' is gone" in sub.stderr_text()


def test_sub_sigterm(runtime_dir: str, key: str, publish: Callable[..., Any],
                     cli_proc: Callable[..., clitest.LineProc]) -> None:
    publish(key, 320, 240)
    sub = cli_proc("sub", key, "--runtime-dir", runtime_dir)
    sub.expect(r"^subscribed to ")
    rc, lines = clitest.stop(sub, signal.SIGTERM)
    assert rc == 0
    assert int(totals(lines)[1]) == 0


# ---- with cuframes-service -----------------------------------------------------------------

def test_service_ring(runtime_dir: str, tmp_path: Path) -> None:
    """list, stat and snapshot on a ring of cuframes-service (testsrc, host memory)."""
    if not os.access(clitest.SERVICE_BIN, os.X_OK):
        pytest.fail(f"{clitest.SERVICE_BIN} is missing: build it (scripts/build.sh) first")
    config = tmp_path / "cuframes.yaml"
    config.write_text(f'runtime_dir: "{runtime_dir}"\n'
                      "cameras:\n"
                      '  demo: {url: "testsrc://?width=640&height=480&fps=30", memory: host}\n')
    with open(tmp_path / "service.log", "wb") as log:
        service = subprocess.Popen([str(clitest.SERVICE_BIN), "--config", str(config)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        clitest.wait_for(lambda: "cam-demo" in cuframes.list_publishers(runtime_dir), 30,
                         "the service's ring")
        r = run_cli("list", "--runtime-dir", runtime_dir)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[1].split()[:5] == ["cam-demo", "NV12", "640x480", "host",
                                                        "memfd"]
        out = tmp_path / "demo.jpg"
        r = run_cli("snapshot", "cam-demo", str(out), "--runtime-dir", runtime_dir)
        assert r.returncode == 0, r.stderr
        assert clitest.probe(out) == {"codec_name": "mjpeg", "width": 640, "height": 480}
        r = run_cli("stat", "cam-demo", "--runtime-dir", runtime_dir, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["ring"]["published"] > 0
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(30) == 0, (tmp_path / "service.log").read_text(errors="replace")
