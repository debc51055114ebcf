"""Publishers and subscribers in other processes (peer.py), death by SIGKILL, the reconnect loop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import cuframes
from helpers import Peer, check_frame, make_frame

PF = cuframes.PixelFormat


def start_publisher(peers: list[Peer], key: str, *args: str) -> Peer:
    p = Peer("publish", key, *args)
    peers.append(p)
    p.expect("READY")
    return p


def test_subscriber_in_another_process(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    """Frames published here arrive intact in two subscriber processes (one NEWEST_ONLY, one
    STRICT_ORDER), which check every sample against the pattern of the frame's pts."""
    w, h = 1366, 768
    with cuframes.publish(key, w, h, memory="host", slots=4,
                          policy=cuframes.PublisherPolicy.STRICT_WAIT, wait_timeout_ms=10000) as pub:
        strict = Peer("subscribe", key, "--count", "20", "--mode", "STRICT_ORDER", "--name", "strict")
        peers.append(strict)
        assert strict.expect("READY") == ["strict"]
        for tag in range(100, 120):
            assert pub.publish(make_frame(PF.NV12, w, h, tag), tag) == tag - 99
        for tag in range(100, 120):
            seq, pts = strict.expect("FRAME")
            assert (int(seq), int(pts)) == (tag - 99, tag)
        assert strict.expect("DONE") == ["20", "0"]
        newest = Peer("subscribe", key, "--count", "3", "--name", "newest")
        peers.append(newest)
        newest.expect("READY")
        assert newest.expect("FRAME")[1] == "119"  # the newest frame at subscription
        for tag in (200, 201):
            pub.publish(make_frame(PF.NV12, w, h, tag), tag)
            assert newest.expect("FRAME")[1] == str(tag)
        assert newest.expect("DONE") == ["3", "0"]


def test_publisher_in_another_process(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    pub = start_publisher(peers, key, "--format", "P010")
    with cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=5000) as sub:
        assert sub.format == PF.P010
        assert pub.call("pub 5") == ["1"]
        assert pub.call("loan 6") == ["2"]
        for tag in (5, 6):
            with sub.next_frame(timeout_ms=5000) as f:
                assert f.pts_ns == tag
                check_frame(f, tag)
        st = pub.json("stats")
        assert st["published"] == 2 and st["subscribers"] == 1
        assert sub.stats()["publisher_pid"] == pub.pid


def test_sigkill_gives_publisher_gone(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    pub = start_publisher(peers, key)
    with cuframes.subscribe(key, connect_timeout_ms=5000) as sub:
        pub.call("pub 42")
        held = sub.next_frame(timeout_ms=5000)
        pub.kill()
        t0 = time.monotonic()
        with pytest.raises(cuframes.CuframesPublisherGone):
            sub.next_frame(timeout_ms=20000)
        assert time.monotonic() - t0 < 5  # at once (socket hang-up), not at the timeout
        with pytest.raises(cuframes.CuframesPublisherGone):
            sub.next_frame(timeout_ms=0)
        assert sub.errors == 2
        # A frame still held stays readable after the publisher's death.
        check_frame(held, 42)
        held.release()
    assert cuframes.list_publishers() == []  # the dead publisher's socket is not listed


def test_kill_while_waiting(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    """A subscriber blocked in next_frame (GIL released) wakes up when the publisher dies."""
    pub = start_publisher(peers, key)
    with cuframes.subscribe(key, connect_timeout_ms=5000) as sub:
        result: list[BaseException] = []
        started = threading.Event()

        def wait() -> None:
            started.set()
            try:
                sub.next_frame(timeout_ms=30000)
            except BaseException as e:  # noqa: BLE001
                result.append(e)

        t = threading.Thread(target=wait)
        t.start()
        started.wait()
        pub.kill()
        t.join(20)
        assert not t.is_alive()
        assert isinstance(result[0], cuframes.CuframesPublisherGone)


def test_subscribe_waits_for_publisher(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    """subscribe() with a connect timeout waits for a publisher that starts later."""
    result: list[object] = []
    waiting = threading.Event()

    def connect() -> None:
        waiting.set()
        sub = cuframes.subscribe(key, connect_timeout_ms=20000)
        result.append(sub.key)
        sub.close()

    t = threading.Thread(target=connect)
    t.start()
    waiting.wait()
    start_publisher(peers, key)
    t.join(30)
    assert result == [key]


def consume_camera(key: str, on_frame):  # type: ignore[no-untyped-def]
    """The reconnect loop of docs/python.md, as written there."""
    while True:
        try:
            with cuframes.subscribe(key, connect_timeout_ms=5000) as sub:
                while True:
                    try:
                        with sub.next_frame(timeout_ms=1000) as frame:
                            on_frame(frame)
                    except cuframes.CuframesFrameTimeout:
                        # no new frames yet: keep waiting
                        continue
        except cuframes.CuframesPublisherGone:
            # the publisher died or is restarting: subscribe again
            print(f"publisher {key} gone, reconnecting in 1 s")
            time.sleep(1)
        except cuframes.CuframesError as e:
            # anything else: log it and go on
            print(f"error: {e!r}")
            time.sleep(5)


class Done(Exception):
    pass


def test_reconnect_loop(runtime_dir: str, key: str, peers: list[Peer],
                        capsys: pytest.CaptureFixture[str]) -> None:
    """The documented reconnect loop survives a publisher killed with SIGKILL and restarted."""
    first = start_publisher(peers, key, "--auto-fps", "50", "--auto-tag", "1")
    seen: list[int] = []

    def on_frame(frame: cuframes.CuframesFrame) -> None:
        check_frame(frame, frame.pts_ns)
        incarnation = frame.pts_ns // 10**6
        seen.append(incarnation)
        if incarnation == 1 and len(seen) == 3:
            first.kill()
            peers.append(Peer("publish", key, "--auto-fps", "50", "--auto-tag", "2"))
        if incarnation == 2:
            raise Done

    with pytest.raises(Done):
        consume_camera(key, on_frame)
    assert seen[:3] == [1, 1, 1] and seen[-1] == 2
    assert f"publisher {key} gone, reconnecting in 1 s" in capsys.readouterr().out


def test_many_subscribers_content(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    """Three subscriber processes and one here, a publisher process: everyone checks content."""
    pub = start_publisher(peers, key, "--width", "640", "--height", "360",
                          "--policy", "STRICT_WAIT", "--slots", "6")
    subs = []
    for i in range(3):
        p = Peer("subscribe", key, "--count", "10", "--mode", "STRICT_ORDER", "--name", f"s{i}")
        peers.append(p)
        p.expect("READY")
        subs.append(p)
    with cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=5000) as mine:
        for tag in range(10):
            pub.call(f"pub {tag}")
            with mine.next_frame(timeout_ms=5000) as f:
                check_frame(f, tag)
                assert np.from_dlpack(f.yuv).shape == (540, 640)
        for p in subs:
            for tag in range(10):
                assert p.expect("FRAME")[1] == str(tag)
            assert p.expect("DONE")[0] == "10"
