"""asyncio (next_frame_async, frames()) and the on_frame callback thread."""

from __future__ import annotations

import asyncio
import queue
import threading
import time

import pytest

import cuframes
from helpers import Peer, check_frame, make_frame

PF = cuframes.PixelFormat


def test_next_frame_async(runtime_dir: str, key: str) -> None:
    async def main() -> None:
        with cuframes.publish(key, 320, 240, memory="host") as pub, \
             cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
            loop = asyncio.get_running_loop()
            # Published from the loop while the coroutine waits on the fd.
            loop.call_later(0.05, pub.publish, make_frame(PF.NV12, 320, 240, 3), 3)
            frame = await sub.next_frame_async(timeout_ms=5000)
            with frame:
                check_frame(frame, 3)
            assert sub.frames_received == 1
            t0 = loop.time()
            with pytest.raises(cuframes.CuframesFrameTimeout):
                await sub.next_frame_async(timeout_ms=50)
            assert loop.time() - t0 >= 0.045
            assert sub.timeouts == 1  # counted through note_timeout
            with pytest.raises(cuframes.CuframesFrameTimeout):
                await sub.next_frame_async(timeout_ms=0)
            assert sub.timeouts == 1  # timeout 0 never counts

    asyncio.run(main())


def test_async_does_not_block_the_loop(runtime_dir: str, key: str) -> None:
    """While one coroutine waits for a frame, others run: no thread, no blocking wait."""
    async def main() -> None:
        with cuframes.publish(key, 64, 64, memory="host") as pub, \
             cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                for _ in range(5):
                    ticks += 1
                    await asyncio.sleep(0)
                pub.publish(make_frame(PF.NV12, 64, 64, 1), 1)

            waiter = asyncio.ensure_future(sub.next_frame_async(timeout_ms=5000))
            await ticker()
            frame = await waiter
            assert ticks == 5 and frame.pts_ns == 1
            frame.release()
            assert threading.active_count() == 1  # no Python thread was started to wait

    asyncio.run(main())


def test_async_for_frames(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    pub = Peer("publish", key, "--width", "1366", "--height", "768")
    peers.append(pub)
    pub.expect("READY")

    async def main() -> list[int]:
        got: list[int] = []
        with cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                                connect_timeout_ms=5000) as sub:
            loop = asyncio.get_running_loop()
            for tag in range(1, 6):
                await loop.run_in_executor(None, pub.call, f"pub {tag}")
            previous = None
            async for frame in sub.frames(timeout_ms=5000):
                check_frame(frame, frame.pts_ns)
                if previous is not None:
                    assert previous.released  # released when the loop moved on
                previous = frame
                got.append(frame.seq)
                if len(got) == 5:
                    break
            await asyncio.sleep(0)
        return got

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]


def test_async_publisher_gone(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    pub = Peer("publish", key)
    peers.append(pub)
    pub.expect("READY")

    async def main() -> None:
        with cuframes.subscribe(key, connect_timeout_ms=5000) as sub:
            waiter = asyncio.ensure_future(sub.next_frame_async())
            await asyncio.sleep(0)
            pub.kill()
            with pytest.raises(cuframes.CuframesPublisherGone):
                await asyncio.wait_for(waiter, 20)
            with pytest.raises(cuframes.CuframesPublisherGone):
                async for _ in sub.frames():
                    pass

    asyncio.run(main())


def test_on_frame_callback(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 640, 360, memory="host",
                          policy=cuframes.PublisherPolicy.STRICT_WAIT, wait_timeout_ms=5000) as pub, \
         cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=2000) as sub:
        got: queue.Queue[tuple[int, int, bool]] = queue.Queue()
        main_thread = threading.get_ident()
        frames: list[cuframes.CuframesFrame] = []

        def on_frame(frame: cuframes.CuframesFrame) -> None:
            check_frame(frame, frame.pts_ns)
            frames.append(frame)
            got.put((frame.seq, frame.pts_ns, threading.get_ident() != main_thread))

        sub.on_frame(on_frame)
        assert sub.callback_running
        with pytest.raises(cuframes.CuframesInvalidArgument):
            sub.next_frame(timeout_ms=0)  # frames go to the callback now
        for tag in range(1, 21):
            pub.publish(make_frame(PF.NV12, 640, 360, tag), tag)
        for tag in range(1, 21):
            assert got.get(timeout=10) == (tag, tag, True)
        assert all(f.released for f in frames)  # released when the callback returned
        assert sub.frames_received == 20
        sub.on_frame(None)
        assert not sub.callback_running
        pub.publish(make_frame(PF.NV12, 640, 360, 99), 99)
        with sub.next_frame(timeout_ms=2000) as f:  # back to next_frame
            assert f.pts_ns == 99
        assert got.empty()


