"""Health you can trust (issue 14): what the status file and MQTT say about a camera is true when
it is read. A camera whose frames stop reaching the ring is `stalled` with fps 0, whatever stops
them; a timestamp jump in a paced file re-anchors the pacing instead of freezing the camera; a
raw Annex B file (no timestamps) is paced at its frame rate, loops without flooding the log."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import cuframes

import media
import mqtt_helpers as mh
from mqtt_helpers import broker, collector  # noqa: F401  (fixtures)
import pattern
import svc

STRICT = cuframes.SubscriberMode.STRICT_ORDER
NEWEST = cuframes.SubscriberMode.NEWEST_ONLY
CLK_TCK = os.sysconf("SC_CLK_TCK")
# How late a report may come on this shared 2-core machine beyond what the contract allows.
SLACK_S = 2.0
LEVEL_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (\w+)\s")


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) of a process and its threads so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _log_lines(s: svc.Service) -> list[str]:
    s._log.flush()
    return s.log_path.read_text(errors="replace").splitlines()


def _camera_lines(s: svc.Service, cam: str, since: int = 0,
                  levels: tuple[str, ...] = ("info", "warning", "error", "critical")
                  ) -> list[str]:
    """The camera's log lines (from line `since`) at the given levels."""
    out = []
    for ln in _log_lines(s)[since:]:
        m = LEVEL_RE.match(ln)
        if m and m.group(1) in levels and f"[cam {cam}]" in ln:
            out.append(ln)
    return out


# ---- a timestamp jump --------------------------------------------------------------------

def test_timestamp_jump_reanchors_pacing(media_dir: Path, service: Callable[..., svc.Service],
                                         runtime_dir: str) -> None:
    """A valid MPEG-TS file whose timestamps jump +1 h after its first segment, looped in real
    time: the camera goes on delivering every frame at the file's rate across the jump (a
    STRICT_ORDER subscriber reads two whole passes: barcodes consecutive, no pause), the jump is
    logged once with its size, and the loop's start-over is not taken for a jump. Before the
    fix the pacing slept towards the far-future timestamp: no frame for an hour while the
    status said streaming."""
    path = media.make_ts_jump(media_dir)
    fps, half = media.JUMP_FPS, media.JUMP_FRAMES
    s = service({"j": {"url": str(path), "loop": True, "realtime": True,
                       "stall_timeout": "3s"}})
    s.wait_state("j", "streaming", 20)
    codes: list[int] = []
    times: list[int] = []
    with cuframes.subscribe("cam-j", consumer_name="jump", mode=STRICT,
                            connect_timeout_ms=10000, runtime_dir=runtime_dir) as sub:
        # Two passes and a bit: the jump (barcode half-1 -> half) is crossed at least twice,
        # and so is the loop's start-over (2*half-1 -> 0).
        for _ in range(4 * half + 10):
            try:
                f = sub.next_frame(timeout_ms=4000)
            except cuframes.CuframesFrameTimeout:
                raise AssertionError(f"no frame for 4 s after barcode {codes[-1:]} (the jump "
                                     f"is after {half - 1})\n{s.describe()}") from None
            with f:
                y, _ = svc.planes(f)
                n = pattern.read_barcode(y)
                assert n is not None, f"seq {f.seq}: no valid barcode"
                codes.append(n)
                times.append(f.publish_ns)
    steps = [(b - a) % (2 * half) for a, b in zip(codes, codes[1:])]
    assert all(d == 1 for d in steps), f"barcodes do not advance by one: {codes}"
    crossings = [i for i, (a, b) in enumerate(zip(codes, codes[1:])) if (a, b) == (half - 1, half)]
    assert len(crossings) >= 2, codes
    gaps = [(b - a) / 1e9 for a, b in zip(times, times[1:])]
    worst = max(gaps)
    assert worst < SLACK_S, (f"a pause of {worst:.2f} s between frames (at barcode "
                             f"{codes[gaps.index(worst)]}): the jump stalled the pacing")
    # Still paced after the jumps: not faster than the file's rate.
    elapsed = (times[-1] - times[0]) / 1e9
    assert elapsed >= 0.8 * (len(times) - 1) / fps, f"{len(times)} frames in {elapsed:.2f} s"
    cam = s.camera("j")
    assert cam is not None and cam["state"] == "streaming", s.describe()
    assert 0.5 * fps <= cam["fps"] <= 2 * fps, cam

    jumps = [ln for ln in _camera_lines(s, "j") if "timestamp" in ln and "jump" in ln]
    assert jumps, f"the jump was not logged\n{s.log_tail()}"
    assert "3600" in jumps[0] and "forward" in jumps[0], jumps[0]
    # Logged once: the second pass's jump (same cause) is held back and counted, and the
    # loop's start-over (timestamps back to the file's start) is no jump.
    assert len(jumps) == 1, "\n".join(jumps)
    assert not [ln for ln in jumps if "back" in ln], jumps


