"""One RTSP client connection of mini_rtsp.py: its requests (OPTIONS, DESCRIBE, SETUP, PLAY,
GET_PARAMETER / SET_PARAMETER, TEARDOWN), and the RTP of its session, interleaved on the RTSP
connection and paced in real time by the source's decode times."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING, Optional
from urllib.parse import urlsplit

from mini_rtsp_nal import has_sps, is_aud, nal_type
from mini_rtsp_rtp import PAYLOAD_TYPE, SERVER_NAME, packetize, sdp
from mini_rtsp_source import Sample, Source

if TYPE_CHECKING:
    from mini_rtsp import MiniRtspServer

SESSION_TIMEOUT_S = 60


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
