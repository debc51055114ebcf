"""The packet ring: codec parameters and encoded packets, from a publisher in another process."""

from __future__ import annotations

import pytest

import cuframes
from helpers import Peer
from peer import packet_bytes


def test_packets_from_another_process(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    pub = Peer("publish", key, "--packet-ring", str(1 << 20))
    peers.append(pub)
    pub.expect("READY")
    with cuframes.subscribe_packets(key, connect_timeout_ms=5000) as reader:
        assert reader.key == key and not reader.closed and reader.fileno() >= 0
        assert reader.codec is None  # not set yet
        pub.call("codec")
        c = reader.codec
        assert c is not None
        assert (c.codec, c.width, c.height, c.time_base) == ("h264", 1366, 768, (1, 90000))
        assert c.extradata == b"\x01\x64\x00\x28" and c.generation >= 1
        for pts in range(1000, 1010):
            pub.call(f"pkt {pts} {int(pts % 5 == 0)}")
        got = [reader.next_packet(timeout_ms=5000) for _ in range(10)]
        assert [p.pts for p in got] == list(range(1000, 1010))
        assert [p.dts for p in got] == list(range(999, 1009))
        assert [p.keyframe for p in got] == [p % 5 == 0 for p in range(1000, 1010)]
        assert all(p.data == packet_bytes(p.pts) and len(p) == len(p.data) for p in got)
        assert [p.seq for p in got] == list(range(got[0].seq, got[0].seq + 10))
        assert got[0].params_generation == c.generation
        with pytest.raises(cuframes.CuframesFrameTimeout):
            reader.next_packet(timeout_ms=20)
        st = reader.stats()
        assert st["packets"] == 10 and st["gaps"] == 0
        assert st["bytes"] == sum(len(p) for p in got)
        # Iteration: what is left, then the end when the publisher goes.
        for pts in (2000, 2001):
            pub.call(f"pkt {pts} 0")
        pub.stop()
        assert [p.pts for p in reader] == [2000, 2001]
        with pytest.raises(cuframes.CuframesPublisherGone):
            reader.next_packet(timeout_ms=0)
    assert reader.closed and reader.stats()["packets"] == 12


def test_packets_pre_roll_and_in_process(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host", packet_ring_bytes=1 << 16) as pub:
        assert pub.has_packet_ring
        pub.set_codec("hevc", 64, 64, time_base=(1, 1000), extradata=b"")
        for i in range(5):
            pub.write_packet(bytearray([i]) * 100, pts=i * 40, keyframe=i == 0)
        with cuframes.subscribe_packets(key, start_at_oldest=True) as old, \
             cuframes.subscribe_packets(key) as new:
            assert [old.next_packet(0).pts for _ in range(5)] == [0, 40, 80, 120, 160]
            with pytest.raises(cuframes.CuframesFrameTimeout):
                new.next_packet(timeout_ms=0)  # only packets written after it attached
            pub.write_packet(memoryview(b"abc"), pts=200)
            p = new.next_packet(timeout_ms=1000)
            assert (p.data, p.pts, p.dts, p.keyframe) == (b"abc", 200, 200, False)
            assert new.codec is not None and new.codec.codec == "hevc"
            assert new.codec.extradata == b""
        with pytest.raises(cuframes.CuframesInvalidArgument):
            pub.write_packet(b"x" * (1 << 16), pts=0)  # larger than half the ring
        with pytest.raises(cuframes.CuframesInvalidArgument, match="codec"):
            pub.set_codec("mpeg2", 64, 64)


def test_packet_errors(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host") as pub:
        assert not pub.has_packet_ring
        with pytest.raises(cuframes.CuframesInvalidArgument):
            pub.write_packet(b"abc", pts=0)
        with pytest.raises(cuframes.CuframesInvalidArgument,
                           match=f"^read packets of '{key}': publisher refused: publisher '{key}' "
                           "has no packet ring$"):
            cuframes.subscribe_packets(key, connect_timeout_ms=5000)  # at once, not a timeout
    with pytest.raises(cuframes.CuframesPublisherGone):
        cuframes.subscribe_packets(key, connect_timeout_ms=0)
