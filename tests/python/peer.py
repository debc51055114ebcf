"""A cuframes peer process for the tests, driven line by line over stdin/stdout.

    peer.py publish KEY [--width W --height H --format NV12 --slots N --policy DROP
                         --memory host --packet-ring BYTES --auto-fps F --auto-tag T]
        prints "READY <pid> <pitch_y>", then per stdin line:
          pub <pts>          publish make_frame(pts)  -> "OK <seq>"
          loan <pts>         the same through a loan  -> "OK <seq>"
          codec              set h264 codec params    -> "OK"
          pkt <pts> <key>    write a packet           -> "OK"
          stats              -> "JSON {...}"
        and exits at EOF. With --auto-fps it also publishes frames on its own, pts = T * 10**6 + i.
    peer.py subscribe KEY [--count N --mode NEWEST_ONLY --timeout-ms MS]
        prints "READY <consumer_name>"; for each frame checks its content against its pts and
        prints "FRAME <seq> <pts>"; after N frames prints "DONE <frames_received> <gap_count>".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])

import cuframes  # noqa: E402
from helpers import check_frame, make_frame  # noqa: E402


def out(*words: object) -> None:
    print(*words, flush=True)


def packet_bytes(pts: int) -> bytes:
    return bytes((pts * 7 + i) % 256 for i in range(100 + pts % 50))


def run_publisher(a: argparse.Namespace) -> None:
    fmt = cuframes.PixelFormat[a.format]
    pub = cuframes.publish(a.key, a.width, a.height, fmt, slots=a.slots, memory=a.memory,
                           policy=cuframes.PublisherPolicy[a.policy],
                           packet_ring_bytes=a.packet_ring)
    lock = threading.Lock()
    stop = threading.Event()

    def auto() -> None:
        i = 0
        while not stop.wait(1.0 / a.auto_fps):
            pts = a.auto_tag * 10**6 + i
            with lock:
                pub.publish(make_frame(fmt, a.width, a.height, pts), pts)
            i += 1

    t = threading.Thread(target=auto, daemon=True) if a.auto_fps else None
    out("READY", os.getpid(), pub.pitch_y)
    if t:
        t.start()
    for line in sys.stdin:
        cmd, *args = line.split()
        with lock:
            if cmd == "pub":
                pts = int(args[0])
                out("OK", pub.publish(make_frame(fmt, a.width, a.height, pts), pts))
            elif cmd == "loan":
                pts = int(args[0])
                with pub.loan() as f:
                    if a.memory == "host":
                        np.from_dlpack(f.yuv)[...] = make_frame(fmt, a.width, a.height, pts)
                    else:
                        import torch  # GPU tests only
                        torch.from_dlpack(f.yuv).copy_(
                            torch.from_numpy(make_frame(fmt, a.width, a.height, pts)).cuda())
                    f.pts_ns = pts
                out("OK", f.seq)
            elif cmd == "codec":
                pub.set_codec("h264", a.width, a.height, (1, 90000), b"\x01\x64\x00\x28")
                out("OK")
            elif cmd == "pkt":
                pts = int(args[0])
                pub.write_packet(packet_bytes(pts), pts, pts - 1, keyframe=args[1] == "1")
                out("OK")
            elif cmd == "stats":
                out("JSON", json.dumps(pub.stats()))
            else:
                out("ERR", cmd)
    stop.set()
    if t:
        t.join()
    pub.close()


def run_subscriber(a: argparse.Namespace) -> None:
    mode = cuframes.SubscriberMode[a.mode]
    with cuframes.subscribe(a.key, consumer_name=a.name, mode=mode,
                            connect_timeout_ms=a.timeout_ms) as sub:
        out("READY", sub.consumer_name)
        for _ in range(a.count):
            with sub.next_frame(timeout_ms=a.timeout_ms) as frame:
                check_frame(frame, frame.pts_ns)
                out("FRAME", frame.seq, frame.pts_ns)
        out("DONE", sub.frames_received, sub.gap_count)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["publish", "subscribe"])
    p.add_argument("key")
    p.add_argument("--width", type=int, default=1366)
    p.add_argument("--height", type=int, default=768)
    p.add_argument("--format", default="NV12")
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--policy", default="DROP")
    p.add_argument("--memory", default="host")
    p.add_argument("--packet-ring", type=int, default=0)
    p.add_argument("--auto-fps", type=float, default=0)
    p.add_argument("--auto-tag", type=int, default=1)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--mode", default="NEWEST_ONLY")
    p.add_argument("--name", default=None)
    p.add_argument("--timeout-ms", type=int, default=20000)
    a = p.parse_args()
    if a.role == "publish":
        run_publisher(a)
    else:
        run_subscriber(a)


if __name__ == "__main__":
    main()
