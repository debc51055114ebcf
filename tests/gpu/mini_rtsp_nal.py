"""H.264 and HEVC NAL units for mini_rtsp.py: types (VCL, key frame, AUD, parameter sets),
Annex-B start-code splitting, and Annex-B NAL units grouped into access units."""

from __future__ import annotations

H264, HEVC = "h264", "hevc"


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
