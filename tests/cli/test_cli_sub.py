"""`cuframes sub` against real publishers (host memory, no GPU): fps and latency per second and
the totals, the rate without the frame from before, gaps, overruns of a strict subscriber, a
publisher that goes away, SIGTERM."""

from __future__ import annotations

import re
import signal
from typing import Any, Callable

import pytest

import clitest
from clitest import NV12


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


def read_1_then_11_while_stopped(sub: clitest.LineProc, pub: Any, frame: Any, key: str,
                                 runtime_dir: str, name: str) -> None:
    """Frame 1 published and read by `cuframes sub` (named name); the CLI stopped (SIGSTOP) while
    frames 2..11 are published; continued, until it has read frame 11."""
    def last_seq() -> Any:
        return (clitest.subscriber_entry(key, runtime_dir, name) or {}).get("last_seq")

    pub.publish(frame)
    clitest.wait_for(lambda: last_seq() == 1, 10, "frame 1 to be read")
    sub.signal(signal.SIGSTOP)
    clitest.wait_for(lambda: clitest.process_stopped(sub.proc.pid), 10, "the CLI to stop")
    for _ in range(10):
        pub.publish(frame)
    sub.signal(signal.SIGCONT)
    clitest.wait_for(lambda: last_seq() == 11, 10, "frame 11 to be read")


def test_sub_counts_gaps(runtime_dir: str, key: str, publish: Callable[..., Any],
                         cli_proc: Callable[..., clitest.LineProc]) -> None:
    pub = publish(key, 320, 240)
    frame = clitest.make_frame(NV12, 320, 240)
    sub = cli_proc("sub", key, "--runtime-dir", runtime_dir, "--name", "det-g")
    sub.expect(r"^subscribed to ")
    # Stopped, the subscriber misses frames 2..10 and then reads the newest, 11: 9 gaps.
    read_1_then_11_while_stopped(sub, pub, frame, key, runtime_dir, "det-g")
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
    # Stopped, the subscriber is lapped: 10 frames through a ring of 4.
    read_1_then_11_while_stopped(sub, pub, frame, key, runtime_dir, "det-o")
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
