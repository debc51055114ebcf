"""Publisher and subscriber in one process, host memory: content, geometry, DLPack, counters."""

from __future__ import annotations

import ctypes
import gc
import weakref

import numpy as np
import pytest

import cuframes
from helpers import check_frame, make_frame

PF = cuframes.PixelFormat
Mode = cuframes.SubscriberMode


@pytest.mark.parametrize("fmt,w,h,pitch", [
    (PF.NV12, 1366, 768, 1408),   # host rings align rows to 64 bytes
    (PF.P010, 1366, 768, 2752),   # 2 bytes a sample
    (PF.GRAY8, 641, 479, 704),
    (PF.NV12, 64, 2, 64),
])
def test_content_round_trip(runtime_dir: str, key: str, fmt: PF, w: int, h: int, pitch: int) -> None:
    with cuframes.publish(key, w, h, fmt, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        assert pub.pitch_y == pitch
        assert (sub.width, sub.height, sub.format, sub.memory) == (w, h, fmt, "host")
        for tag in (11, 12, 13):
            seq = pub.publish(make_frame(fmt, w, h, tag), pts_ns=tag)
            with sub.next_frame(timeout_ms=2000) as frame:
                assert frame.seq == seq == tag - 10
                assert frame.pts_ns == tag
                assert (frame.width, frame.height, frame.format) == (w, h, fmt)
                assert frame.pitch_y == pitch
                assert frame.pitch_uv == (0 if fmt == PF.GRAY8 else pitch)
                assert frame.bytes_per_sample == (2 if fmt == PF.P010 else 1)
                assert frame.memory == "host" and frame.device == -1
                check_frame(frame, tag)


def test_frame_properties_and_release(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 320, 240, memory="host") as pub, \
         cuframes.subscribe(key, consumer_name="props", connect_timeout_ms=2000) as sub:
        before = cuframes.now_ns()
        pub.publish(make_frame(PF.NV12, 320, 240, 1))
        frame = sub.next_frame()
        assert before <= frame.pts_ns <= cuframes.now_ns()  # pts defaults to CLOCK_MONOTONIC now
        assert frame.pts_ns <= frame.publish_ns
        assert frame.cuda_ptr != 0 and frame.uv_ptr == frame.cuda_ptr + frame.pitch_y * 240
        assert 0 <= frame.slot < 8
        assert not frame.released
        assert "seq=1" in repr(frame)
        assert sub.stats()["ring_occupancy"] == 1
        with frame as f:
            assert f is frame
        assert frame.released
        assert sub.stats()["ring_occupancy"] == 0
        frame.release()  # idempotent
        with pytest.raises(TypeError, match="exactly 3 arguments"):
            frame.__exit__(None, None)
        with pytest.raises(TypeError, match="no keyword"):
            frame.__exit__(None, None, traceback=None)
        pub.publish(make_frame(PF.NV12, 320, 240, 2))
        with pytest.raises(KeyError):  # an exception in the block propagates, the frame released
            with sub.next_frame(timeout_ms=2000) as other:
                raise KeyError("in the block")
        assert other.released and sub.stats()["ring_occupancy"] == 0
        assert frame.width == 320 and frame.seq == 1  # metadata stays readable
        with pytest.raises(cuframes.CuframesInvalidArgument, match="released"):
            frame.dlpack_y()
        with pytest.raises(cuframes.CuframesInvalidArgument):
            np.from_dlpack(frame)


def test_dlpack_device_and_numpy(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 1366, 768, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        pub.publish(make_frame(PF.NV12, 1366, 768, 5), 5)
        with sub.next_frame() as frame:
            assert frame.__dlpack_device__() == (1, 0)
            y = np.from_dlpack(frame)  # __dlpack__: the Y plane
            assert y.shape == (768, 1366) and y.strides == (1408, 1)
            assert not y.flags.writeable  # versioned capsule, READ_ONLY flag
            yuv = np.from_dlpack(frame.yuv)
            assert yuv.shape == (1152, 1366) and yuv.strides == (1408, 1)
            np.testing.assert_array_equal(yuv, make_frame(PF.NV12, 1366, 768, 5))
            assert frame.uv.shape == (384, 1366) and frame.uv.strides == (1408, 1)
            assert frame.y.dtype == "uint8" and frame.y.name == "y" and frame.y.frame is frame
            assert frame.uv.ptr == frame.uv_ptr


def test_gray8_has_no_uv(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 48, PF.GRAY8, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        pub.publish(make_frame(PF.GRAY8, 64, 48, 1))
        with sub.next_frame() as frame:
            with pytest.raises(cuframes.CuframesInvalidArgument, match="no UV"):
                frame.dlpack_uv()
            with pytest.raises(cuframes.CuframesInvalidArgument):
                frame.uv
            assert np.from_dlpack(frame.yuv).shape == (48, 64)


# ---- DLPack capsules, read with ctypes as a C consumer would --------------------------------

class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    pass


DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p),
                            ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor)))]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    pass


