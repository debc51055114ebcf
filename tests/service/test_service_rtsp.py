"""RTSP cameras against a real gst-rtsp-server (rtsp_server.py): frames verified (geometry,
barcode advancing by one, picture); the server SIGKILLed: the camera goes stalled/connecting;
the server restarted on the same port: the camera streams again by itself and the same
subscriber (the ring outlives reconnects) gets verified frames again."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

import cuframes

import pattern
import svc

STRICT = cuframes.SubscriberMode.STRICT_ORDER
STALL_S = 2.0
MARGIN_S = 1.5  # status polling, scheduling on a loaded 2-core runner
MOUNTS = {"h264": ("/h264", 640, 480), "hevc": ("/hevc", 552, 314)}

pytestmark = pytest.mark.rtsp

# FFmpeg probes a stream before the first frame (0.5 s for live streams) and the service then
# publishes the probed frames at once: a burst of frames at every (re)connect. A STRICT_ORDER reader
# that verifies frames cannot keep up with a burst, so the verified cameras use strict_wait
# (the ring waits for its STRICT_ORDER subscribers) with a ring larger than the burst.
VERIFIED = {"policy": "strict_wait", "slots": 8}


def _read_run(sub: Any, count: int, width: int, height: int,
              timeout_ms: int = 5000) -> tuple[list[int], list[int]]:
    """count frames in STRICT_ORDER, each verified; returns (seqs, barcodes)."""
    seqs: list[int] = []
    codes: list[int] = []
    for _ in range(count):
        with sub.next_frame(timeout_ms=timeout_ms) as f:
            assert (f.width, f.height, f.format) == (width, height,
                                                     cuframes.PixelFormat.NV12)
            y, uv = svc.planes(f)
            n = pattern.read_barcode(y)
            assert n is not None, f"seq {f.seq}: no valid barcode"
            problem = pattern.check_picture(y, uv, n)
            assert problem is None, f"seq {f.seq} (frame {n}): {problem}"
            seqs.append(f.seq)
            codes.append(n)
    assert seqs == list(range(seqs[0], seqs[0] + count)), f"seqs not consecutive: {seqs}"
    assert all(b - a == 1 for a, b in zip(codes, codes[1:])), f"barcode steps: {codes}"
    return seqs, codes


def _drain(sub: Any, last_seq: int) -> None:
    """Reads what the ring still holds from before an outage, until a wait times out (the
    outage: no new frames). PUBLISHER_GONE here fails the test: the ring outlives reconnects."""
    for _ in range(200):
        try:
            with sub.next_frame(timeout_ms=500) as f:
                assert f.seq > last_seq
                last_seq = f.seq
        except cuframes.CuframesFrameTimeout:
            return
    raise AssertionError("frames kept coming during the outage")


@pytest.mark.parametrize("codec", list(MOUNTS))
def test_rtsp_stream_kill_and_recover(codec: str, rtsp_server: Callable[..., svc.RtspServer],
                                      service: Callable[..., svc.Service],
                                      runtime_dir: str) -> None:
    mount, w, h = MOUNTS[codec]
    srv = rtsp_server([f"{mount}={codec}:{w}x{h}"], fps=15, gop=15)
    s = service({"cam": {**VERIFIED, "url": srv.url(mount), "stall_timeout": f"{STALL_S}s",
                         "open_timeout": "2s", "reconnect": {"initial": "250ms", "max": "1s"},
                         "rtsp_transport": "tcp"}})
    cam = s.wait_state("cam", "streaming", 20)
    with cuframes.subscribe("cam-cam", consumer_name="verifier", mode=STRICT,
                            connect_timeout_ms=10000, runtime_dir=runtime_dir) as sub:
        assert (sub.width, sub.height) == (w, h)
        seqs1, _ = _read_run(sub, 30, w, h)
        now = s.camera("cam")
        assert now is not None
        cam = now
        assert cam["codec"] == codec, cam
        svc.check_decoder(cam)
        assert (cam["width"], cam["height"], cam["format"]) == (w, h, "NV12"), cam
        assert cam["url"] == srv.url(mount), cam
        reconnects0 = cam["reconnects"]

        # The server dies: the camera notices within stall_timeout + margin.
        srv.kill()
        t_kill = time.monotonic()
        down = s.wait_state("cam", {"stalled", "connecting", "error"}, STALL_S + MARGIN_S)
        t_down = time.monotonic() - t_kill
        # Meanwhile the subscriber just waits (no PUBLISHER_GONE: the ring stays).
        _drain(sub, seqs1[-1])

        # Back on the same port: the camera reconnects by itself.
        srv.start()
        up = s.wait_camera("cam", lambda c: c["state"] == "streaming"
                           and c["reconnects"] > reconnects0, 20,
                           "streaming again after the server came back")
        seqs2, codes2 = _read_run(sub, 20, w, h, timeout_ms=10000)
        assert seqs2[0] > seqs1[-1]
        assert sub.overruns == 0
    print(f"{codec}: down after {t_down:.2f} s as {down['state']}; "
          f"states seen {s.states_seen['cam']}; reconnects {up['reconnects']}")
    s.assert_running()


def test_rtsp_two_cameras_one_server_dies(rtsp_server: Callable[..., svc.RtspServer],
                                          service: Callable[..., svc.Service],
                                          runtime_dir: str) -> None:
    """Two RTSP cameras on two servers: one server is killed, the other camera keeps
    streaming undisturbed (consecutive seqs, advancing barcodes)."""
    a = rtsp_server(["/h264=h264:640x480"])
    b = rtsp_server(["/hevc=hevc:552x314"])
    s = service({"a": {**VERIFIED, "url": a.url("/h264"), "stall_timeout": f"{STALL_S}s",
                       "reconnect": {"initial": "250ms", "max": "1s"}},
                 "b": {"url": b.url("/hevc"), "stall_timeout": f"{STALL_S}s",
                       "reconnect": {"initial": "250ms", "max": "1s"}}})
    s.wait_state("a", "streaming", 20)
    s.wait_state("b", "streaming", 20)
    with cuframes.subscribe("cam-a", mode=STRICT, connect_timeout_ms=10000,
                            runtime_dir=runtime_dir) as sub:
        _read_run(sub, 10, 640, 480)
        b.kill()
        s.wait_state("b", {"stalled", "connecting", "error"}, STALL_S + MARGIN_S)
        # a goes on through b's outage and retries: 2 * stall_timeout of frames.
        _read_run(sub, int(15 * 2 * STALL_S), 640, 480)
        cam_a = s.camera("a")
        assert cam_a is not None and cam_a["state"] == "streaming", cam_a
        assert cam_a["reconnects"] == 0, cam_a
    s.assert_running()


def test_rtsp_status_fps(rtsp_server: Callable[..., svc.RtspServer],
                         service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """The status file's fps of a live 15 fps camera, once it has streamed for 100 frames (the
    probe burst is ~30 of them: 4+ s of live frames), is about 15, not skewed by the burst."""
    srv = rtsp_server(["/h264=h264:640x480"], fps=15)
    s = service({"cam": {"url": srv.url("/h264")}})
    s.wait_state("cam", "streaming", 20)
    cam = s.wait_camera("cam", lambda c: c["frames"] >= 100, 15, "100 frames")
    assert 10 <= cam["fps"] <= 20, f"fps {cam['fps']} for a 15 fps stream: {cam}"


def test_rtsp_udp(rtsp_server: Callable[..., svc.RtspServer],
                  service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """rtsp_transport: udp: frames arrive with the right geometry and picture (UDP may lose a
    packet on a loaded machine, so frames are checked one by one, not for continuity)."""
    srv = rtsp_server(["/h264=h264:640x480"])
    s = service({"cam": {"url": srv.url("/h264"), "rtsp_transport": "udp"}})
    s.wait_state("cam", "streaming", 20)
    with cuframes.subscribe("cam-cam", connect_timeout_ms=10000, runtime_dir=runtime_dir) as sub:
        codes = []
        for _ in range(20):
            with sub.next_frame(timeout_ms=5000) as f:
                assert (f.width, f.height) == (640, 480)
                y, uv = svc.planes(f)
                n = pattern.read_barcode(y)
                assert n is not None, f"seq {f.seq}: no valid barcode"
                assert pattern.check_picture(y, uv, n) is None
                codes.append(n)
        assert codes == sorted(codes) and codes[-1] > codes[0], codes
    s.assert_running()


def test_rtsp_server_freezes(rtsp_server: Callable[..., svc.RtspServer],
                             service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """The server freezes (SIGSTOP: the TCP connection stays open, nothing arrives): the
    watchdog declares the camera stalled after stall_timeout; after the frozen server is
    replaced on the same port the camera streams again and the subscriber gets frames."""
    srv = rtsp_server(["/h264=h264:640x480"])
    s = service({"cam": {**VERIFIED, "url": srv.url("/h264"), "stall_timeout": f"{STALL_S}s",
                         "open_timeout": "2s", "reconnect": {"initial": "250ms", "max": "1s"}}})
    s.wait_state("cam", "streaming", 20)
    with cuframes.subscribe("cam-cam", mode=STRICT, connect_timeout_ms=10000,
                            runtime_dir=runtime_dir) as sub:
        seqs1, _ = _read_run(sub, 30, 640, 480)
        srv.freeze()
        t = time.monotonic()
        down = s.wait_state("cam", {"stalled", "connecting", "error"}, STALL_S + MARGIN_S)
        took = time.monotonic() - t
        _drain(sub, seqs1[-1])
        srv.kill()
        srv.start()
        s.wait_camera("cam", lambda c: c["state"] == "streaming" and c["reconnects"] >= 1, 20,
                      "streaming again")
        seqs2, _ = _read_run(sub, 20, 640, 480, timeout_ms=10000)
        assert seqs2[0] > seqs1[-1]
    print(f"frozen server: {down['state']} after {took:.2f} s (stall_timeout {STALL_S} s); "
          f"states seen {s.states_seen['cam']}")
    s.assert_running()


def test_rtsp_video_freezes_audio_goes_on(rtsp_server: Callable[..., svc.RtspServer],
                                          service: Callable[..., svc.Service],
                                          runtime_dir: str) -> None:
    """A camera whose picture stops while its RTSP session (and audio track) stays alive: no
    video for stall_timeout must make it stalled and reconnect (the watchdog watches video
    packets, not audio); the new session streams again."""
    srv = rtsp_server(["/cam=h264:640x480,audio,video_for=4"])
    s = service({"cam": {**VERIFIED, "url": srv.url("/cam"), "stall_timeout": f"{STALL_S}s",
                         "open_timeout": "3s", "reconnect": {"initial": "250ms", "max": "1s"}}})
    s.wait_state("cam", "streaming", 20)
    with cuframes.subscribe("cam-cam", mode=STRICT, connect_timeout_ms=10000,
                            runtime_dir=runtime_dir) as sub:
        # Read until the picture stops (frames 0..59 of the session).
        last_ns = 0
        for _ in range(200):
            try:
                with sub.next_frame(timeout_ms=1000) as f:
                    last_ns = f.publish_ns
            except cuframes.CuframesFrameTimeout:
                break
        assert last_ns, "no frames"
        down = s.wait_state("cam", {"stalled", "connecting", "error"},
                            STALL_S + MARGIN_S - (cuframes.now_ns() - last_ns) / 1e9)
        took = (cuframes.now_ns() - last_ns) / 1e9
        s.wait_camera("cam", lambda c: c["state"] == "streaming" and c["reconnects"] >= 1, 20,
                      "streaming again")
        _read_run(sub, 10, 640, 480, timeout_ms=10000)
    print(f"picture frozen: {down['state']} {took:.2f} s after the last frame; "
          f"states seen {s.states_seen['cam']}")
    s.assert_running()
