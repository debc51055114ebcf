"""A small RTSP client for the tests of mini_rtsp.py: RTSP over TCP with interleaved RTP,
RTP depacketizing (single NAL units, FU-A, HEVC FU), access units read with their sequence
numbers, markers and timestamps checked, and the access units the server should send for a
source."""

from __future__ import annotations

import socket
import struct
from typing import Iterator, Optional

import mini_rtsp


class Client:
    """RTSP over TCP with interleaved RTP, enough to check the server: requests, and the RTP
    packets of channel 0 (RTCP and replies in between are kept apart)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        rest = url.split("://", 1)[1]
        host, port = rest.split("/", 1)[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""
        self.cseq = 0
        self.session: Optional[str] = None
        self.replies: list[tuple[int, dict[str, str], bytes]] = []

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _read_reply(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n")
        lines = self.buf[:end].decode().split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < end + 4 + n:
            self._fill()
        body = self.buf[end + 4:end + 4 + n]
        self.buf = self.buf[end + 4 + n:]
        return int(lines[0].split()[1]), headers, body

    def send(self, method: str, url: str, headers: Optional[dict[str, str]] = None) -> int:
        self.cseq += 1
        h = {"CSeq": str(self.cseq), **(headers or {})}
        if self.session:
            h["Session"] = self.session
        self.sock.sendall((f"{method} {url} RTSP/1.0\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode())
        return self.cseq

    def request(self, method: str, url: str,
                headers: Optional[dict[str, str]] = None) -> tuple[int, dict[str, str], bytes]:
        """A request before PLAY: the reply is the next thing on the connection."""
        cseq = self.send(method, url, headers)
        code, h, body = self._read_reply()
        assert h.get("cseq") == str(cseq), h
        return code, h, body

    def rtp(self) -> tuple[int, bytes]:
        """The next interleaved packet (channel, data); replies met on the way are kept in
        self.replies."""
        while True:
            while not self.buf:
                self._fill()
            if self.buf[0] != 0x24:
                self.replies.append(self._read_reply())
                continue
            while len(self.buf) < 4:
                self._fill()
            n = struct.unpack_from(">H", self.buf, 2)[0]
            while len(self.buf) < 4 + n:
                self._fill()
            ch, data = self.buf[1], self.buf[4:4 + n]
            self.buf = self.buf[4 + n:]
            return ch, data

    def play(self) -> tuple[int, int]:
        """DESCRIBE, SETUP, PLAY; returns RTP-Info's (seq, rtptime)."""
        code, h, sdp = self.request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        assert code == 200 and h["content-type"] == "application/sdp", (code, h)
        self.sdp = sdp.decode()
        control = next(ln.split(":", 1)[1] for ln in self.sdp.splitlines()[::-1]
                       if ln.startswith("a=control:"))
        code, h, _ = self.request("SETUP", h["content-base"] + control,
                                  {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        assert code == 200, (code, h)
        assert "interleaved=0-1" in h["transport"], h
        self.session = h["session"].split(";")[0]
        code, h, _ = self.request("PLAY", self.url, {"Range": "npt=0.000-"})
        assert code == 200, (code, h)
        info = dict(kv.split("=", 1) for kv in h["rtp-info"].split(";")[1:])
        return int(info["seq"]), int(info["rtptime"])


def depacketize(codec: str, packets: list[bytes]) -> list[bytes]:
    """The NAL units of one access unit's RTP payloads (single NAL units and FU-A / FU 49)."""
    nals: list[bytes] = []
    frag: Optional[bytearray] = None
    for p in packets:
        t = mini_rtsp.nal_type(codec, p)
        if (codec == "h264" and t == 28) or (codec == "hevc" and t == 49):
            hl = 1 if codec == "h264" else 2
            fu = p[hl]
            if fu & 0x80:
                assert frag is None, "FU start inside a FU"
                head = (bytes([(p[0] & 0xE0) | (fu & 0x1F)]) if codec == "h264"
                        else bytes([(p[0] & 0x81) | ((fu & 0x3F) << 1), p[1]]))
                frag = bytearray(head)
            assert frag is not None, "FU continuation without a start"
            frag += p[hl + 1:]
            if fu & 0x40:
                nals.append(bytes(frag))
                frag = None
        else:
            assert frag is None, "single NAL unit inside a FU"
            nals.append(p)
    assert frag is None, "access unit ends inside a FU"
    return nals


def read_access_units(c: Client, codec: str, count: int) -> list[tuple[int, int, list[bytes]]]:
    """count access units (first seq, timestamp, NAL units), checking sequence numbers, the
    header and one timestamp per access unit (its last packet has the marker)."""
    aus: list[tuple[int, int, list[bytes]]] = []
    packets: list[bytes] = []
    expect_seq = None
    ts = None
    first_seq = 0
    while len(aus) < count:
        ch, data = c.rtp()
        if ch != 0:
            continue
        b0, b1, seq, pts, _ssrc = struct.unpack_from(">BBHII", data)
        assert b0 == 0x80 and b1 & 0x7F == mini_rtsp.PAYLOAD_TYPE, data[:12].hex()
        assert expect_seq is None or seq == expect_seq, f"seq {seq}, expected {expect_seq}"
        expect_seq = (seq + 1) & 0xFFFF
        if not packets:
            ts, first_seq = pts, seq
        assert pts == ts, f"timestamp changed inside an access unit: {pts} != {ts}"
        packets.append(data[12:])
        if b1 & 0x80:
            aus.append((first_seq, pts, depacketize(codec, packets)))
            packets = []
    return aus


def expected_access_units(src: mini_rtsp.Source, count: int,
                          rtptime: int) -> Iterator[tuple[int, list[bytes]]]:
    """(timestamp, NAL units) the server should send for its first count pictures: the file's
    in decode order, looping, with the parameter sets before key frames that lack them."""
    with open(src.path, "rb") as f:
        for i in range(count):
            loop, k = divmod(i, len(src.samples))
            s = src.samples[k]
            nals = src.read_nals(f, s)
            if s.key and not mini_rtsp.has_sps(src.codec, nals):
                nals = src.params + nals
            ts = rtptime + (loop * src.duration + s.pts) * 90000 // src.timescale
            yield ts & 0xFFFFFFFF, nals