DLManagedTensorVersioned._fields_ = [
    ("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))),
    ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor)]

_api = ctypes.pythonapi
_api.PyCapsule_GetName.restype = ctypes.c_char_p
_api.PyCapsule_GetName.argtypes = [ctypes.py_object]
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_api.PyCapsule_SetName.restype = ctypes.c_int
_api.PyCapsule_SetName.argtypes = [ctypes.py_object, ctypes.c_char_p]


def consume(capsule: object) -> tuple[object, DLTensor, int]:
    """Takes a capsule the way the DLPack spec says a consumer must: reads it, renames it to
    used_..., and from then on owns the managed tensor (returned with its flags)."""
    name = _api.PyCapsule_GetName(capsule)
    ptr = _api.PyCapsule_GetPointer(capsule, name)
    if name == b"dltensor_versioned":
        m = ctypes.cast(ptr, ctypes.POINTER(DLManagedTensorVersioned)).contents
        assert (m.version.major, m.version.minor) == (1, 0)
        flags = m.flags
    else:
        assert name == b"dltensor"
        m = ctypes.cast(ptr, ctypes.POINTER(DLManagedTensor)).contents
        flags = -1
    assert _api.PyCapsule_SetName(capsule, b"used_" + name) == 0
    return m, m.dl_tensor, flags