# ---- a raw Annex B file ------------------------------------------------------------------

@pytest.mark.parametrize("codec,fps_key,want_fps", [("h264", None, media.RAW_FPS),
                                                    ("hevc", 10, 10)],
                         ids=["h264-rate-in-sps", "hevc-rate-from-fps-key"])
def test_raw_stream_is_paced(codec: str, fps_key: Optional[int], want_fps: float,
                             media_dir: Path, service: Callable[..., svc.Service],
                             runtime_dir: str) -> None:
    """A raw Annex B file has no timestamps: it is paced at its frame rate (the H.264 one's
    SPS says 15 fps; the HEVC one says nothing, so the camera's `fps` key, 10, applies), not
    decoded flat out: its frame rate stays below twice that, the service's CPU is far from a
    core, and looping over it does not log a line per pass."""
    path = media.make_raw(media_dir, codec)
    cam_cfg: dict[str, Any] = {"url": str(path), "loop": True, "realtime": True}
    if fps_key is not None:
        cam_cfg["fps"] = fps_key
    s = service({"r": cam_cfg})
    cam = s.wait_state("r", "streaming", 20)
    assert cam["codec"] == codec, cam
    # Measure over two passes of the file.
    line0 = len(_log_lines(s))
    t0, cpu0, frames0 = time.monotonic(), _cpu_s(s.pid), cam["frames"]
    cam = s.wait_camera("r", lambda c: c["frames"] >= frames0 + 2 * media.RAW_FRAMES,
                        4 * media.RAW_FRAMES / want_fps + 10, "two passes of the file")
    t1, cpu1 = time.monotonic(), _cpu_s(s.pid)
    rate = (cam["frames"] - frames0) / (t1 - t0)
    cpu = (cpu1 - cpu0) / (t1 - t0)
    print(f"{codec}: {rate:.1f} fps (want {want_fps}), status fps {cam['fps']}, "
          f"CPU {100 * cpu:.0f}% of a core")
    assert rate < 2 * want_fps, f"{rate:.0f} fps: not paced at {want_fps} fps\n{s.describe()}"
    assert rate > 0.5 * want_fps, f"{rate:.1f} fps: too slow for {want_fps} fps\n{s.describe()}"
    assert 0.5 * want_fps <= cam["fps"] <= 2 * want_fps, cam
    assert cpu < 0.5, f"the service used {100 * cpu:.0f}% of a core for {want_fps} fps"
    assert cam["state"] == "streaming" and cam["reconnects"] == 0, cam
    noisy = _camera_lines(s, "r", since=line0)
    assert len(noisy) <= 2, "log lines during two passes:\n" + "\n".join(noisy[:20])


def test_fps_key_refused_on_network_cameras(workdir: Path, runtime_dir: str) -> None:
    """`fps` is the rate of testsrc and of files without timestamps; a network camera keeps
    its stream's rate, so it is an error there (width and height stay testsrc's)."""
    cfg = svc.write_config(workdir / "c.yaml", {"n": {"url": "rtsp://127.0.0.1:1/x", "fps": 10}},
                           runtime_dir)
    r = svc.run_service(["--config", str(cfg), "--check-config"])
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "cameras.n.fps" in r.stderr and "testsrc:// cameras and files" in r.stderr, r.stderr
    cfg = svc.write_config(workdir / "f.yaml", {"f": {"url": "/x.mp4", "width": 320}},
                           runtime_dir)
    r = svc.run_service(["--config", str(cfg), "--check-config"])
    assert r.returncode == 2 and "cameras.f.width" in r.stderr, (r.returncode, r.stderr)


