"""File cameras: FFmpeg-made clips (H.264 1280x720, HEVC 2688x1520, 10-bit HEVC) decoded into
the ring and verified frame by frame through pattern.py's barcode, box and background."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import cuframes

import media
import pattern
import svc

STRICT = cuframes.SubscriberMode.STRICT_ORDER
CLIPS = list(media.CLIPS)


@pytest.mark.parametrize("name", CLIPS)
def test_file_decoded_and_verified(name: str, clip: Callable[[str], tuple[media.Clip, Path]],
                                   service: Callable[..., svc.Service],
                                   runtime_dir: str) -> None:
    """loop: true, realtime: true. A STRICT_ORDER subscriber reads more than a whole loop: every
    frame is the clip's next one (barcode + 1, wrapping to 0 at the end of the clip), its
    picture is that frame's (box, chroma, background), its geometry and format are the clip's,
    and pacing is real time."""
    c, path = clip(name)
    s = service({"f": {"url": str(path), "loop": True, "realtime": True,
                       "stall_timeout": "5s"}})
    with cuframes.subscribe("cam-f", consumer_name="verifier", mode=STRICT,
                            connect_timeout_ms=20000, runtime_dir=runtime_dir) as sub:
        fmt = cuframes.PixelFormat.P010 if c.bit_depth > 8 else cuframes.PixelFormat.NV12
        assert (sub.width, sub.height, sub.format) == (c.width, c.height, fmt)
        codes: list[int] = []
        seqs: list[int] = []
        t0 = None
        for _ in range(c.frames + 10):
            with sub.next_frame(timeout_ms=5000) as f:
                if t0 is None:
                    t0 = f.publish_ns
                assert (f.width, f.height, f.format) == (c.width, c.height, fmt)
                y, uv = svc.planes(f)
                assert y.dtype == (np.uint16 if c.bit_depth > 8 else np.uint8)
                n = pattern.read_barcode(y)
                assert n is not None, f"seq {f.seq}: no valid barcode"
                problem = pattern.check_picture(y, uv, n, noisy=True)
                assert problem is None, f"seq {f.seq} (frame {n}): {problem}"
                if c.bit_depth > 8:
                    # P010: 10 significant bits at the top, the low 6 bits zero.
                    assert not np.any(y[:64] & 0x3F), "P010 low bits not zero"
                codes.append(n)
                seqs.append(f.seq)
                t1 = f.publish_ns
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"seqs not consecutive: {seqs}"
        steps = [(b - a) % c.frames for a, b in zip(codes, codes[1:])]
        assert all(d == 1 for d in steps), f"barcodes do not advance by one: {codes}"
        assert set(codes) == set(range(c.frames)), "not every frame of the clip was seen"
        assert sub.overruns == 0
    # Real-time pacing: these frames cannot have come faster than the clip's rate.
    assert t0 is not None
    elapsed = (t1 - t0) / 1e9
    assert elapsed >= 0.8 * (len(codes) - 1) / c.fps, f"{len(codes)} frames in {elapsed:.2f} s"

    cam = s.wait_camera("f", lambda x: x.get("frames", 0) >= c.frames, 5, "frames counted")
    assert cam["state"] == "streaming", cam
    assert cam["codec"] == c.codec, cam
    svc.check_decoder(cam)
    assert (cam["width"], cam["height"], cam["format"]) == (c.width, c.height, c.format), cam
    assert cam["memory"] == "host", cam
    assert cam["decode_errors"] == 0, cam


def test_file_once_flat_out(clip: Callable[[str], tuple[media.Clip, Path]],
                            service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """loop: false, realtime: false: the whole clip is decoded as fast as possible, every frame
    counted, and the camera ends in state stopped; the service keeps running."""
    c, path = clip("h264-1280x720")
    s = service({"once": {"url": f"file://{path}", "loop": False, "realtime": False},
                 "ts": {"url": "testsrc://?width=320&height=240&fps=10"}})
    t = time.monotonic()
    cam = s.wait_state("once", "stopped", 30)
    assert cam["frames"] == c.frames, f"{cam['frames']} frames decoded, the clip has {c.frames}"
    assert cam["decode_errors"] == 0 and cam["dropped"] == 0, cam
    assert time.monotonic() - t < c.frames / c.fps + 20
    s.wait_state("ts", "streaming", 5)
    s.assert_running()


def test_corrupt_file_counts_decode_errors(clip: Callable[[str], tuple[media.Clip, Path]],
                                           service: Callable[..., svc.Service],
                                           workdir: Path, runtime_dir: str) -> None:
    """A clip with damaged packets: decode errors are counted, the service neither crashes nor
    stops the other camera."""
    c, path = clip("h264-1280x720")
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(7)
    # Damage the media data (not the header / moov at the front: faststart), many places.
    start = len(data) // 5
    for off in rng.integers(start, len(data) - 64, size=200):
        data[off:off + 16] = rng.integers(0, 256, size=16, dtype=np.uint8).tobytes()
    bad = workdir / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    s = service({"bad": {"url": str(bad), "loop": False, "realtime": False},
                 "ts": {"url": "testsrc://?width=320&height=240&fps=10"}})
    cam = s.wait_camera("bad", lambda x: x["state"] in ("stopped", "error"), 60,
                        "the corrupt clip to end")
    assert cam["decode_errors"] > 0, cam
    s.wait_state("ts", "streaming", 5)
    with cuframes.subscribe("cam-ts", connect_timeout_ms=5000, runtime_dir=runtime_dir) as sub:
        with sub.next_frame(timeout_ms=3000) as f:
            svc.check_testsrc_frame(f, 320, 240)
    s.assert_running()


def test_packet_ring_from_demuxer(clip: Callable[[str], tuple[media.Clip, Path]],
                                  service: Callable[..., svc.Service], workdir: Path,
                                  runtime_dir: str) -> None:
    """The camera's packet ring carries the demuxer's packets (codec parameters, key frames);
    `packet_ring: off` has none, and neither has testsrc (no packets to carry): a packet reader
    is told so at once, by key. Also: a relative file path resolves against the config's
    directory, and `decoder: software` is honoured."""
    c, path = clip("h264-1280x720")
    (workdir / "clips").mkdir()
    (workdir / "clips" / path.name).symlink_to(path)
    s = service({"pk": {"url": f"clips/{path.name}", "packet_ring": "1MiB",
                        "decoder": "software"},
                 "nopk": {"url": f"clips/{path.name}", "packet_ring": "off",
                          "decoder": "software"},
                 "ts": {"url": "testsrc://?width=320&height=240&fps=10"}})
    cam = s.wait_state("pk", "streaming", 20)
    assert cam["decoder"] == "software", cam
    assert cam["url"].endswith(f"clips/{path.name}") and cam["url"].startswith("/"), cam["url"]
    with cuframes.subscribe_packets("cam-pk", connect_timeout_ms=5000,
                                    runtime_dir=runtime_dir) as reader:
        pkts = [reader.next_packet(timeout_ms=5000) for _ in range(c.frames)]
        params = reader.codec
        assert params is not None
        assert (params.codec, params.width, params.height) == ("h264", c.width, c.height)
        assert len(params.extradata) > 0
        seqs = [p.seq for p in pkts]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        assert sum(p.keyframe for p in pkts) >= 2, [p.keyframe for p in pkts]
        assert all(len(p) > 0 for p in pkts)
        assert reader.stats()["gaps"] == 0
    for name in ("nopk", "ts"):
        s.wait_state(name, "streaming", 10)
        key = f"cam-{name}"
        assert cuframes.observe(key, runtime_dir=runtime_dir)["has_packet_ring"] is False
        with pytest.raises(cuframes.CuframesInvalidArgument,
                           match=f"^read packets of '{key}': publisher refused: publisher '{key}' "
                           "has no packet ring$"):
            cuframes.subscribe_packets(key, connect_timeout_ms=5000, runtime_dir=runtime_dir)


def test_loop_starts_over_in_place_until_the_file_is_replaced(
        clip: Callable[[str], tuple[media.Clip, Path]], service: Callable[..., svc.Service],
        workdir: Path, runtime_dir: str) -> None:
    """A looping file starts over in place (a seek, the decoder kept: no new open) while it is
    the file that was opened. Replaced at its path (a new inode), it is opened again at the end
    of the pass, without a reconnect or a state change, and a STRICT_ORDER subscriber reading
    across all of it sees every frame, in order, with the clip's barcodes wrapping."""
    c, path = clip("h264-1280x720")
    live = workdir / "looping.mp4"
    live.write_bytes(path.read_bytes())
    s = service({"loop": {"url": str(live), "loop": True, "realtime": False,
                          "slots": 8, "policy": "strict_wait"}})
    starts_over = "starting over in place"
    opens_again = "opening it again"

    def log() -> str:
        return s.log_path.read_text(errors="replace")

    with cuframes.subscribe("cam-loop", consumer_name="looper", mode=STRICT,
                            connect_timeout_ms=20000, runtime_dir=runtime_dir) as sub:
        codes: list[int] = []
        seqs: list[int] = []

        def read(n: int) -> None:
            for _ in range(n):
                with sub.next_frame(timeout_ms=10000) as f:
                    y, _ = svc.planes(f)
                    code = pattern.read_barcode(y)
                    assert code is not None, f"seq {f.seq}: no valid barcode"
                    codes.append(code)
                    seqs.append(f.seq)

        read(2 * c.frames + 5)  # two ends of the file passed (the first is logged at info)
        assert starts_over in log(), log()[-3000:]
        assert opens_again not in log()
        replacement = workdir / "replacement.mp4"
        replacement.write_bytes(path.read_bytes())
        replacement.replace(live)  # a new inode at the path
        deadline = time.monotonic() + 30
        while opens_again not in log():  # reading on: STRICT_WAIT would hold the service
            assert time.monotonic() < deadline, f"not opened again\n{s.log_tail()}"
            read(1)
        read(c.frames + 5)  # frames of the new open too
        assert "end of file (the file at the path changed or is gone): opening it again" in log()
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seqs not consecutive"
        steps = [(b - a) % c.frames for a, b in zip(codes, codes[1:])]
        assert all(d == 1 for d in steps), f"barcodes do not advance by one: {codes}"
    cam = s.camera("loop")
    assert cam is not None and cam["state"] == "streaming", s.describe()
    assert cam["reconnects"] == 0, cam
    assert cam["decode_errors"] == 0, cam
    s.assert_running()