def test_capsules_legacy_and_versioned(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 1366, 768, PF.P010, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        pub.publish(make_frame(PF.P010, 1366, 768, 3))
        with sub.next_frame() as frame:
            legacy = frame.dlpack_y()
            assert _api.PyCapsule_GetName(legacy) == b"dltensor"
            versioned = frame.__dlpack__(max_version=(1, 0))
            assert _api.PyCapsule_GetName(versioned) == b"dltensor_versioned"
            assert _api.PyCapsule_GetName(frame.__dlpack__(max_version=(0, 8))) == b"dltensor"
            assert _api.PyCapsule_GetName(frame.dlpack_uv(max_version=(1, 2))) == b"dltensor_versioned"
            m, t, flags = consume(versioned)
            assert flags & 1  # DLPACK_FLAG_BITMASK_READ_ONLY
            assert (t.device.device_type, t.device.device_id) == (1, 0)
            assert t.ndim == 2 and (t.dtype.code, t.dtype.bits, t.dtype.lanes) == (1, 16, 1)
            assert (t.shape[0], t.shape[1]) == (768, 1366)
            assert (t.strides[0], t.strides[1]) == (frame.pitch_y // 2, 1)  # in elements
            assert t.data == frame.cuda_ptr and t.byte_offset == 0
            m2, t2, _ = consume(frame.dlpack_uv())
            assert (t2.shape[0], t2.shape[1]) == (384, 1366) and t2.data == frame.uv_ptr
        # The frame is released, but the consumed tensors still hold the slot...
        assert sub.stats()["held_frames"] == 1
        assert sub.ring_occupancy == 1
        m.deleter(ctypes.pointer(m))  # the consumer frees its tensors
        assert sub.stats()["held_frames"] == 1
        m2.deleter(ctypes.pointer(m2))
        assert sub.stats()["held_frames"] == 1  # the unconsumed legacy capsule
        del legacy  # an unconsumed capsule releases its share when collected
        gc.collect()
        assert sub.stats()["held_frames"] == 0
        assert sub.ring_occupancy == 0


def test_dlpack_arguments(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        pub.publish(make_frame(PF.NV12, 64, 64, 1))
        with sub.next_frame() as frame:
            frame.__dlpack__(stream=None, dl_device=(1, 0), copy=False)
            frame.__dlpack__(stream=-1)
            with pytest.raises(BufferError, match="stream"):
                frame.__dlpack__(stream=5)  # host frames: stream must be None
            with pytest.raises(BufferError, match="device"):
                frame.__dlpack__(dl_device=(2, 0))
            with pytest.raises(TypeError):
                frame.__dlpack__(None)  # keyword-only, as the protocol says
            # copy=True: a compact copy (test_fast_path.py)


def test_released_frame_objects_are_kept_then_reused(runtime_dir: str, key: str) -> None:
    """next_frame() keeps the frame object its user released last, so that binding the name to
    the next frame frees nothing inside the wake, and reuses a released one that nothing refers
    to any more; never one still referred to, and never a frame dropped unreleased."""
    w, h = 64, 32
    with cuframes.publish(key, w, h, memory="host", slots=4) as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        ids = []
        for tag in range(1, 9):
            pub.publish(make_frame(PF.NV12, w, h, tag), tag)
            frame = sub.next_frame(timeout_ms=1000)
            assert (frame.seq, frame.pts_ns, frame.released) == (tag, tag, False)
            assert "released" not in repr(frame)
            check_frame(frame, tag)
            ids.append(id(frame))
            frame.release()
        assert len(set(ids)) == 2  # the loop's two objects take turns

        # Referred to (a list): never reused, each keeps its own frame's description.
        held = []
        for tag in range(9, 13):
            pub.publish(make_frame(PF.NV12, w, h, tag), tag)
            with sub.next_frame(timeout_ms=1000) as f:
                held.append(f)
        assert [(f.seq, f.pts_ns, f.released) for f in held] == [(t, t, True) for t in range(9, 13)]
        assert len({id(f) for f in held}) == 4

        # Released and let go of: kept (alive) until the next frame is released, then freed, as
        # a weak reference to it stops it from being reused.
        pub.publish(make_frame(PF.NV12, w, h, 13), 13)
        f = sub.next_frame(timeout_ms=1000)
        ref = weakref.ref(f)
        f.release()
        del f
        assert ref() is not None and ref().pts_ns == 13
        pub.publish(make_frame(PF.NV12, w, h, 14), 14)
        with sub.next_frame(timeout_ms=1000) as g:
            assert g is not ref() and g.pts_ns == 14
        assert ref() is None

        # Dropped unreleased: released at once, as before.
        pub.publish(make_frame(PF.NV12, w, h, 15), 15)
        g = sub.next_frame(timeout_ms=1000)
        assert sub.stats()["ring_occupancy"] == 1
        ref = weakref.ref(g)
        del g
        assert ref() is None and sub.stats()["ring_occupancy"] == 0

        # Closing lets go of the one kept; frames released after it are kept by nobody.
        pub.publish(make_frame(PF.NV12, w, h, 16), 16)
        f = sub.next_frame(timeout_ms=1000)
        pub.publish(make_frame(PF.NV12, w, h, 17), 17)
        f.release()
        ref = weakref.ref(f)
        del f
        assert ref() is not None
        pub.publish(make_frame(PF.NV12, w, h, 18), 18)
        late = sub.next_frame(timeout_ms=1000)
        sub.close()
        assert ref() is None
        late_ref = weakref.ref(late)
        late.release()
        del late
        assert late_ref() is None


def test_held_frame_is_never_overwritten(runtime_dir: str, key: str) -> None:
    """A held frame keeps its content while the publisher laps the ring many times."""
    w, h = 200, 100
    with cuframes.publish(key, w, h, memory="host", slots=3) as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        pub.publish(make_frame(PF.NV12, w, h, 1), 1)
        held = sub.next_frame()
        view = np.from_dlpack(held.yuv)
        dropped = 0
        for tag in range(2, 40):
            if pub.publish(make_frame(PF.NV12, w, h, tag), tag) == 0:
                dropped += 1
            with sub.next_frame(timeout_ms=1000) as f:
                check_frame(f, f.pts_ns)
        np.testing.assert_array_equal(view, make_frame(PF.NV12, w, h, 1))
        check_frame(held, 1)
        assert dropped == 0  # 3 slots: one held, one newest, one to write
        held.release()
        del view


def test_drop_policy_returns_zero(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host", slots=2) as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        assert pub.publish(make_frame(PF.NV12, 64, 64, 1)) == 1
        a = sub.next_frame()
        assert pub.publish(make_frame(PF.NV12, 64, 64, 2)) == 2
        b = sub.next_frame()
        # Both slots held: DROP drops the new frame, returns 0 and counts it.
        assert pub.publish(make_frame(PF.NV12, 64, 64, 3)) == 0
        assert pub.stats()["dropped"] == 1
        assert sub.publisher_dropped == 1
        assert sub.stats()["publisher_dropped"] == 1
        assert pub.stats()["held_slots"] == 2 == sub.ring_occupancy
        with pytest.raises(cuframes.CuframesFrameTimeout):
            pub.loan()  # a loan cannot drop silently: it raises, and also counts
        assert pub.stats()["dropped"] == 2
        a.release()
        assert pub.publish(make_frame(PF.NV12, 64, 64, 4)) == 3
        b.release()


def test_strict_wait_times_out(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host", slots=2,
                          policy=cuframes.PublisherPolicy.STRICT_WAIT, wait_timeout_ms=50) as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        assert pub.policy == cuframes.PublisherPolicy.STRICT_WAIT
        pub.publish(make_frame(PF.NV12, 64, 64, 1))
        a = sub.next_frame()
        pub.publish(make_frame(PF.NV12, 64, 64, 2))
        b = sub.next_frame()
        with pytest.raises(cuframes.CuframesFrameTimeout):
            pub.publish(make_frame(PF.NV12, 64, 64, 3))
        st = pub.stats()
        assert st["dropped"] == 1 and st["blocked_ns"] >= 40_000_000
        a.release()
        b.release()
        assert pub.publish(make_frame(PF.NV12, 64, 64, 4)) == 3


def test_newest_only_counts_gaps(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        assert sub.mode == Mode.NEWEST_ONLY
        pub.publish(make_frame(PF.NV12, 64, 64, 1), 1)
        with sub.next_frame() as f:
            assert f.seq == 1
        for tag in range(2, 7):
            pub.publish(make_frame(PF.NV12, 64, 64, tag), tag)
        with sub.next_frame() as f:
            assert f.seq == 6 and f.pts_ns == 6
            check_frame(f, 6)
        assert sub.gap_count == 4
        assert sub.last_seq == 6
        assert sub.last_frame_pts_ns == 6
        assert sub.frames_received == 2
        s = sub.stats()
        assert (s["gap_count"], s["last_seq"], s["frames_received"]) == (4, 6, 2)
        assert s["publisher_published"] == 6 and s["publisher_last_seq"] == 6
        with pytest.raises(cuframes.CuframesFrameTimeout):
            sub.next_frame(timeout_ms=0)  # nothing newer; 0 = do not wait, not counted
        assert sub.timeouts == 0


def test_timeouts_are_counted(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host"), \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        for i in range(3):
            t0 = cuframes.now_ns()
            with pytest.raises(cuframes.CuframesFrameTimeout, match="within 30 ms"):
                sub.next_frame(timeout_ms=30)
            assert cuframes.now_ns() - t0 >= 29_000_000
        assert sub.timeouts == 3
        assert sub.errors == 0
        assert sub.stats()["timeouts"] == 3


def test_strict_order_and_overrun(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host", slots=4) as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=2000) as sub:
        assert sub.mode == Mode.STRICT_ORDER
        for tag in range(1, 4):
            pub.publish(make_frame(PF.NV12, 64, 64, tag), tag)
        got = []
        for _ in range(3):
            with sub.next_frame(timeout_ms=1000) as f:
                check_frame(f, f.pts_ns)
                got.append(f.seq)
        assert got == [1, 2, 3]
        for tag in range(4, 14):  # 10 frames into 4 slots: lapped
            pub.publish(make_frame(PF.NV12, 64, 64, tag), tag)
        with pytest.raises(cuframes.CuframesOverrun) as e:
            sub.next_frame(timeout_ms=1000)
        assert e.value.status == "OVERRUN"
        assert sub.overruns == 1 and sub.errors == 1
        rest = []
        while True:
            try:
                with sub.next_frame(timeout_ms=0) as f:
                    check_frame(f, f.pts_ns)
                    rest.append(f.seq)
            except cuframes.CuframesFrameTimeout:
                break
        assert rest == list(range(rest[0], 14)) and rest[0] > 4
        assert sub.gap_count == rest[0] - 4


def test_publish_sources(runtime_dir: str, key: str) -> None:
    w, h = 1366, 768
    with cuframes.publish(key, w, h, memory="host") as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=2000) as sub:
        frame = make_frame(PF.NV12, w, h, 7)
        # any row stride: a column slice of a wider array
        wide = np.zeros((h * 3 // 2, w + 37), np.uint8)
        wide[:, :w] = frame
        pub.publish(wide[:, :w], 7)
        # a (y, uv) pair of plane arrays with different pitches
        y = np.zeros((h, 1500), np.uint8)
        y[:, :w] = frame[:h]
        pub.publish((y[:, :w], np.ascontiguousarray(frame[h:])), 7)
        # a raw capsule
        pub.publish(frame.__dlpack__(), 7)
        for _ in range(3):
            with sub.next_frame(timeout_ms=1000) as f:
                check_frame(f, 7)
        bad = [
            (np.zeros((h, w), np.uint8), "shape"),                 # no UV rows
            (np.zeros((h * 3 // 2, w), np.uint16), "uint8"),       # wrong dtype
            (np.zeros((h * 3 // 2, w * 2), np.uint8)[:, ::2], "contiguous"),  # strided columns
            (np.zeros((h * 3 // 2 * w,), np.uint8), "2-D"),
            ((np.zeros((h, w), np.uint8),), "plane"),
        ]
        for src, msg in bad:
            with pytest.raises(cuframes.CuframesInvalidArgument, match=msg):
                pub.publish(src)
        with pytest.raises(TypeError, match="DLPack"):
            pub.publish(b"not an array")
        with pytest.raises(TypeError):
            pub.publish(frame, pts_ns=1.5)  # type: ignore[arg-type]
        assert pub.stats()["published"] == 3


def test_relay_a_frame(runtime_dir: str, key: str) -> None:
    """A subscriber's (read-only) frame is a valid source for another publisher: a relay."""
    with cuframes.publish(key, 640, 360, memory="host") as pub, \
         cuframes.publish(key + "-relay", 640, 360, memory="host") as relay, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub, \
         cuframes.subscribe(key + "-relay", mode=Mode.STRICT_ORDER, connect_timeout_ms=2000) as out:
        pub.publish(make_frame(PF.NV12, 640, 360, 4), 4)
        with sub.next_frame() as f:
            assert relay.publish(f.yuv, f.pts_ns) == 1  # via DLPack, no copy in Python
            assert relay.publish(np.from_dlpack(f.yuv), f.pts_ns) == 2  # a read-only array
        for _ in range(2):
            with out.next_frame(timeout_ms=1000) as g:
                check_frame(g, 4)


def test_loan(runtime_dir: str, key: str) -> None:
    w, h = 1366, 768
    with cuframes.publish(key, w, h, PF.P010, memory="host") as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=2000) as sub:
        with pub.loan() as loan:
            assert loan.state == "pending" and loan.seq == 0
            assert (loan.width, loan.height, loan.format, loan.pitch_y) == (w, h, PF.P010, pub.pitch_y)
            assert loan.__dlpack_device__() == (1, 0)
            y = np.from_dlpack(loan.y)
            assert y.flags.writeable and y.dtype == np.uint16
            y[...] = make_frame(PF.P010, w, h, 9)[:h]
            np.from_dlpack(loan.uv)[...] = make_frame(PF.P010, w, h, 9)[h:]
            loan.pts_ns = 9
        assert loan.committed and loan.seq == 1
        with sub.next_frame(timeout_ms=1000) as f:
            assert f.seq == 1 and f.pts_ns == 9
            check_frame(f, 9)
        # the whole frame at once, explicit commit with a pts
        loan = pub.loan()
        np.from_dlpack(loan.yuv)[...] = make_frame(PF.P010, w, h, 10)
        assert loan.commit(pts_ns=10) == 2
        with pytest.raises(cuframes.CuframesInvalidArgument, match="committed"):
            loan.dlpack_y()
        with sub.next_frame(timeout_ms=1000) as f:
            check_frame(f, 10)
        # an exception in the block abandons it
        with pytest.raises(RuntimeError):
            with pub.loan() as loan:
                raise RuntimeError("producer failed")
        assert loan.state == "abandoned"
        pub.loan().abandon()
        assert pub.stats()["published"] == 2
        with pytest.raises(cuframes.CuframesFrameTimeout):
            sub.next_frame(timeout_ms=0)
        del y


def test_loan_capsule_writable(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host") as pub:
        with pub.loan() as loan:
            m, t, flags = consume(loan.__dlpack__(max_version=(1, 0)))
            assert flags == 0  # writable
            m.deleter(ctypes.pointer(m))
            loan.abandon()


def test_publisher_close_abandons_loans(runtime_dir: str, key: str) -> None:
    pub = cuframes.publish(key, 64, 64, memory="host")
    loan = pub.loan()
    arr = np.from_dlpack(loan.yuv)
    pub.close()
    assert pub.closed
    arr[...] = 1  # the ring stays mapped while a loan's tensor lives
    with pytest.raises(cuframes.CuframesInvalidArgument, match="closed"):
        loan.commit()
    with pytest.raises(cuframes.CuframesInvalidArgument, match="closed"):
        pub.publish(make_frame(PF.NV12, 64, 64, 1))
    assert cuframes.list_publishers() == [key]  # kept serving (no frames) for that tensor
    del arr
    gc.collect()
    assert cuframes.list_publishers() == []


def test_subscriber_close_and_properties(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host") as pub:
        sub = cuframes.subscribe(key, consumer_name="det-1", connect_timeout_ms=2000,
                                 cuda_device=0, consumer_stream=0)
        assert (sub.key, sub.consumer_name, sub.cuda_device, sub.consumer_stream) == (key, "det-1", 0, 0)
        assert not sub.closed and sub.fileno() >= 0
        assert "det-1" in repr(sub)
        assert [s["consumer_name"] for s in pub.subscribers()] == ["det-1"]
        pub.publish(make_frame(PF.NV12, 64, 64, 1), 1)
        frame = sub.next_frame()
        with sub as s:
            assert s is sub
        assert sub.closed
        sub.close()  # idempotent
        check_frame(frame, frame.pts_ns)  # a held frame outlives its subscriber
        frame.release()
        assert sub.frames_received == 1 and sub.stats()["closed"] is True
        with pytest.raises(cuframes.CuframesInvalidArgument, match="closed"):
            sub.next_frame()
        auto = cuframes.subscribe(key, connect_timeout_ms=2000)
        assert auto.consumer_name.endswith(f"-{__import__('os').getpid()}")
        auto.close()


def test_observe(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 1366, 768, memory="host", slots=5) as pub, \
         cuframes.subscribe(key, consumer_name="obs", connect_timeout_ms=2000) as sub:
        pub.publish(make_frame(PF.NV12, 1366, 768, 1))
        f = sub.next_frame()
        o = cuframes.observe(key)
        assert o["key"] == key and o["memory"] == "host" and o["format"] == "NV12"
        assert (o["width"], o["height"], o["pitch_y"]) == (1366, 768, 1408)
        assert o["stats"]["published"] == 1 and o["stats"]["held_slots"] == 1
        assert o["stats"]["slots"] == 5
        assert [s["consumer_name"] for s in o["subscribers"]] == ["obs"]
        assert o["subscribers"][0]["frames_received"] == 1
        f.release()
    with pytest.raises(cuframes.CuframesPublisherGone):
        cuframes.observe(key)


def test_remaining_properties(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 1366, 768, PF.P010, slots=4, memory="host", pitch=3000,
                          packet_ring_bytes=1 << 16, packet_ring_entries=64) as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        assert (pub.key, pub.width, pub.height, pub.format) == (key, 1366, 768, PF.P010)
        assert (pub.pitch_y, pub.pitch_uv, pub.memory, pub.cuda_device) == (3000, 3000, "host", 0)
        assert pub.frame_bytes == 3000 * (768 + 384)
        assert pub.policy == cuframes.PublisherPolicy.DROP and pub.has_packet_ring
        assert not pub.closed and "P010 1366x768 host" in repr(pub)
        with pub.loan() as loan:
            assert (loan.pitch_uv, loan.bytes_per_sample, loan.memory, loan.device) == (3000, 2, "host", -1)
            assert loan.uv_ptr == loan.cuda_ptr + 3000 * 768 and 0 <= loan.slot < 4
            assert loan.pts_ns is None and "pending" in repr(loan)
            loan.pts_ns = 77
            np.from_dlpack(loan.yuv)[...] = make_frame(PF.P010, 1366, 768, 77)
            m, t, _ = consume(loan.dlpack_uv(max_version=(1, 0)))
            assert (t.shape[0], t.strides[0]) == (384, 1500)
            m.deleter(ctypes.pointer(m))
        assert loan.pts_ns == 77 and loan.committed and "committed" in repr(loan)
        frame = sub.next_frame(timeout_ms=1000)
        check_frame(frame, 77)
        plane = frame.uv
        assert (plane.name, plane.shape, plane.strides, plane.dtype) == ("uv", (384, 1366), (1500, 1), "uint16")
        assert plane.ptr == frame.uv_ptr and plane.frame is frame and "uv" in repr(plane)
        assert plane.__dlpack_device__() == (1, 0)
        frame.release(stream=None)
        assert frame.released
        pub.close()
        assert pub.closed and pub.stats()["closed"] and pub.stats()["published"] == 1
        pub.close()  # idempotent
        assert pub.subscribers() == []


def test_spin_us_subscriber_gets_every_paced_frame(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 32, memory="host", slots=8) as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=2000,
                            spin_us=300) as sub:
        for tag in range(1, 21):
            seq = pub.publish(make_frame(PF.NV12, 64, 32, tag))
            with sub.next_frame(timeout_ms=2000) as frame:
                assert frame.seq == seq
                check_frame(frame, tag)
        assert sub.gap_count == 0
    with pytest.raises(cuframes.CuframesInvalidArgument):
        cuframes.subscribe(key, spin_us=20000, connect_timeout_ms=0)


def test_dicts_hold_names_properties_hold_enums(runtime_dir: str, key: str) -> None:
    """One rule for every dict: enum-valued fields are names, JSON-ready; properties are enum
    members (issue 20)."""
    import json
    with cuframes.publish(key, 64, 32, memory="host", policy=cuframes.PublisherPolicy.STRICT_WAIT) as pub, \
         cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=2000) as sub:
        pub.publish(make_frame(PF.NV12, 64, 32, 1))
        with sub.next_frame(timeout_ms=2000) as f:
            assert f.format is PF.NV12
        dicts = [sub.stats(), cuframes.observe(key), pub.stats()]
        for d in dicts:
            json.dumps(d)
        s, o = dicts[0], dicts[1]
        assert (s["format"], s["mode"], s["memory"]) == ("NV12", "STRICT_ORDER", "host")
        assert (o["format"], o["policy"], o["memory"]) == ("NV12", "STRICT_WAIT", "host")
        assert o["subscribers"][0]["mode"] == "STRICT_ORDER"
        assert PF[s["format"]] is PF.NV12 and sub.mode is cuframes.SubscriberMode.STRICT_ORDER
        assert pub.policy is cuframes.PublisherPolicy.STRICT_WAIT
