"""The Python per-frame path on CUDA rings (issue 17): compact copies read by JAX, and the stream
semantics of publish(), next_frame(spin_us), exports, copies and releases."""

from __future__ import annotations

import os
from typing import Iterator

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave the GPU to the others

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import cuframes  # noqa: E402
from helpers import make_frame, wait_until  # noqa: E402
from torch_ahead import check_torch_ahead  # noqa: E402

PF = cuframes.PixelFormat
Mode = cuframes.SubscriberMode


@pytest.mark.parametrize("w,h,pitch", [(1366, 768, 1536), (1920, 1080, 2048)])
def test_jax_reads_compact_copies(runtime_dir: str, key: str, w: int, h: int, pitch: int) -> None:
    """JAX takes compact arrays only; frame planes have the ring's pitch. plane.compact() and
    __dlpack__(copy=True) give it (and anyone) a compact copy."""
    assert any(d.platform == "gpu" for d in jax.devices()), jax.devices()
    want = make_frame(PF.NV12, w, h, 5)
    with cuframes.publish(key, w, h, memory="cuda") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=5000) as sub:
        assert pub.pitch_y == pitch
        pub.publish(torch.from_numpy(want).cuda(), 5)
        with sub.next_frame(timeout_ms=5000) as frame:
            y = jnp.from_dlpack(frame.y.compact())
            uv = jnp.from_dlpack(frame.uv.compact())
            yuv = jnp.from_dlpack(frame.yuv.compact())
            t = torch.from_dlpack(frame.__dlpack__(copy=True))  # the capsule: torch's stream 1
            assert t.stride() == (w, 1) and t.data_ptr() != frame.cuda_ptr
            c = frame.y.compact()  # one copy, made now: ptr is its address, exports share it
            assert c.ptr != frame.cuda_ptr
            assert torch.from_dlpack(c).data_ptr() == c.ptr == torch.from_dlpack(c).data_ptr()
        assert y.shape == (h, w) and uv.shape == (h // 2, w) and yuv.shape == (h * 3 // 2, w)
        np.testing.assert_array_equal(np.asarray(y), want[:h])
        np.testing.assert_array_equal(np.asarray(uv), want[h:])
        np.testing.assert_array_equal(np.asarray(yuv), want)
        torch.cuda.synchronize()
        assert torch.equal(t.cpu(), torch.from_numpy(want[:h]))
        assert sub.stats()["held_frames"] == 0  # copies hold nothing of the ring


def test_copy_on_the_consumer_stream_release_after_it(runtime_dir: str, key: str) -> None:
    """The copy is queued on the consumer's stream (after its work there) and the frame's hold
    is dropped only once the copy has read it: no host wait anywhere."""
    w, h = 1366, 768
    stream = torch.cuda.Stream()
    with cuframes.publish(key, w, h, memory="cuda", slots=3) as pub, \
         cuframes.subscribe(key, connect_timeout_ms=5000, consumer_stream=stream) as sub:
        src = torch.from_numpy(make_frame(PF.NV12, w, h, 6)).cuda()
        pub.publish(src, 6)
        with torch.cuda.stream(stream):
            torch.cuda._sleep(400_000_000)  # ~0.2 s of GPU time queued before the copy
            with sub.next_frame(timeout_ms=5000) as frame:
                c = torch.from_dlpack(frame.yuv.compact())  # passes `stream`
        assert not stream.query()  # the copy has not run yet...
        assert sub.stats()["held_frames"] == 1  # ...so the frame is still held
        stream.synchronize()
        assert c.stride() == (w, 1) and torch.equal(c, src)
        wait_until(lambda: sub.stats()["held_frames"] == 0, what="the release after the copy")


@pytest.fixture
def torch_shortcut(request: pytest.FixtureRequest) -> Iterator[bool]:
    """publish()'s torch shortcut on or off for one test, back on after it."""
    cuframes._cuframes._torch_fast_path(request.param)
    yield request.param
    cuframes._cuframes._torch_fast_path(True)


@pytest.mark.parametrize("torch_shortcut", [True, False], indirect=True)
def test_publish_waits_for_the_producers_stream(runtime_dir: str, key: str,
                                                torch_shortcut: bool) -> None:
    """publish(tensor) with stream=None copies on the legacy default stream after the work the
    producer queued on its current stream; with an explicit stream, on that stream. Both through
    torch's C export with cuframes' ordering (the default) and through torch's __dlpack__."""
    w, h = 640, 360
    with cuframes.publish(key, w, h, memory="cuda") as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000) as sub:
        s = torch.cuda.Stream()
        src = torch.zeros((h * 3 // 2, w), dtype=torch.uint8, device="cuda")
        torch.cuda.synchronize()
        for tag, explicit in ((7, False), (8, True)):
            with torch.cuda.stream(s):
                torch.cuda._sleep(100_000_000)
                src.fill_(tag)  # written on s, after the sleep
                pub.publish(src, tag, stream=s if explicit else None)
            with sub.next_frame(timeout_ms=5000) as frame:
                got = torch.from_dlpack(frame.yuv)
                assert bool((got == tag).all()), (tag, explicit)
                del got


@pytest.mark.parametrize("view", [True, False])
def test_publish_reads_torch_tensors_in_place(runtime_dir: str, key: str, view: bool) -> None:
    """publish() of CUDA tensors through torch's C shim (view, the default; torch >= 2.4) and
    through torch's C export (_torch_view(False)): a whole frame, a view with an offset and a
    row stride, a (Y, UV) pair and int16 into P010, each copied on a busy current stream after
    the work queued there; a lazy negation refused; no reference kept. The twin of
    tests/python/test_fast_path.py::test_publish_torch_tensors_on_host_rings."""
    import sys

    cuframes._cuframes._torch_view(view)
    w, h = 640, 360
    try:
        with cuframes.publish(key, w, h, memory="cuda") as pub, \
             cuframes.publish(key + "-10", w, h, PF.P010, memory="cuda") as pub10, \
             cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000) as sub, \
             cuframes.subscribe(key + "-10", connect_timeout_ms=5000) as sub10:
            s = torch.cuda.Stream()
            whole = torch.from_numpy(make_frame(PF.NV12, w, h, 3)).cuda()
            wide = torch.zeros((h * 3 // 2 + 3, w + 50), dtype=torch.uint8, device="cuda")
            strided = wide[2:2 + h * 3 // 2, 7:7 + w]
            pair = (torch.empty_like(whole[:h]), strided[h:])
            torch.cuda.synchronize()
            for tag, src in enumerate((whole, strided, pair), start=1):
                with torch.cuda.stream(s):
                    torch.cuda._sleep(100_000_000)  # the writes below wait ~50 ms on s
                    want = torch.from_numpy(make_frame(PF.NV12, w, h, tag)).cuda()
                    if src is strided:
                        strided.copy_(want)
                    elif src is pair:
                        pair[0].copy_(want[:h])
                        pair[1].copy_(want[h:])
                    else:
                        whole.copy_(want)
                    parts = src if isinstance(src, tuple) else (src,)
                    refs = [sys.getrefcount(t) for t in parts]
                    pub.publish(src, tag)
                    assert refs == [sys.getrefcount(t) for t in parts], tag
                with sub.next_frame(timeout_ms=5000) as frame:
                    assert frame.pts_ns == tag
                    got = torch.from_dlpack(frame.yuv)
                    assert torch.equal(got, want), tag
                    del got
            p010 = torch.from_numpy(make_frame(PF.P010, w, h, 9).view(np.int16)).cuda()
            pub10.publish(p010, 9)
            with sub10.next_frame(timeout_ms=5000) as frame:
                assert bool((torch.from_dlpack(frame.yuv).view(torch.int16) == p010).all())
            before = pub.stats()["published"]
            with pytest.raises(cuframes.CuframesInvalidArgument, match="negative bit"):
                pub.publish(torch._neg_view(whole), 5)
            assert pub.stats()["published"] == before
        assert cuframes._cuframes._torch_native_used()[2], torch.__version__
    finally:
        cuframes._cuframes._torch_view(True)


def test_spin_us_on_a_cuda_ring(runtime_dir: str, key: str) -> None:
    """spin_us from Python on a cuda ring: every paced frame arrives intact."""
    w, h = 1366, 768
    stream = torch.cuda.Stream()
    frames = [torch.from_numpy(make_frame(PF.NV12, w, h, t)).cuda() for t in range(4)]
    with cuframes.publish(key, w, h, memory="cuda") as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000,
                            consumer_stream=stream, spin_us=300) as sub:
        torch.cuda.synchronize()
        for i in range(40):
            seq = pub.publish(frames[i % 4], i % 4)
            with torch.cuda.stream(stream), sub.next_frame(timeout_ms=5000) as frame:
                assert frame.seq == seq
                got = torch.from_dlpack(frame.yuv)
                stream.synchronize()
                assert torch.equal(got, frames[frame.pts_ns])
                del got
        assert sub.gap_count == 0


@pytest.mark.parametrize("torch_shortcut", [True, False], indirect=True)
@pytest.mark.parametrize("memory", ["cuda", "host"])
def test_frame_torch_is_torch_from_dlpack(runtime_dir: str, key: str, torch_shortcut: bool,
                                          memory: str) -> None:
    """frame.torch(plane) is the tensor torch.from_dlpack(frame.<plane>) gives (the same memory,
    shape, strides, dtype and device) for each plane, through torch's C import (the default) and
    through torch.from_dlpack; loan.torch(plane) writes a slot in place."""
    w, h = 1366, 768
    want = [make_frame(PF.NV12, w, h, t) for t in (3, 4)]
    with cuframes.publish(key, w, h, memory=memory) as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000) as sub:
        pub.publish(torch.from_numpy(want[0]).cuda() if memory == "cuda" else want[0], 3)
        with pub.loan() as loan:
            loan.torch("yuv").copy_(torch.from_numpy(want[1]))
            assert loan.torch().data_ptr() == loan.cuda_ptr
            loan.pts_ns = 4
        if memory == "cuda":
            torch.cuda.synchronize()  # the loan's copy ran on torch's current stream
        for tag, data in zip((3, 4), want):
            with sub.next_frame(timeout_ms=5000) as frame:
                assert frame.pts_ns == tag
                for plane in ("y", "uv", "yuv"):
                    a = frame.torch(plane)
                    b = torch.from_dlpack(getattr(frame, plane))
                    assert (a.data_ptr(), a.shape, a.stride(), a.dtype, a.device) == \
                        (b.data_ptr(), b.shape, b.stride(), b.dtype, b.device), plane
                    assert a.device.type == memory.replace("host", "cpu")
                    del a, b
                y = frame.torch()  # plane "y" by default
                assert y.stride() == (frame.pitch_y, 1)
                assert torch.equal(y.cpu(), torch.from_numpy(data[:h]))
                assert torch.equal(frame.torch("yuv").cpu(), torch.from_numpy(data))
                if memory == "host":
                    with pytest.raises(BufferError):
                        frame.torch(stream=torch.cuda.current_stream())
                del y
        assert sub.stats()["held_frames"] == 0


@pytest.mark.parametrize("torch_shortcut", [True, False], indirect=True)
def test_frame_torch_holds_until_its_stream_is_done(runtime_dir: str, key: str,
                                                    torch_shortcut: bool) -> None:
    """frame.torch() orders on torch's current stream, frame.torch(stream=s) on s: the frame's
    hold is dropped only once the work queued there before the release has run. The ring's
    3 slots come round, so with the shortcut the fourth frame's tensor was made ahead, and the
    current stream (a non-default one) was asked of torch's C function after the first."""
    w, h = 640, 360
    current, other = torch.cuda.Stream(), torch.cuda.Stream()
    with cuframes.publish(key, w, h, memory="cuda", slots=3) as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000) as sub:
        src = torch.from_numpy(make_frame(PF.NV12, w, h, 9)).cuda()
        # the sum's kernel loaded now: CUDA's lazy loading of a module can wait for the GPU
        expect = int(src.sum(dtype=torch.int64))
        torch.cuda.synchronize()
        for explicit in (False, False, False, False, True):
            pub.publish(src, 9)
            busy = other if explicit else current
            with torch.cuda.stream(current), sub.next_frame(timeout_ms=5000) as frame:
                with torch.cuda.stream(busy):
                    torch.cuda._sleep(400_000_000)  # ~0.2 s of GPU time before the read
                x = frame.torch("yuv", stream=other) if explicit else frame.torch("yuv")
                with torch.cuda.stream(busy):
                    total = x.sum(dtype=torch.int64)  # reads the frame after the sleep
                del x
            assert not busy.query(), explicit  # the read has not run yet...
            assert sub.stats()["held_frames"] == 1, explicit  # ...so the frame is still held
            busy.synchronize()
            assert int(total) == expect, explicit
            wait_until(lambda: sub.stats()["held_frames"] == 0,
                       what=f"the release after the read (explicit={explicit})")
        made, taken = sub._torch_ahead()
        if torch_shortcut:
            assert taken >= 1, (made, taken)
            # torch's current stream came from its C shim (torch >= 2.2): the holds above
            # waited for the right stream with it
            if tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 2):
                assert cuframes._cuframes._torch_native_used()[0], torch.__version__
        else:
            assert (made, taken) == (0, 0)