def test_file_removed_while_running(clip: Callable[[str], tuple[media.Clip, Path]],
                                    service: Callable[..., svc.Service], workdir: Path,
                                    runtime_dir: str) -> None:
    """A looping file camera whose file is deleted: at the end of the clip it cannot reopen:
    error (or retrying), with the other camera streaming and the service running."""
    c, path = clip("h264-1280x720")
    copy = workdir / "vanishing.mp4"
    copy.write_bytes(path.read_bytes())
    s = service({"vanish": {"url": str(copy), "loop": True, "realtime": False,
                            "reconnect": {"initial": "200ms", "max": "500ms"}},
                 "ts": {"url": "testsrc://?width=320&height=240&fps=30"}})
    s.wait_state("vanish", "streaming", 20)
    copy.unlink()
    cam = s.wait_camera("vanish", lambda x: (x["state"] == "error" and x["error"])
                        or x["reconnects"] >= 2, 20, "error after the file went away")
    assert cam["state"] in ("error", "connecting"), cam
    with cuframes.subscribe("cam-ts", mode=STRICT, connect_timeout_ms=5000,
                            runtime_dir=runtime_dir) as sub:
        seqs = []
        for _ in range(20):
            with sub.next_frame(timeout_ms=3000) as f:
                svc.check_testsrc_frame(f, 320, 240)
                seqs.append(f.seq)
        assert seqs == list(range(seqs[0], seqs[0] + 20))
    s.assert_running()


