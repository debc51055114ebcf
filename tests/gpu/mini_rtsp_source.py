"""The video sources of mini_rtsp.py: an MP4 demuxer (ISO BMFF, moov before or after mdat, not
fragmented; avc1/avc3 or hvc1/hev1 with their avcC/hvcC, stts, ctts, stss, stsc, stsz,
stco/co64, elst) and raw Annex-B streams timed at a given frame rate; load() picks by the file
name's extension."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

from mini_rtsp_nal import H264, HEVC, group_access_units, is_key, nal_type, split_annexb


@dataclass
class Sample:
    offset: int        # MP4: where the sample is in the file; Annex-B: index into Source.aus
    size: int
    dts: int           # in Source.timescale
    pts: int
    key: bool


@dataclass
class Source:
    """A video track: its codec, parameter sets, samples and timing."""
    path: Path
    codec: str
    timescale: int
    duration: int                   # of one pass of the file, in timescale
    samples: list[Sample]
    params: list[bytes]             # VPS (HEVC), SPS, PPS in order
    width: int = 0
    height: int = 0
    length_size: int = 4            # MP4: bytes of each NAL unit's length prefix
    aus: list[list[bytes]] = field(default_factory=list)   # Annex-B: the access units

    def read_nals(self, f: Optional[BinaryIO], s: Sample) -> list[bytes]:
        if not self.aus:
            assert f is not None
            f.seek(s.offset)
            data = f.read(s.size)
            if len(data) != s.size:
                raise ValueError(f"{self.path}: sample at {s.offset} is cut short")
            return split_length_prefixed(data, self.length_size)
        return self.aus[s.offset]

    def open(self) -> Optional[BinaryIO]:
        return None if self.aus else open(self.path, "rb")

    def param(self, t_h264: int, t_hevc: int) -> Optional[bytes]:
        want = t_h264 if self.codec == H264 else t_hevc
        return next((p for p in self.params if nal_type(self.codec, p) == want), None)


def split_length_prefixed(data: bytes, n: int) -> list[bytes]:
    out = []
    i = 0
    while i + n <= len(data):
        size = int.from_bytes(data[i:i + n], "big")
        i += n
        if size == 0 or i + size > len(data):
            raise ValueError(f"bad NAL unit length {size} at {i - n} of a {len(data)}-byte sample")
        out.append(data[i:i + size])
        i += size
    return out


def _boxes(data: bytes, start: int = 0,
           end: Optional[int] = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    i = start
    while i + 8 <= end:
        size, typ = struct.unpack_from(">I4s", data, i)
        hdr = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, i + 8)[0]
            hdr = 16
        elif size == 0:
            size = end - i
        if size < hdr or i + size > end:
            raise ValueError(f"bad box {typ!r} of size {size} at {i}")
        yield typ, i + hdr, i + size
        i += size


def _child(data: bytes, start: int, end: int, typ: bytes) -> Optional[tuple[int, int]]:
    for t, s, e in _boxes(data, start, end):
        if t == typ:
            return s, e
    return None


def _need(data: bytes, start: int, end: int, path: list[bytes]) -> tuple[int, int]:
    for typ in path:
        found = _child(data, start, end, typ)
        if found is None:
            raise ValueError(f"no {typ.decode()} box")
        start, end = found
    return start, end


def _read_moov(f: BinaryIO, path: Path) -> bytes:
    """The moov box's payload, wherever it is among the top-level boxes (the rest is skipped
    with seeks: mdat is not read)."""
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    pos = 0
    while pos + 8 <= file_size:
        f.seek(pos)
        hdr = f.read(16)
        size, typ = struct.unpack_from(">I4s", hdr)
        hlen = 8
        if size == 1:
            size, hlen = struct.unpack_from(">Q", hdr, 8)[0], 16
        elif size == 0:
            size = file_size - pos
        if size < hlen:
            break
        if typ == b"moof":
            raise ValueError(f"{path}: fragmented MP4 (moof) is not supported")
        if typ == b"moov":
            f.seek(pos + hlen)
            return f.read(size - hlen)
        pos += size
    raise ValueError(f"{path}: no moov box (not an MP4 file?)")


def _full_box(data: bytes, s: int) -> tuple[int, int]:
    """(version, offset after version+flags)."""
    return data[s], s + 4


def load_mp4(path: Path) -> Source:
    with open(path, "rb") as f:
        moov = _read_moov(f, path)
    for typ, ts, te in _boxes(moov):
        if typ != b"trak":
            continue
        ms, me = _need(moov, ts, te, [b"mdia"])
        hs, _ = _need(moov, ms, me, [b"hdlr"])
        if moov[hs + 8:hs + 12] != b"vide":
            continue
        ss, se = _need(moov, ms, me, [b"minf", b"stbl"])
        stsd_s, stsd_e = _need(moov, ss, se, [b"stsd"])
        entry = next(_boxes(moov, stsd_s + 8, stsd_e), None)
        if entry is None or entry[0] not in (b"avc1", b"avc3", b"hvc1", b"hev1"):
            continue
        fmt, es, ee = entry
        codec = H264 if fmt in (b"avc1", b"avc3") else HEVC
        width, height = struct.unpack_from(">HH", moov, es + 24)
        cfg = _child(moov, es + 78, ee, b"avcC" if codec == H264 else b"hvcC")
        if cfg is None:
            raise ValueError(f"{path}: {fmt.decode()} without its decoder configuration")
        params, length_size = (_parse_avcc if codec == H264 else _parse_hvcc)(moov, *cfg)
        src = Source(path, codec, _timescale(moov, ms, me), 0, [], params, width, height,
                     length_size)
        src.samples, src.duration = _sample_table(moov, ss, se, _edit_shift(moov, ts, te))
        if not src.samples:
            raise ValueError(f"{path}: the video track has no samples (fragmented MP4?)")
        return src
    raise ValueError(f"{path}: no H.264 (avc1/avc3) or HEVC (hvc1/hev1) video track")


def _timescale(moov: bytes, ms: int, me: int) -> int:
    s, _ = _need(moov, ms, me, [b"mdhd"])
    version, p = _full_box(moov, s)
    return int(struct.unpack_from(">I", moov, p + (16 if version == 1 else 8))[0])


def _edit_shift(moov: bytes, ts: int, te: int) -> int:
    """media_time of the first non-empty edit (FFmpeg's shift for B-frame delay), else 0."""
    edts = _child(moov, ts, te, b"edts")
    elst = edts and _child(moov, edts[0], edts[1], b"elst")
    if not elst:
        return 0
    version, p = _full_box(moov, elst[0])
    count = struct.unpack_from(">I", moov, p)[0]
    p += 4
    for _ in range(count):
        if version == 1:
            _, media_time = struct.unpack_from(">Qq", moov, p)
            p += 20
        else:
            _, media_time = struct.unpack_from(">Ii", moov, p)
            p += 12
        if media_time >= 0:
            return int(media_time)
    return 0


def _parse_avcc(b: bytes, s: int, e: int) -> tuple[list[bytes], int]:
    length_size = (b[s + 4] & 3) + 1
    params = []
    p = s + 5
    for count_mask in (0x1F, 0xFF):  # SPS, then PPS
        count = b[p] & count_mask
        p += 1
        for _ in range(count):
            n = struct.unpack_from(">H", b, p)[0]
            params.append(b[p + 2:p + 2 + n])
            p += 2 + n
    return params, length_size


def _parse_hvcc(b: bytes, s: int, e: int) -> tuple[list[bytes], int]:
    length_size = (b[s + 21] & 3) + 1
    arrays = b[s + 22]
    p = s + 23
    found: dict[int, list[bytes]] = {}
    for _ in range(arrays):
        t = b[p] & 0x3F
        count = struct.unpack_from(">H", b, p + 1)[0]
        p += 3
        for _ in range(count):
            n = struct.unpack_from(">H", b, p)[0]
            found.setdefault(t, []).append(b[p + 2:p + 2 + n])
            p += 2 + n
    return found.get(32, []) + found.get(33, []) + found.get(34, []), length_size


def _u32s(b: bytes, s: int, n: int, fmt: str = "I") -> tuple[int, ...]:
    return struct.unpack_from(f">{n}{fmt}", b, s)


def _sample_table(b: bytes, ss: int, se: int, shift: int) -> tuple[list[Sample], int]:
    def box(typ: bytes) -> Optional[tuple[int, int]]:
        found = _child(b, ss, se, typ)
        return None if found is None else (found[0] + 4, found[1])  # past version+flags

    stsz = box(b"stsz")
    if stsz is None:
        raise ValueError("no stsz box")
    fixed, count = _u32s(b, stsz[0], 2)
    sizes = [fixed] * count if fixed else list(_u32s(b, stsz[0] + 8, count))

    co = box(b"stco")
    if co is not None:
        chunks = _u32s(b, co[0] + 4, _u32s(b, co[0], 1)[0])
    else:
        co = box(b"co64")
        if co is None:
            raise ValueError("no stco/co64 box")
        chunks = _u32s(b, co[0] + 4, _u32s(b, co[0], 1)[0], "Q")

    stsc = box(b"stsc")
    if stsc is None:
        raise ValueError("no stsc box")
    n = _u32s(b, stsc[0], 1)[0]
    runs = [_u32s(b, stsc[0] + 4 + 12 * i, 3) for i in range(n)]
    offsets: list[int] = []
    for r, (first, per_chunk, _) in enumerate(runs):
        last = runs[r + 1][0] - 1 if r + 1 < len(runs) else len(chunks)
        for c in range(first - 1, last):
            off = chunks[c]
            for _ in range(per_chunk):
                if len(offsets) == count:
                    break
                offsets.append(off)
                off += sizes[len(offsets) - 1]
    if len(offsets) != count:
        raise ValueError(f"stsc/stco place {len(offsets)} of {count} samples")

    stts = box(b"stts")
    if stts is None:
        raise ValueError("no stts box")
    dts = []
    t = 0
    for i in range(_u32s(b, stts[0], 1)[0]):
        k, delta = _u32s(b, stts[0] + 4 + 8 * i, 2)
        for _ in range(k):
            dts.append(t)
            t += delta
    duration = t
    if len(dts) < count:
        raise ValueError(f"stts times {len(dts)} of {count} samples")

    cts = [0] * count
    ctts = _child(b, ss, se, b"ctts")
    if ctts is not None:
        version, p = _full_box(b, ctts[0])
        i = 0
        for e in range(_u32s(b, p, 1)[0]):
            k, off = struct.unpack_from(">Ii" if version == 1 else ">II", b, p + 4 + 8 * e)
            if version == 0 and off >= 1 << 31:
                off -= 1 << 32
            for _ in range(k):
                if i < count:
                    cts[i] = off
                i += 1

    stss = box(b"stss")
    keys = None if stss is None else set(_u32s(b, stss[0] + 4, _u32s(b, stss[0], 1)[0]))
    samples = [Sample(offsets[i], sizes[i], dts[i] - shift, dts[i] + cts[i] - shift,
                      keys is None or i + 1 in keys) for i in range(count)]
    return samples, duration


ANNEXB_EXT = {".h264": H264, ".264": H264, ".avc": H264, ".h265": HEVC, ".265": HEVC,
              ".hevc": HEVC}


def load_annexb(path: Path, codec: str, fps: float) -> Source:
    nals = split_annexb(path.read_bytes())
    aus = group_access_units(codec, nals)
    if not aus:
        raise ValueError(f"{path}: no {codec} pictures in this Annex-B stream")
    wanted = (7, 8) if codec == H264 else (32, 33, 34)
    params = []
    for t in wanted:
        p = next((n for n in nals if nal_type(codec, n) == t), None)
        if p is None:
            raise ValueError(f"{path}: no parameter set of NAL type {t}")
        params.append(p)
    ts = 90000
    step = round(ts / fps)
    samples = [Sample(i, sum(len(n) for n in au), i * step, i * step,
                      any(is_key(codec, nal_type(codec, n)) for n in au))
               for i, au in enumerate(aus)]
    return Source(path, codec, ts, len(aus) * step, samples, params, aus=aus)


def load(path: Path, fps: float = 25.0) -> Source:
    path = Path(path)
    codec = ANNEXB_EXT.get(path.suffix.lower())
    return load_annexb(path, codec, fps) if codec else load_mp4(path)
