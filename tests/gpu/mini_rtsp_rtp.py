"""RTP packetisation and SDP of mini_rtsp.py: RFC 6184 (H.264: single NAL unit, FU-A) and RFC
7798 (HEVC: single NAL unit, FU type 49) payloads, and the session description of a source."""

from __future__ import annotations

import base64

from mini_rtsp_nal import H264
from mini_rtsp_source import Source

PAYLOAD_TYPE = 96
MAX_PAYLOAD = 1400        # RTP payload bytes per packet (an Ethernet-sized packet)
SERVER_NAME = "cuframes-mini-rtsp"


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
