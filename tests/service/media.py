"""Test clips for the service, made with the ffmpeg CLI from frames drawn with numpy (piped as
rawvideo): pattern.py's picture (frame-index barcode, moving box, moving sawtooth) plus noise,
so each decoded frame tells which source frame it is.

    python3 tests/service/media.py OUT_DIR [NAME ...]   # writes the clips, prints their paths

Clips are made once per directory (kept if already there: the test session's media fixture
makes them once per session, or once for good with CUFRAMES_TEST_MEDIA_DIR).

NAME `bench` (not made unless named) is bench/service_bench.py's clip, bench-1080p30.mp4: 10 s of
FFmpeg's testsrc2 at 1920x1080 and 30 fps with temporal noise, H.264 High as a 1080p IP camera
sends it (no B-frames, a keyframe at least every 2 s, 5 Mbit/s average, 6 Mbit/s peak).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pattern  # noqa: E402


@dataclass(frozen=True)
class Clip:
    name: str
    codec: str          # what ffprobe / the service report: "h264", "hevc"
    width: int
    height: int
    bit_depth: int      # 8 -> NV12 out of the service, 10 -> P010
    fps: int
    frames: int
    encoder_args: tuple[str, ...]

    @property
    def filename(self) -> str:
        return f"{self.name}.mp4"

    @property
    def format(self) -> str:
        return "P010" if self.bit_depth > 8 else "NV12"


# Small and short: CI has 2 cores. B-frames stay on where the encoder's defaults have them (the
# decoder's reordering is part of what is tested).
CLIPS = {c.name: c for c in (
    Clip("h264-1280x720", "h264", 1280, 720, 8, 15, 45,
         ("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "15",
          "-pix_fmt", "yuv420p")),
    Clip("hevc-2688x1520", "hevc", 2688, 1520, 8, 15, 30,
         ("-c:v", "libx265", "-preset", "ultrafast", "-crf", "26", "-pix_fmt", "yuv420p",
          "-x265-params", "keyint=15:log-level=error", "-tag:v", "hvc1")),
    Clip("hevc10-1280x720", "hevc", 1280, 720, 10, 15, 30,
         ("-c:v", "libx265", "-preset", "ultrafast", "-crf", "24", "-pix_fmt", "yuv420p10le",
          "-profile:v", "main10", "-x265-params", "keyint=15:log-level=error",
          "-tag:v", "hvc1")),
)}

# H.264 4:2:2 (High 4:2:2): a stream NVDEC cannot decode (4:2:0 only on today's GPUs). Under
# decoder: auto, nvcuvid refuses its sequence and FFmpeg's decoder takes it (tests/gpu). Not in
# CLIPS: the suites that go through every clip expect NVDEC to take them.
H264_422 = Clip("h264-422-640x360", "h264", 640, 360, 8, 15, 30,
                ("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "15",
                 "-pix_fmt", "yuv422p", "-profile:v", "high422"))


def draw(n: int, width: int, height: int, rng: np.random.Generator,
         noise: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame n as planes (Y, U, V) of uint8, with uniform noise of +-noise on luma."""
    r = np.arange(height, dtype=np.int32)[:, None]
    c = np.arange(width, dtype=np.int32)[None, :]
    y = (40 + (c + 2 * r + 4 * n) % 64).astype(np.int32)
    bits = pattern.barcode_bits(n)
    for i, b in enumerate(bits):
        y[:pattern.BLOCK, i * pattern.BLOCK:(i + 1) * pattern.BLOCK] = (
            pattern.WHITE if b else pattern.BLACK)
    bx, by = pattern.box_pos(n, width, height)
    y[by:by + pattern.BOX, bx:bx + pattern.BOX] = pattern.BOX_Y
    if noise:
        y += rng.integers(-noise, noise + 1, size=y.shape, dtype=np.int32)
    u = np.full((height // 2, width // 2), 128, np.uint8)
    v = u.copy()
    u[by // 2:(by + pattern.BOX) // 2, bx // 2:(bx + pattern.BOX) // 2] = pattern.BOX_U
    v[by // 2:(by + pattern.BOX) // 2, bx // 2:(bx + pattern.BOX) // 2] = pattern.BOX_V
    return np.clip(y, 0, 255).astype(np.uint8), u, v


def _encode(out: Path, width: int, height: int, fps: int, first: int, count: int,
            bit_depth: int, args: tuple[str, ...]) -> None:
    """Pipes frames first..first+count-1 of the pattern to the ffmpeg CLI, which writes `out`
    with the output arguments `args` (codec, container options)."""
    pix_in = "yuv420p10le" if bit_depth > 8 else "yuv420p"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "rawvideo", "-pix_fmt", pix_in, "-s", f"{width}x{height}",
           "-r", str(fps), "-i", "pipe:0", *args, "-threads", "2", "-an", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    rng = np.random.default_rng(1234 + first)
    try:
        for n in range(first, first + count):
            planes = draw(n, width, height, rng)
            for p in planes:
                if bit_depth > 8:
                    p = p.astype(np.uint16) << (bit_depth - 8)
                proc.stdin.write(np.ascontiguousarray(p).tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    rc = proc.wait(timeout=300)
    if rc != 0:
        out.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed ({rc}) making {out.name}: {' '.join(cmd)}")


def _once(out: Path, suffix: str, build: Callable[[Path], None]) -> Path:
    """Makes `out` once (an existing file is kept): build(tmp) writes a temporary file beside it
    (named with `suffix`, for ffmpeg's format guess), renamed to `out` when complete. Returns
    `out`."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp{suffix}")
    build(tmp)
    os.replace(tmp, out)
    return out


def _ffmpeg(cmd: list[str], out: Path, stdin: Optional[bytes] = None,
            timeout: float = 120) -> None:
    """Runs the ffmpeg CLI writing `out`; on failure removes it and raises, naming the command."""
    rc = subprocess.run(cmd, input=stdin, timeout=timeout).returncode
    if rc != 0:
        out.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed ({rc}) making {out.name}: {' '.join(cmd)}")


def make(clip: Clip, out_dir: str | os.PathLike[str]) -> Path:
    """Encodes clip into out_dir (once: an existing file is kept). Returns its path."""
    return _once(Path(out_dir) / clip.filename, ".mp4", lambda tmp: _encode(
        tmp, clip.width, clip.height, clip.fps, 0, clip.frames, clip.bit_depth,
        (*clip.encoder_args, "-movflags", "+faststart")))


# The timestamp-jump file: an MPEG-TS of two segments of JUMP_FRAMES frames each (barcodes
# 0..JUMP_FRAMES-1, then JUMP_FRAMES..2*JUMP_FRAMES-1), the second one's timestamps JUMP_S
# later than they should be: a valid file with a +1 h discontinuity after its first segment.
JUMP_FILENAME = "ts-jump-640x360.ts"
JUMP_FPS = 25
JUMP_FRAMES = 75
JUMP_S = 3600


def make_ts_jump(out_dir: str | os.PathLike[str]) -> Path:
    """Encodes the timestamp-jump file into out_dir (once). Returns its path."""
    def build(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            for i, offset in enumerate((0, JUMP_S)):
                seg = tmp.with_name(f"{tmp.name}.{i}.ts")
                # -output_ts_offset shifts the whole segment: the second one starts where the
                # first ends, plus JUMP_S.
                start = i * JUMP_FRAMES / JUMP_FPS + offset
                _encode(seg, 640, 360, JUMP_FPS, i * JUMP_FRAMES, JUMP_FRAMES, 8,
                        ("-c:v", "libx264", "-preset", "veryfast", "-g", str(JUMP_FPS), "-bf",
                         "0", "-pix_fmt", "yuv420p", "-output_ts_offset", str(start), "-f",
                         "mpegts"))
                f.write(seg.read_bytes())
                seg.unlink()

    return _once(Path(out_dir) / JUMP_FILENAME, "", build)


# Raw Annex B streams: no container, no timestamps. RAW_FPS frames a second, RAW_FRAMES frames.
# The H.264 one states its rate in its SPS (VUI timing); the HEVC one does not.
RAW_FPS = 15
RAW_FRAMES = 45


def make_raw(out_dir: str | os.PathLike[str], codec: str) -> Path:
    """Encodes a raw Annex B stream ("h264" or "hevc") into out_dir (once). Returns its path."""
    if codec == "h264":
        args: tuple[str, ...] = ("-c:v", "libx264", "-preset", "veryfast", "-g", "15",
                                 "-pix_fmt", "yuv420p", "-f", "h264")
    else:
        args = ("-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                "-x265-params", "keyint=15:log-level=error:vui-timing-info=0", "-f", "hevc")
    return _once(Path(out_dir) / f"raw-640x360.{codec}", "",
                 lambda tmp: _encode(tmp, 640, 360, RAW_FPS, 0, RAW_FRAMES, 8, args))


# An MJPEG clip, as an IP camera's MJPEG stream: JFIF, full-range BT.601 (FFmpeg decodes it as
# the deprecated yuvj420p). Four vertical bands of flat colour, full-range samples chosen outside
# the limited range where they can be (Y, U, V): a converter that moved them to limited range, or
# lost the chroma, shows. Bands are 80 pixels wide: whole 8x8 JPEG blocks, in chroma too.
MJPEG_FILENAME = "mjpeg-320x240.avi"
MJPEG_FPS = 15
MJPEG_FRAMES = 30
MJPEG_BANDS = ((5, 128, 128), (128, 128, 128), (250, 128, 128), (100, 30, 225))


def make_mjpeg(out_dir: str | os.PathLike[str]) -> Path:
    """Encodes the MJPEG clip into out_dir (once). Returns its path."""
    def build(tmp: Path) -> None:
        w, h = 80 * len(MJPEG_BANDS), 240
        planes = [np.empty((h, w), np.uint8), np.empty((h // 2, w // 2), np.uint8),
                  np.empty((h // 2, w // 2), np.uint8)]
        for i, band in enumerate(MJPEG_BANDS):
            for p, value in zip(planes, band):
                scale = w // p.shape[1]
                p[:, i * 80 // scale:(i + 1) * 80 // scale] = value
        frame = b"".join(p.tobytes() for p in planes)
        # yuvj420p in and out: the samples go into the JPEGs as they are, no conversion.
        _ffmpeg(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                 "-f", "rawvideo", "-pix_fmt", "yuvj420p", "-s", f"{w}x{h}", "-r", str(MJPEG_FPS),
                 "-i", "pipe:0", "-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj420p", "-an",
                 str(tmp)], tmp, stdin=frame * MJPEG_FRAMES)

    return _once(Path(out_dir) / MJPEG_FILENAME, ".avi", build)


BENCH_FILENAME = "bench-1080p30.mp4"


def make_bench(out_dir: str | os.PathLike[str]) -> Path:
    """Encodes the service benchmark's clip into out_dir (once). Returns its path."""
    return _once(Path(out_dir) / BENCH_FILENAME, ".mp4", lambda tmp: _ffmpeg(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=10",
         "-vf", "noise=alls=10:allf=t+u", "-c:v", "libx264", "-preset", "veryfast",
         "-bf", "0", "-g", "60", "-b:v", "5M", "-maxrate", "6M", "-bufsize", "10M",
         "-pix_fmt", "yuv420p", "-an", "-movflags", "+faststart", str(tmp)],
        tmp, timeout=600))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    names = argv[1:] or list(CLIPS)
    clips = {**CLIPS, H264_422.name: H264_422}
    for name in names:
        print(make_bench(argv[0]) if name == "bench" else make(clips[name], argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