def test_on_frame_stop_from_inside(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host") as pub, \
         cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=2000) as sub:
        seen: list[int] = []
        stopped = threading.Event()

        def on_frame(frame: cuframes.CuframesFrame) -> None:
            seen.append(frame.seq)
            with pytest.raises(cuframes.CuframesInvalidArgument):
                sub.close()  # not from inside: it would join its own thread
            sub.on_frame(None)  # stops delivery at once
            stopped.set()

        sub.on_frame(on_frame)
        pub.publish(make_frame(PF.NV12, 64, 64, 1), 1)
        assert stopped.wait(10)
        assert not sub.callback_running
        sub.on_frame(None)  # from this thread: joins the library's thread
        pub.publish(make_frame(PF.NV12, 64, 64, 2), 2)
        with sub.next_frame(timeout_ms=2000) as f:  # back to next_frame
            assert f.seq == 2
        assert seen == [1]
        # A stop from inside is also completed by the next next_frame() from another thread.
        sub.on_frame(on_frame)
        stopped.clear()
        pub.publish(make_frame(PF.NV12, 64, 64, 3), 3)
        assert stopped.wait(10)
        with pytest.raises(cuframes.CuframesFrameTimeout):
            sub.next_frame(timeout_ms=0)  # joined the thread, then found nothing new
        assert seen == [1, 3]


def test_on_frame_errors_and_publisher_gone(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    pub = Peer("publish", key)
    peers.append(pub)
    pub.expect("READY")
    with cuframes.subscribe(key, connect_timeout_ms=5000) as sub:
        errors: queue.Queue[BaseException] = queue.Queue()
        frames: queue.Queue[int] = queue.Queue()
        sub.on_frame(lambda f: frames.put(f.pts_ns), on_error=errors.put)
        pub.call("pub 7")
        assert frames.get(timeout=10) == 7
        pub.kill()
        e = errors.get(timeout=10)
        assert isinstance(e, cuframes.CuframesPublisherGone) and e.status == "PUBLISHER_GONE"
        assert not sub.callback_running  # the library's thread ended after PUBLISHER_GONE
        with pytest.raises(cuframes.CuframesPublisherGone):
            sub.next_frame(timeout_ms=0)


def test_on_frame_exception_is_reported(runtime_dir: str, key: str) -> None:
    """An exception in the callback goes to sys.unraisablehook; delivery goes on."""
    import sys

    reported: queue.Queue[BaseException] = queue.Queue()
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: reported.put(u.exc_value)  # type: ignore[assignment]
    try:
        with cuframes.publish(key, 64, 64, memory="host") as pub, \
             cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                                connect_timeout_ms=2000) as sub:
            ok: queue.Queue[int] = queue.Queue()

            def on_frame(frame: cuframes.CuframesFrame) -> None:
                if frame.seq == 1:
                    raise KeyError("boom")
                ok.put(frame.seq)

            sub.on_frame(on_frame)
            pub.publish(make_frame(PF.NV12, 64, 64, 1))
            assert isinstance(reported.get(timeout=10), KeyError)
            pub.publish(make_frame(PF.NV12, 64, 64, 2))
            assert ok.get(timeout=10) == 2
    finally:
        sys.unraisablehook = old


def test_callback_thread_stopped_at_exit(runtime_dir: str, key: str) -> None:
    """A process that exits with a callback still installed exits cleanly (atexit stops it)."""
    import subprocess
    import sys

    code = f"""
import cuframes, numpy as np
pub = cuframes.publish({key!r}, 64, 64, memory="host")
sub = cuframes.subscribe({key!r}, connect_timeout_ms=2000)
got = []
sub.on_frame(lambda f: got.append(f.seq))
for i in range(50):
    pub.publish(np.zeros((96, 64), np.uint8))
print("exiting", flush=True)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "exiting"


def test_gil_released_while_waiting(runtime_dir: str, key: str) -> None:
    """Another Python thread runs while next_frame waits."""
    with cuframes.publish(key, 64, 64, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        counted = threading.Event()
        count = 0

        def spin() -> None:
            nonlocal count
            while count < 1000:
                count += 1
            counted.set()
            pub.publish(make_frame(PF.NV12, 64, 64, 5), 5)

        t = threading.Thread(target=spin)
        t0 = time.monotonic()
        t.start()
        with sub.next_frame(timeout_ms=20000) as f:  # only returns if spin() could run
            assert f.pts_ns == 5
        assert counted.is_set() and time.monotonic() - t0 < 10
        t.join()


def test_one_thread_per_subscriber(runtime_dir: str, key: str) -> None:
    """A second thread using a subscriber that is waiting gets an error, never a crash."""
    with cuframes.publish(key, 64, 64, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        entered = threading.Event()
        out: list[object] = []

        def wait() -> None:
            entered.set()
            while True:
                try:
                    out.append(sub.next_frame(timeout_ms=20000).seq)
                    return
                except cuframes.CuframesInvalidArgument:
                    continue  # collided with the main thread's probe: a refusal, as designed

        t = threading.Thread(target=wait)
        t.start()
        entered.wait()
        # The waiter may not be inside yet: retry until it is (the refusal is the event).
        deadline = time.monotonic() + 10
        while True:
            try:
                sub.next_frame(timeout_ms=0)
            except cuframes.CuframesFrameTimeout:
                assert time.monotonic() < deadline
                continue
            except cuframes.CuframesInvalidArgument as e:
                assert "two threads" in str(e)
                break
        with pytest.raises(cuframes.CuframesInvalidArgument, match="another thread"):
            sub.close()
        assert sub.stats()["frames_received"] == 0  # counters: any thread
        pub.publish(make_frame(PF.NV12, 64, 64, 1))
        t.join(20)
        assert out == [1]