def test_colour_description_from_the_stream(service: Callable[..., svc.Service], workdir: Path,
                                            runtime_dir: str) -> None:
    """Frames carry the stream's colour description (its VUI) as the service decoded it: a
    full-range BT.709 H.264 clip (decoded as yuvj420p, whose samples stay full range on the way
    to NV12: white is Y 255 and the frames say full) and a limited-range BT.2020 10-bit HEVC clip
    (P010, white Y 940)."""
    clips = {
        "hd709": ("libx264", "yuvj420p", "bt709", "pc", ()),
        "uhd2020": ("libx265", "yuv420p10le", "bt2020nc", "tv",
                    ("-x265-params", "log-level=error", "-tag:v", "hvc1")),
    }
    cams = {}
    for name, (codec, pix, matrix, rng, extra) in clips.items():
        path = workdir / f"{name}.mp4"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                        "-f", "lavfi", "-i", "color=c=white:size=320x240:rate=10:duration=1",
                        "-c:v", codec, "-pix_fmt", pix, "-colorspace", matrix,
                        "-color_range", rng, *extra, "-an", str(path)], check=True, timeout=120)
        cams[name] = {"url": str(path), "loop": True, "decoder": "software"}
    service(cams)
    want = {"hd709": (cuframes.ColorMatrix.BT709, cuframes.ColorRange.FULL, 255),
            "uhd2020": (cuframes.ColorMatrix.BT2020, cuframes.ColorRange.LIMITED, 940)}
    for name, (matrix, rng, white) in want.items():
        with cuframes.subscribe(f"cam-{name}", connect_timeout_ms=20000,
                                runtime_dir=runtime_dir) as sub:
            with sub.next_frame(timeout_ms=10000) as f:
                assert (f.color_matrix, f.color_range) == (matrix, rng), name
                y, _ = svc.planes(f)
                level = int(np.median(y)) >> (6 if f.format == cuframes.PixelFormat.P010 else 0)
                assert abs(level - white) <= 2, (name, level)