@pytest.mark.parametrize("fast,ahead,native", [(True, True, True), (True, False, True),
                                               (False, True, True), (True, True, False)])
@pytest.mark.parametrize("memory", ["cuda", "host"])
def test_frame_torch_made_ahead(runtime_dir: str, key: str, memory: str, fast: bool,
                                ahead: bool, native: bool) -> None:
    """The tensors next_frame() makes ahead for frame.torch() (tests/python/torch_ahead.py): the
    twin of tests/python/test_fast_path.py::test_frame_torch_made_ahead_on_host_rings."""
    check_torch_ahead(cuframes, torch, key, runtime_dir, memory, fast, ahead, native)


def test_frame_synchronize_waits_for_the_frames_streams(runtime_dir: str, key: str) -> None:
    """frame.synchronize() returns once the work queued on the consumer stream and on every stream
    the frame's tensors were ordered on has run (and at once when they are idle)."""
    w, h = 640, 360
    consumer, other = torch.cuda.Stream(), torch.cuda.Stream()
    with cuframes.publish(key, w, h, memory="cuda", slots=3) as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000,
                            consumer_stream=consumer) as sub:
        src = torch.from_numpy(make_frame(PF.NV12, w, h, 4)).cuda()
        torch.cuda.synchronize()
        for busy in (None, consumer, other):
            pub.publish(src, 4)
            with sub.next_frame(timeout_ms=5000) as frame:
                if busy is None:
                    frame.synchronize()  # nothing queued: returns at once
                    continue
                with torch.cuda.stream(busy):
                    torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time
                    x = frame.torch("yuv")  # ordered on busy: the frame records it
                assert not busy.query()
                frame.synchronize()
                assert busy.query(), busy is consumer
                assert torch.equal(x.cpu(), src.cpu())
                del x
        # ordered on more streams than it looks at one by one: the device is synchronised
        pub.publish(src, 5)
        streams = [torch.cuda.Stream() for _ in range(10)]
        with sub.next_frame(timeout_ms=5000) as frame:
            tensors = []
            for s in streams:
                with torch.cuda.stream(s):
                    tensors.append(frame.torch("yuv"))
            with torch.cuda.stream(streams[-1]):
                torch.cuda._sleep(200_000_000)
            assert not streams[-1].query()
            frame.synchronize()
            assert all(s.query() for s in streams)
            del tensors
        frame.release()
        with pytest.raises(cuframes.CuframesInvalidArgument, match="released"):
            frame.synchronize()