# ---- frames stop reaching the ring -------------------------------------------------------

def test_stalled_and_fps_zero_when_frames_stop(broker: Callable[..., mh.Broker],
                                               collector: Callable[..., mh.Collector],
                                               service: Callable[..., svc.Service],
                                               runtime_dir: str) -> None:
    """A subscriber holds both slots of a STRICT_WAIT ring: the camera's thread blocks in
    publish (the ring is what stops it: no watchdog of the source can see it). Within
    stall_timeout + one report interval of the last frame published, the status file and the
    MQTT state say `stalled`, fps 0, connected false; released, the camera streams again."""
    stall_s, status_s, stats_s = 2.0, 0.2, 0.5
    b = broker()
    col = collector(b)
    base = "cuframes/health"
    s = service({"cam": {"url": "testsrc://?width=320&height=240&fps=30", "slots": 2,
                         "policy": "strict_wait", "wait_timeout": "30s",
                         "stall_timeout": f"{int(stall_s * 1000)}ms"}},
                mqtt={"host": "127.0.0.1", "port": b.port, "node_id": "health",
                      "stats_interval": f"{int(stats_s * 1000)}ms"},
                status_interval=f"{int(status_s * 1000)}ms")
    cam = s.wait_camera("cam", lambda c: c["state"] == "streaming" and c["fps"] > 10, 15,
                        "streaming at its rate")
    col.wait_msg(f"{base}/cam/state", lambda m: (m.obj() or {}).get("state") == "streaming",
                 timeout=15, what="streaming", detail=s.describe)
    held = []
    with cuframes.subscribe("cam-cam", consumer_name="hog", mode=NEWEST,
                            connect_timeout_ms=5000, runtime_dir=runtime_dir) as sub:
        try:
            held.append(sub.next_frame(timeout_ms=3000))
            held.append(sub.next_frame(timeout_ms=3000))
            # Both slots held: nothing more can be published. The newest held frame is the
            # last one.
            assert sub.ring_occupancy == 2, sub.ring_occupancy
            last_ns = max(f.publish_ns for f in held)
            mark = col.mark()
            deadline_s = last_ns / 1e9 + stall_s + SLACK_S

            def stalled_in_file() -> Optional[dict[str, Any]]:
                c = s.camera("cam")
                return c if c and c["state"] == "stalled" and c["fps"] == 0 else None
            cam = svc.wait_for(stalled_in_file, deadline_s + status_s - time.monotonic(),
                               "stalled with fps 0 in the status file", s.describe)
            seen_s = time.monotonic() - last_ns / 1e9
            assert cam["last_frame_age_ms"] >= stall_s * 1000, cam
            assert "no frame" in cam["error"], cam
            msg = col.wait_msg(
                f"{base}/cam/state",
                lambda m: (m.obj() or {}).get("state") == "stalled",
                since=mark, timeout=max(deadline_s + stats_s - time.monotonic(), 0.1),
                what="stalled", detail=s.describe)
            o = msg.obj()
            assert o["fps"] == 0 and o["connected"] is False, o
            mqtt_s = msg.t - last_ns / 1e9
            print(f"stalled in the status file {seen_s:.2f} s and on MQTT {mqtt_s:.2f} s after "
                  f"the last frame (stall_timeout {stall_s} s)")
            # The camera itself goes on: still blocked, not reconnecting.
            assert cam["reconnects"] == 0, cam
        finally:
            for f in held:
                f.release()
        # Frames flow again: streaming, with a rate.
        s.wait_camera("cam", lambda c: c["state"] == "streaming" and c["fps"] > 0, 10,
                      "streaming again")
        col.wait_msg(f"{base}/cam/state", lambda m: (m.obj() or {}).get("state") == "streaming",
                     since=mark, timeout=10, what="streaming again", detail=s.describe)
    warned = [ln for ln in _camera_lines(s, "cam") if "no frame" in ln]
    assert len(warned) == 1, warned