def test_mjpeg_keeps_full_range_without_swscale_warnings(
        media_dir: Path, service: Callable[..., svc.Service], runtime_dir: str) -> None:
    """An MJPEG camera (JFIF: full-range BT.601, which FFmpeg decodes as the deprecated
    yuvj420p) in software: every frame keeps the JPEG's samples, full range (Y 5 and 250 stay
    outside 16..235, the chroma band keeps U 30 V 225), and says so (BT.601, FULL); and swscale
    logs no "deprecated pixel format used" (it did once per frame)."""
    path = media.make_mjpeg(media_dir)
    s = service({"mj": {"url": str(path), "decoder": "software"}}, log_level="debug")
    with cuframes.subscribe("cam-mj", mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=20000, runtime_dir=runtime_dir) as sub:
        for _ in range(media.MJPEG_FRAMES + 5):  # the whole clip, and into its second pass
            with sub.next_frame(timeout_ms=10000) as f:
                assert (f.width, f.height, f.format) == (320, 240, cuframes.PixelFormat.NV12)
                assert (f.color_matrix, f.color_range) == (cuframes.ColorMatrix.BT601,
                                                           cuframes.ColorRange.FULL), f.seq
                y, uv = svc.planes(f)
                for i, (want_y, want_u, want_v) in enumerate(media.MJPEG_BANDS):
                    got = (int(np.median(y[:, i * 80 + 8:i * 80 + 72])),
                           int(np.median(uv[:, i * 80 + 8:i * 80 + 72:2])),
                           int(np.median(uv[:, i * 80 + 9:i * 80 + 72:2])))
                    assert all(abs(g - w) <= 2 for g, w in zip(got, (want_y, want_u, want_v))), (
                        f"frame {f.seq} band {i}: Y U V {got}, want {(want_y, want_u, want_v)}")
    cam = s.camera("mj")
    assert cam is not None and cam["codec"] == "mjpeg" and cam["decoder"] == "software", cam
    assert s.stop() == 0
    log = s.log_path.read_text(errors="replace")
    assert "deprecated pixel format" not in log, s.log_tail()
    assert "end of file after 30 frames" in log, s.log_tail()  # the clip was looped once
