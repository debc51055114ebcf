#!/usr/bin/env python3
"""A small RTSP server in pure Python (stdlib only): real H.264 / HEVC from files, for machines
without GStreamer or the ffmpeg CLI (the GPU machine), to feed cuframes-service's RTSP client.

    python3 tests/gpu/mini_rtsp.py --port 0 --mount cam=clip.mp4 --mount raw=clip.h264 --fps 15

prints one `READY rtsp://127.0.0.1:PORT/NAME` line per mount once listening; SIGTERM or SIGINT
stops it (exit 0). From Python:

    with MiniRtspServer({"cam": Path("clip.mp4")}) as srv:   # start() ... stop()
        url = srv.url("cam")
        srv.kill()    # every connection reset, no longer listening (a crashed camera)
        srv.start()   # listening again on the same port

Sources: MP4 (ISO BMFF, moov before or after mdat, not fragmented) with avc1/avc3 (H.264) or
hvc1/hev1 (HEVC, 8 or 10 bit) video, demuxed here (stsd avcC/hvcC, stts, ctts, stss, stsc,
stsz, stco/co64, elst); or a raw Annex-B stream (.h264/.264/.avc: H.264; .h265/.265/.hevc:
HEVC), timed at --fps in decode order.

RTSP: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER / SET_PARAMETER (keepalive), TEARDOWN;
RTP over the RTSP connection only (RTP/AVP/TCP interleaved; a UDP SETUP is answered 461, which
FFmpeg answers by asking for TCP). RTP: RFC 6184 (single NAL unit, FU-A) and RFC 7798 (single
NAL unit, FU type 49), payload type 96, marker on an access unit's last packet, 90 kHz
timestamps from the file's presentation times. Each session plays the file from its start (so
the first picture is the file's first, a key frame), paced in real time by decode times, looping
forever with continuous timestamps and sequence numbers; the parameter sets go in-band before
every key frame that lacks them. Any number of concurrent clients, a thread per connection and
one per playing session.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Optional
from urllib.parse import urlsplit

H264, HEVC = "h264", "hevc"
PAYLOAD_TYPE = 96
MAX_PAYLOAD = 1400        # RTP payload bytes per packet (an Ethernet-sized packet)
SEND_TIMEOUT_S = 10.0     # a client that takes nothing for this long is dropped
SESSION_TIMEOUT_S = 60
SERVER_NAME = "cuframes-mini-rtsp"


# ---- NAL units -------------------------------------------------------------------------------

def nal_type(codec: str, nal: bytes) -> int:
    return (nal[0] & 0x1F) if codec == H264 else (nal[0] >> 1) & 0x3F


def is_vcl(codec: str, t: int) -> bool:
    return 1 <= t <= 5 if codec == H264 else t <= 31


def is_key(codec: str, t: int) -> bool:
    """IDR (H.264), IRAP: BLA, IDR, CRA (HEVC)."""
    return t == 5 if codec == H264 else 16 <= t <= 23


def is_aud(codec: str, t: int) -> bool:
    return t == 9 if codec == H264 else t == 35


def has_sps(codec: str, nals: list[bytes]) -> bool:
    return any(nal_type(codec, n) == (7 if codec == H264 else 33) for n in nals)


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B byte stream (start codes 00 00 01 / 00 00 00 01)."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    nals = []
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        nal = data[s:e].rstrip(b"\x00")  # trailing zeros: the next 4-byte start code's first
        if nal:
            nals.append(nal)
    return nals


def first_slice_of_picture(codec: str, nal: bytes) -> bool:
    """first_mb_in_slice == 0 (ue(v) "1") / first_slice_segment_in_pic_flag."""
    hdr = 1 if codec == H264 else 2
    return len(nal) > hdr and bool(nal[hdr] & 0x80)


def group_access_units(codec: str, nals: list[bytes]) -> list[list[bytes]]:
    """Annex-B NAL units into access units: a new one starts at a picture's first slice, or at a
    non-VCL unit that can only precede a picture (AUD, parameter sets, prefix SEI) once the
    current unit has a picture."""
    starters = {6, 7, 8, 9, 14, 15} if codec == H264 else {32, 33, 34, 35, 39, 41, 42, 43, 44}
    aus: list[list[bytes]] = []
    cur: list[bytes] = []
    cur_has_vcl = False
    for nal in nals:
        t = nal_type(codec, nal)
        vcl = is_vcl(codec, t)
        if cur_has_vcl and ((vcl and first_slice_of_picture(codec, nal)) or t in starters):
            aus.append(cur)
            cur, cur_has_vcl = [], False
        cur.append(nal)
        cur_has_vcl = cur_has_vcl or vcl
    if cur_has_vcl:
        aus.append(cur)
    return aus


# ---- sources ---------------------------------------------------------------------------------

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


# ---- RTP -------------------------------------------------------------------------------------

def packetize(codec: str, nal: bytes, max_payload: int = MAX_PAYLOAD) -> list[bytes]:
    """RTP payloads of one NAL unit: itself, or fragmentation units (FU-A / HEVC FU)."""
    if len(nal) <= max_payload:
        return [nal]
    if codec == H264:
        head = bytes([(nal[0] & 0xE0) | 28])
        t, body = nal[0] & 0x1F, nal[1:]
    else:
        head = bytes([(nal[0] & 0x81) | (49 << 1), nal[1]])
        t, body = (nal[0] >> 1) & 0x3F, nal[2:]
    room = max_payload - len(head) - 1
    out = []
    for i in range(0, len(body), room):
        fu = t | (0x80 if i == 0 else 0) | (0x40 if i + room >= len(body) else 0)
        out.append(head + bytes([fu]) + body[i:i + room])
    return out


def sdp(src: Source, session_id: int, address: str) -> str:
    if src.codec == H264:
        sps, pps = src.param(7, 0), src.param(8, 0)
        fmtp = "packetization-mode=1"
        if sps is not None and len(sps) >= 4:
            fmtp += f";profile-level-id={sps[1:4].hex().upper()}"
        sets = [base64.b64encode(p).decode() for p in (sps, pps) if p is not None]
        if sets:
            fmtp += ";sprop-parameter-sets=" + ",".join(sets)
        rtpmap = "H264/90000"
    else:
        parts = []
        for key, t in (("vps", 32), ("sps", 33), ("pps", 34)):
            p = src.param(0, t)
            if p is not None:
                parts.append(f"sprop-{key}={base64.b64encode(p).decode()}")
        fmtp, rtpmap = ";".join(parts), "H265/90000"
    lines = ["v=0", f"o=- {session_id} 1 IN IP4 {address}", f"s={SERVER_NAME} {src.path.name}",
             "c=IN IP4 0.0.0.0", "t=0 0", "a=tool:" + SERVER_NAME, "a=type:broadcast",
             "a=control:*", "a=range:npt=0-", f"m=video 0 RTP/AVP {PAYLOAD_TYPE}",
             f"a=rtpmap:{PAYLOAD_TYPE} {rtpmap}", f"a=fmtp:{PAYLOAD_TYPE} {fmtp}",
             "a=control:stream=0"]
    if src.width and src.height:
        lines.append(f"a=x-dimensions:{src.width},{src.height}")
    return "\r\n".join(lines) + "\r\n"


# ---- the server ------------------------------------------------------------------------------

class Connection:
    """One RTSP client connection: a reader thread for its requests (and the RTCP it sends
    interleaved), and a sender thread while its session plays."""

    def __init__(self, server: "MiniRtspServer", sock: socket.socket,
                 peer: tuple[str, int]) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.wlock = threading.Lock()
        self.stop = threading.Event()
        self.reset = False
        self.session: Optional[str] = None
        self.mount: Optional[str] = None
        self.channel = 0
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts_base = random.getrandbits(32)
        self.sender: Optional[threading.Thread] = None
        self.packets = 0
        self.access_units = 0
        self.reader = threading.Thread(target=self._read_loop, daemon=True,
                                       name=f"rtsp-conn-{peer[1]}")

    # -- output --
    def _send(self, data: bytes) -> None:
        with self.wlock:
            self.sock.sendall(data)

    def _reply(self, code: int, reason: str, cseq: str, headers: dict[str, str],
               body: bytes = b"") -> None:
        head = [f"RTSP/1.0 {code} {reason}", f"CSeq: {cseq}", f"Server: {SERVER_NAME}",
                "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body:
            head.append(f"Content-Length: {len(body)}")
        self._send(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    # -- input --
    def _read_loop(self) -> None:
        buf = b""
        try:
            while not self.stop.is_set():
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while buf:
                    if buf[0] == 0x24:  # '$': interleaved RTCP from the client, dropped
                        if len(buf) < 4:
                            break
                        n = 4 + struct.unpack_from(">H", buf, 2)[0]
                        if len(buf) < n:
                            break
                        buf = buf[n:]
                        continue
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buf) > 65536:
                            raise ValueError("request head too long")
                        break
                    head = buf[:end].decode("utf-8", "replace").split("\r\n")
                    headers = {}
                    for line in head[1:]:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                    clen = int(headers.get("content-length", "0") or 0)
                    if len(buf) < end + 4 + clen:
                        break
                    buf = buf[end + 4 + clen:]
                    if not self._handle(head[0], headers):
                        return
        except (OSError, ValueError):
            pass
        except Exception as e:  # a bug here: this connection ends, the server goes on
            self.server.log(f"{self.peer}: {type(e).__name__}: {e}")
        finally:
            self._finish()

    def _mount_of(self, url: str) -> Optional[str]:
        path = urlsplit(url).path.strip("/")
        for name in self.server.sources:
            if path == name or path.startswith(name + "/"):
                return name
        return None

    def _handle(self, request_line: str, h: dict[str, str]) -> bool:
        """Answers one request; False once the connection is to close."""
        parts = request_line.split()
        cseq = h.get("cseq", "0")
        if len(parts) != 3 or not parts[2].startswith("RTSP/"):
            self._reply(400, "Bad Request", cseq, {})
            return False
        method, url = parts[0].upper(), parts[1]
        sess = {"Session": f"{self.session};timeout={SESSION_TIMEOUT_S}"} if self.session else {}
        if method == "OPTIONS":
            self._reply(200, "OK", cseq, {**sess, "Public": "OPTIONS, DESCRIBE, SETUP, PLAY, "
                                          "GET_PARAMETER, SET_PARAMETER, TEARDOWN"})
            return True
        if method in ("GET_PARAMETER", "SET_PARAMETER"):
            self._reply(200, "OK", cseq, sess)
            return True
        if method == "TEARDOWN":
            self._reply(200, "OK", cseq, sess)
            return False
        mount = self._mount_of(url)
        if mount is None:
            self._reply(404, "Not Found", cseq, {})
            return True
        src = self.server.sources[mount]
        if method == "DESCRIBE":
            base = url if url.endswith("/") else url + "/"
            body = sdp(src, self.ssrc, self.server.address).encode()
            self._reply(200, "OK", cseq, {"Content-Base": base,
                                          "Content-Type": "application/sdp"}, body)
            return True
        if method == "SETUP":
            transport = h.get("transport", "")
            spec = next((t for t in transport.split(",") if "RTP/AVP/TCP" in t.upper()), None)
            if spec is None:
                self._reply(461, "Unsupported Transport", cseq, {})
                return True
            if self.session is not None and self.mount != mount:
                self._reply(459, "Aggregate Operation Not Allowed", cseq, sess)
                return True
            for param in spec.split(";"):
                if param.strip().startswith("interleaved="):
                    self.channel = int(param.split("=", 1)[1].split("-")[0])
            self.mount = mount
            if self.session is None:
                self.session = f"{random.getrandbits(48):012X}"
            self._reply(200, "OK", cseq, {
                "Session": f"{self.session};timeout={SESSION_TIMEOUT_S}",
                "Transport": f"RTP/AVP/TCP;unicast;interleaved={self.channel}-"
                             f"{self.channel + 1};ssrc={self.ssrc:08X};mode=\"PLAY\""})
            return True
        if method == "PLAY":
            if self.session is None or self.mount != mount:
                self._reply(455, "Method Not Valid in This State", cseq, {})
                return True
            if h.get("session", "").split(";")[0].strip() != self.session:
                self._reply(454, "Session Not Found", cseq, {})
                return True
            stream_url = url.rstrip("/") + "/stream=0" if "stream=" not in url else url
            # RTP-Info's seq is the first packet of the play range (RFC 2326 12.33): the sender
            # numbers and sends its packets under wlock, so self.seq read under it is the next
            # packet's, and the reply goes out before that packet. (The sender was once started
            # before seq was read: RTP-Info then named a packet after the first, issue 22.)
            with self.wlock:
                head = ["RTSP/1.0 200 OK", f"CSeq: {cseq}", f"Server: {SERVER_NAME}",
                        f"Session: {self.session};timeout={SESSION_TIMEOUT_S}",
                        "Range: npt=0.000-",
                        f"RTP-Info: url={stream_url};seq={self.seq};rtptime={self.ts_base}"]
                self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
                if self.sender is None:
                    self.sender = threading.Thread(target=self._play, args=(src,), daemon=True,
                                                   name=f"rtsp-play-{mount}-{self.peer[1]}")
                    self.sender.start()
            return True
        self._reply(405, "Method Not Allowed", cseq,
                    {"Allow": "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN"})
        return True

    # -- RTP --
    def _play(self, src: Source) -> None:
        f = None
        try:
            f = src.open()
            first_dts = src.samples[0].dts
            t0 = time.monotonic()
            loop = 0
            while not self.stop.is_set():
                base = loop * src.duration
                for s in src.samples:
                    if not self.server._wait_playing(self):
                        return
                    due = t0 + (base + s.dts - first_dts) / src.timescale
                    delay = due - time.monotonic()
                    if delay < -1.0:  # behind by more than a second (frozen, slow client):
                        t0 -= delay   # go on from now, not in a burst
                    elif delay > 0 and self.stop.wait(delay):
                        return
                    self._send_au(src, src.read_nals(f, s), s, base)
                loop += 1
        except Exception as e:  # the client went away (OSError), or a bad sample
            if not self.stop.is_set():
                self.server.log(f"{self.peer}: session ended: {type(e).__name__}: {e}")
        finally:
            if f is not None:
                f.close()
            self.close()

    def _send_au(self, src: Source, nals: list[bytes], s: Sample, base: int) -> None:
        codec = src.codec
        if s.key and not has_sps(codec, nals):
            at = 1 if nals and is_aud(codec, nal_type(codec, nals[0])) else 0
            nals = nals[:at] + src.params + nals[at:]
        ts = (self.ts_base + (base + s.pts) * 90000 // src.timescale) & 0xFFFFFFFF
        payloads = [p for nal in nals for p in packetize(codec, nal)]
        with self.wlock:  # numbered and sent in one step: PLAY's RTP-Info reads self.seq
            out = bytearray()
            for i, p in enumerate(payloads):
                marker = 0x80 if i == len(payloads) - 1 else 0
                rtp = struct.pack(">BBHII", 0x80, marker | PAYLOAD_TYPE, self.seq, ts,
                                  self.ssrc) + p
                out += struct.pack(">cBH", b"$", self.channel, len(rtp)) + rtp
                self.seq = (self.seq + 1) & 0xFFFF
            self.sock.sendall(bytes(out))
        self.packets += len(payloads)
        self.access_units += 1

    def close(self, reset: bool = False) -> None:
        """Ends the connection: the reader and a sender blocked in a send wake up; the reader
        joins the sender and closes the socket (with reset: an RST, as when a process dies)."""
        self.stop.set()
        self.server._wake_senders()
        try:
            if reset and not self.reset:
                self.reset = True
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _finish(self) -> None:
        """The reader's last act: the sender stopped, the socket closed, the server told."""
        self.close()
        if self.sender is not None:
            self.sender.join()
        self.sock.close()
        self.server._forget(self)


class MiniRtspServer:
    """RTSP server of `mounts` (name -> file), RTP over TCP. start() -> port; stop(); kill()
    (connections reset, like a killed process) then start() again on the same port."""

    def __init__(self, mounts: dict[str, Path | str], port: int = 0,
                 address: str = "127.0.0.1", fps: float = 25.0, verbose: bool = False) -> None:
        self.sources = {name.strip("/"): load(Path(p), fps) for name, p in mounts.items()}
        self.port = port
        self.address = address
        self.verbose = verbose
        self._frozen = False               # freeze(): senders hold their frames
        self._play_cond = threading.Condition()
        self._lock = threading.Lock()
        self._conns: set[Connection] = set()
        self._all_conns: list[Connection] = []
        self._listener: Optional[socket.socket] = None
        self._wake: Optional[tuple[socket.socket, socket.socket]] = None
        self._acceptor: Optional[threading.Thread] = None

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"mini_rtsp: {msg}", file=sys.stderr, flush=True)

    def url(self, name: str) -> str:
        host = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
        return f"rtsp://{host}:{self.port}/{name.strip('/')}"

    def __enter__(self) -> "MiniRtspServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> int:
        """Listens (on the port of the previous start after a stop/kill) and accepts clients;
        returns the port."""
        assert self._acceptor is None, "already started"
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            ls.bind((self.address, self.port))
            ls.listen(64)
        except OSError:
            ls.close()
            raise
        self.port = ls.getsockname()[1]
        self._listener = ls
        self._wake = socket.socketpair()
        self.thaw()
        self._acceptor = threading.Thread(target=self._accept_loop, args=(ls, self._wake[0]),
                                          daemon=True, name="rtsp-accept")
        self._acceptor.start()
        return self.port

    def _accept_loop(self, ls: socket.socket, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(ls, selectors.EVENT_READ)
            sel.register(wake, selectors.EVENT_READ)
            while True:
                events = sel.select()
                if any(key.fileobj is wake for key, _ in events):
                    return
                try:
                    sock, peer = ls.accept()
                except OSError:
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                struct.pack("ll", int(SEND_TIMEOUT_S), 0))
                conn = Connection(self, sock, peer)
                with self._lock:
                    self._conns.add(conn)
                    self._all_conns.append(conn)
                self.log(f"client {peer}")
                conn.reader.start()

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def sessions(self) -> int:
        """Connections now open."""
        with self._lock:
            return len(self._conns)

    def stats(self) -> list[tuple[Optional[str], int, int]]:
        """(mount, access units, RTP packets) of every connection since construction."""
        with self._lock:
            return [(c.mount, c.access_units, c.packets) for c in self._all_conns]

    def freeze(self) -> None:
        """Senders stop sending (connections stay open and answer requests): a hung camera."""
        with self._play_cond:
            self._frozen = True

    def thaw(self) -> None:
        """Senders go on, from the next picture, paced from now."""
        with self._play_cond:
            self._frozen = False
            self._play_cond.notify_all()

    def _wake_senders(self) -> None:
        with self._play_cond:
            self._play_cond.notify_all()

    def _wait_playing(self, conn: Connection) -> bool:
        """Blocks while frozen; False once conn is to stop."""
        with self._play_cond:
            self._play_cond.wait_for(lambda: not self._frozen or conn.stop.is_set())
        return not conn.stop.is_set()

    def _shutdown(self, reset: bool, timeout: float) -> None:
        if self._acceptor is None:
            return
        assert self._wake is not None and self._listener is not None
        self._wake[1].send(b"x")
        self._acceptor.join(timeout)
        self._listener.close()
        for s in self._wake:
            s.close()
        self._acceptor = self._listener = self._wake = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.close(reset=reset)
        deadline = time.monotonic() + timeout
        for c in conns:
            c.reader.join(max(0.0, deadline - time.monotonic()))
        alive = [c.peer for c in conns if c.reader.is_alive()]
        if alive:
            raise RuntimeError(f"mini_rtsp: connections of {alive} still open after {timeout} s")

    def stop(self, timeout: float = 5.0) -> None:
        """Stops listening, closes every connection (FIN) and joins the threads."""
        self._shutdown(reset=False, timeout=timeout)

    def kill(self, timeout: float = 5.0) -> None:
        """As if the process were killed: no longer listening, every connection reset (RST)."""
        self._shutdown(reset=True, timeout=timeout)


def parse_mount(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name.strip("/") or not path:
        raise argparse.ArgumentTypeError(f"bad mount {spec!r}: want NAME=FILE")
    return name.strip("/"), Path(path)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8554, help="0: pick a free port")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--mount", type=parse_mount, action="append", required=True,
                    metavar="NAME=FILE", help="serve FILE (MP4, or Annex-B .h264/.h265) as "
                    "rtsp://ADDRESS:PORT/NAME (repeatable)")
    ap.add_argument("--fps", type=float, default=25.0, help="frame rate of Annex-B files")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    try:
        server = MiniRtspServer(dict(args.mount), args.port, args.address, args.fps,
                                args.verbose)
    except (OSError, ValueError) as e:
        print(f"mini_rtsp: {e}", file=sys.stderr)
        return 1
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        server.start()
    except OSError as e:
        print(f"mini_rtsp: cannot listen on {args.address}:{args.port}: {e}", file=sys.stderr)
        return 1
    for name, src in server.sources.items():
        print(f"READY {server.url(name)}", flush=True)
        server.log(f"{name}: {src.path} {src.codec} {src.width}x{src.height}, "
                   f"{len(src.samples)} pictures, {src.duration / src.timescale:.2f} s")
    while not done.wait(3600):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
