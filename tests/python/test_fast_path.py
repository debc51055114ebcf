"""The per-frame path from Python (issue 17): next_frame's wait is the core's (spin_us included)
and counts one timeout per call; publish() asks a pre-1.0 DLPack producer for max_version only
once; compact copies (__dlpack__(copy=True), CuframesPlane.compact()) of host frames."""

from __future__ import annotations

import ctypes
import re
import threading
import time

import numpy as np
import pytest

import cuframes
from helpers import make_frame

PF = cuframes.PixelFormat
W, H = 1366, 768  # host rings pad rows to 64 bytes: pitch 1408, not the width


def test_next_frame_counts_one_timeout_per_call(runtime_dir: str, key: str) -> None:
    """The wait runs in 200 ms slices (signals between them); the call counts once."""
    for spin_us in (0, 500):  # a fresh ring each: a new subscriber gets the newest frame
        with cuframes.publish(f"{key}-{spin_us}", 64, 32, memory="host") as pub, \
             cuframes.subscribe(f"{key}-{spin_us}", connect_timeout_ms=2000,
                                spin_us=spin_us) as sub:
            t0 = time.monotonic()
            with pytest.raises(cuframes.CuframesFrameTimeout, match="within 450 ms"):
                sub.next_frame(timeout_ms=450)
            assert time.monotonic() - t0 >= 0.44
            assert sub.timeouts == 1
            with pytest.raises(cuframes.CuframesFrameTimeout):
                sub.next_frame(timeout_ms=0)  # never counts
            assert sub.timeouts == 1
            pub.publish(make_frame(PF.NV12, 64, 32, 1))
            with sub.next_frame(timeout_ms=1000) as f:
                assert f.seq == pub.stats()["last_seq"]


def _subscriber_cpu(key: str, spin_us: int, frames: int, period: float,
                    warm: bool = True, warm_us: int = 0) -> tuple[float, int]:
    """CPU time of the thread waiting in next_frame for `frames` frames published every
    `period` seconds by another thread, and how many times next_frame() warmed up (in a spin
    window, or woken warm_us before a frame)."""
    cuframes._cuframes._spin_warm(warm)
    with cuframes.publish(key, 64, 32, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000, spin_us=spin_us,
                            warm_us=warm_us) as sub:
        stop = threading.Event()

        def produce() -> None:
            while not stop.is_set():
                pub.publish(make_frame(PF.NV12, 64, 32, 1))
                stop.wait(period)

        t = threading.Thread(target=produce)
        t.start()
        try:
            for _ in range(5):  # the core learns the cadence
                sub.next_frame(timeout_ms=2000).release()
            cpu0 = time.thread_time()
            for _ in range(frames):
                sub.next_frame(timeout_ms=2000).release()
            return time.thread_time() - cpu0, sub._wake_probe()[2]
        finally:
            stop.set()
            t.join()
            cuframes._cuframes._spin_warm(True)


def test_spin_us_busy_waits_in_next_frame(runtime_dir: str, key: str) -> None:
    """spin_us reaches the core's wait: the waiting thread busy-waits around each expected
    frame (up to 2 * spin_us of CPU per frame), where a sleeping one uses next to none."""
    spinning, warmups = _subscriber_cpu(key + "-spin", 5000, 30, 0.025)
    sleeping, none = _subscriber_cpu(key + "-sleep", 0, 30, 0.025)
    # 30 frames, each with a window opening 5 ms before it is due: at least 10 ms even when
    # the machine gives the spinning thread a small share of a CPU.
    assert spinning > 0.010, (spinning, sleeping)
    assert spinning > 3 * sleeping, (spinning, sleeping)
    # The windows opened before their frames: next_frame() took the GIL back in them to warm up
    # (the producer thread wanting it too), and frames kept coming; never without spin_us.
    assert warmups > 0 and none == 0, (warmups, none)
    _, cold = _subscriber_cpu(key + "-cold", 5000, 10, 0.025, warm=False)
    assert cold == 0


def test_warm_us_warms_up_before_frames_without_spinning(runtime_dir: str, key: str) -> None:
    """warm_us reaches the core's wait: next_frame() wakes before each expected frame, warms up
    (the GIL taken back with the producer thread wanting it too) and sleeps again, each frame
    delivered; it spends a fraction of what spin_us does, and nothing with _spin_warm(False)."""
    warming, warmups = _subscriber_cpu(key + "-warm", 0, 30, 0.025, warm_us=5000)
    spinning, _ = _subscriber_cpu(key + "-spin", 5000, 30, 0.025)
    assert 15 <= warmups <= 35, warmups  # once per next_frame() at most (35), on most of them
    assert warming < spinning / 3, (warming, spinning)
    _, cold = _subscriber_cpu(key + "-cold", 0, 10, 0.025, warm=False, warm_us=5000)
    assert cold == 0
    with pytest.raises(cuframes.CuframesInvalidArgument, match="warm_us 10001 is above 10000"):
        cuframes.subscribe(key + "-warm", connect_timeout_ms=0, warm_us=10001)


class OldProducer:
    """A DLPack producer from before DLPack 1.0: __dlpack__ takes no max_version."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def __dlpack__(self, stream: object = None) -> object:
        return self.a.__dlpack__(stream=stream)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.a.__dlpack_device__()


def test_publish_asks_old_producers_for_max_version_once(runtime_dir: str, key: str) -> None:
    attempts = []

    class Counting(OldProducer):
        def __getattribute__(self, name: str) -> object:
            if name == "__dlpack__":
                method = object.__getattribute__(self, name)

                def call(**kw: object) -> object:
                    attempts.append(sorted(kw))
                    return method(**kw)
                return call
            return object.__getattribute__(self, name)

    with cuframes.publish(key, 64, 32, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        for tag in (1, 2, 3):
            pub.publish(Counting(make_frame(PF.NV12, 64, 32, tag)), tag)
            with sub.next_frame(timeout_ms=1000) as f:
                assert f.pts_ns == tag
                got = np.from_dlpack(f.yuv)
                np.testing.assert_array_equal(got, make_frame(PF.NV12, 64, 32, tag))
    # Asked with max_version once (refused: TypeError), then never again.
    assert attempts == [["max_version"], [], [], []]


def _flags(capsule: object) -> int:
    """The flags of an unconsumed "dltensor_versioned" capsule (consumes and frees it)."""
    api = ctypes.pythonapi
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    api.PyCapsule_SetName.argtypes = [ctypes.py_object, ctypes.c_char_p]
    ptr = api.PyCapsule_GetPointer(capsule, b"dltensor_versioned")
    # DLManagedTensorVersioned: version (2 x u32), manager_ctx, deleter, flags (u64), dl_tensor
    flags = ctypes.c_uint64.from_address(ptr + 8 + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(
        ctypes.c_void_p.from_address(ptr + 8 + ctypes.sizeof(ctypes.c_void_p)).value)
    assert api.PyCapsule_SetName(capsule, b"used_dltensor_versioned") == 0
    deleter(ptr)
    return flags


def test_compact_copy_of_host_frames(runtime_dir: str, key: str) -> None:
    """__dlpack__(copy=True) and CuframesPlane.compact(): a copy of the consumer's own, rows of
    width samples, writable, flagged IS_COPIED; the frame's slot is free while it lives."""
    want = make_frame(PF.NV12, W, H, 7)
    with cuframes.publish(key, W, H, memory="host") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=2000) as sub:
        pub.publish(want, 7)
        with sub.next_frame(timeout_ms=1000) as frame:
            assert frame.pitch_y == 1408
            y = np.from_dlpack(frame, copy=True)  # numpy passes copy=True to __dlpack__
            uv = np.from_dlpack(frame.uv.compact())
            yuv = np.from_dlpack(frame.yuv.compact())
            in_place = np.from_dlpack(frame.y)
            assert _flags(frame.__dlpack__(max_version=(1, 0), copy=True)) == 2  # IS_COPIED
            assert _flags(frame.__dlpack__(max_version=(1, 0))) == 1  # READ_ONLY, in place
            c = frame.y.compact()
            assert c.is_compact and not frame.y.is_compact
            assert c.shape == (H, W) and c.strides == (W, 1) and frame.y.strides == (1408, 1)
            assert "compact" in repr(c)
            # compact() made one copy: ptr is its address, every export of c shares it
            assert c.ptr != frame.y.ptr == frame.cuda_ptr
            c1, c2 = np.from_dlpack(c), np.from_dlpack(c)
            assert c1.ctypes.data == c2.ctypes.data == c.ptr
            assert np.from_dlpack(c, copy=True).ctypes.data != c.ptr  # copy=True: one of its own
            c.__dlpack__(copy=False)  # no copy made: it is one already
            frame.__dlpack__(copy=False)  # in place, as without copy
        del in_place
        assert sub.stats()["held_frames"] == 0  # the copies hold nothing
        assert y.strides == (W, 1) and uv.strides == (W, 1) and yuv.strides == (W, 1)
        assert y.flags.writeable and not np.shares_memory(y, yuv)
        np.testing.assert_array_equal(y, want[:H])
        np.testing.assert_array_equal(uv, want[H:])
        np.testing.assert_array_equal(yuv, want)
        pub.publish(make_frame(PF.NV12, W, H, 8), 8)  # the slots are reused: the copies stay
        y[0, 0] ^= 1
        np.testing.assert_array_equal(yuv, want)
        np.testing.assert_array_equal(c1, want[:H])
        c1[0, 0] ^= 1  # writable, shared by the exports of one compact() plane
        assert c2[0, 0] == c1[0, 0]


def test_no_copies_of_loans_and_batches(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 32, memory="host") as pub:
        pub.publish(make_frame(PF.NV12, 64, 32, 1))
        with pub.loan() as loan:
            with pytest.raises(BufferError, match="loan"):
                loan.__dlpack__(copy=True)
            with pytest.raises(BufferError, match="loan"):
                loan.y.compact()
            loan.abandon()


def test_torch_fast_path_switch() -> None:
    """The private switch of the torch shortcuts (publish()'s export, .torch()'s import;
    benchmarks and the GPU tests flip it): it takes True, False or nothing and says what holds."""
    switch = cuframes._cuframes._torch_fast_path
    assert switch() is True  # on by default
    try:
        assert switch(False) is False
        assert switch() is False
    finally:
        assert switch(True) is True


TORCH_REFUSED = """
import sys
sys.modules["torch"] = None  # import torch raises ImportError, as where it is not installed
import cuframes, numpy as np
with cuframes.publish("{key}", 64, 32, cuframes.PixelFormat.GRAY8, memory="host",
                      runtime_dir="{dir}") as pub, \\
     cuframes.subscribe("{key}", connect_timeout_ms=2000, runtime_dir="{dir}") as sub:
    pub.publish(np.zeros((32, 64), np.uint8))
    with sub.next_frame(timeout_ms=2000) as f:
        for call, want in ((lambda: f.torch("rgb"), ValueError),
                           (lambda: f.torch(0), ValueError),
                           (lambda: f.torch("uv"), cuframes.CuframesInvalidArgument),
                           (lambda: f.torch(), ModuleNotFoundError),
                           (lambda: f.torch("yuv"), ModuleNotFoundError)):
            try:
                call()
            except want as e:
                print(type(e).__name__, e)
            else:
                raise AssertionError(f"no {{want.__name__}}")
        print("held", sub.stats()["held_frames"])
    print("held after", sub.stats()["held_frames"])
"""


def test_raw_methods_take_their_arguments_as_bound_ones(runtime_dir: str, key: str) -> None:
    """publish(), next_frame(), .torch() and .synchronize() are plain CPython methods
    (python/src/raw_method.h): by position or keyword, numpy ints too, and a TypeError naming
    what is wrong for anything else, the frame, the subscriber and the publisher left as they
    were. An object whose __init__ never ran is refused, not read."""
    w, h = 64, 48
    with cuframes.publish(key, w, h, memory="host", runtime_dir=runtime_dir) as pub, \
         cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=5000, runtime_dir=runtime_dir) as sub:
        bad = [((1.5,), {}, "timeout_ms must be an int"),
               (("5",), {}, "timeout_ms must be an int"),
               ((2 ** 40,), {}, "timeout_ms must be an int"),
               ((1, 2), {}, "takes at most 1 arguments (2 given)"),
               ((), {"timeout": 1}, "unexpected keyword argument 'timeout'"),
               ((1,), {"timeout_ms": 1}, "multiple values for argument 'timeout_ms'")]
        for args, kwargs, what in bad:
            with pytest.raises(TypeError, match=re.escape(what)):
                sub.next_frame(*args, **kwargs)
        with pytest.raises(cuframes.CuframesFrameTimeout):
            sub.next_frame(np.int64(1))  # counted: a wait that timed out
        src = make_frame(PF.NV12, w, h, 0)
        bad_pub = [((), {}, TypeError, "missing required argument 'source'"),
                   ((src, 1, None), {}, TypeError, "takes at most 2 positional arguments"),
                   ((src,), {"pts_ns": 1.5}, TypeError, "pts_ns must be an int that fits 64 bits"),
                   ((src,), {"pts_ns": 2 ** 64}, TypeError, "pts_ns must be an int that fits 64"),
                   ((src,), {"pts": 1}, TypeError, "unexpected keyword argument 'pts'"),
                   ((src, 1), {"pts_ns": 1}, TypeError, "multiple values for argument 'pts_ns'"),
                   ((src,), {"color_matrix": "bt709"}, TypeError, "color_matrix must be one of"),
                   ((src[:8],), {}, cuframes.CuframesInvalidArgument, "got shape (8, 64)")]
        for args, kwargs, exc, what in bad_pub:
            with pytest.raises(exc, match=re.escape(what)):
                pub.publish(*args, **kwargs)
        assert pub.stats()["published"] == 0
        CM, CR = cuframes.ColorMatrix, cuframes.ColorRange
        pub.publish(src, np.int64(0), color_range=CR.FULL)
        pub.publish(source=make_frame(PF.NV12, w, h, 1), pts_ns=1, color_matrix=CM.BT709)
        pub.publish(make_frame(PF.NV12, w, h, 2), 2, stream=None)
        assert pub.stats()["published"] == 3
        first = sub.next_frame(timeout_ms=np.int32(5000))
        assert (first.pts_ns, first.color_range, first.color_matrix) == (0, CR.FULL, CM.UNKNOWN)
        first.release()
        second = sub.next_frame(5000)
        assert (second.pts_ns, second.color_matrix) == (1, CM.BT709)
        second.release()
        frame = sub.next_frame()
        assert frame.pts_ns == 2
        with pytest.raises(TypeError, match=re.escape("unexpected keyword argument 'planes'")):
            frame.torch(planes="y")
        with pytest.raises(TypeError, match=re.escape("takes at most 2 arguments (3 given)")):
            frame.torch("y", None, 1)
        with pytest.raises(TypeError, match=re.escape("multiple values for argument 'plane'")):
            frame.torch("y", plane="uv")
        with pytest.raises(ValueError, match="plane must be"):
            frame.torch(plane="v")
        with pytest.raises(TypeError, match="doesn't apply to a 'object' object"):
            cuframes.CuframesFrame.torch(object())
        assert frame.synchronize() is None  # a host frame: nothing queued anywhere
        with pytest.raises(TypeError, match=re.escape("takes at most 0 arguments (1 given)")):
            frame.synchronize(0)
        with pytest.raises(TypeError, match=re.escape("unexpected keyword argument 'stream'")):
            frame.synchronize(stream=0)
        assert sub.stats()["held_frames"] == 1
        frame.release()
        assert sub.stats()["held_frames"] == 0
        with pytest.raises(cuframes.CuframesInvalidArgument, match="released"):
            frame.synchronize()
        assert sub.stats()["timeouts"] == 1

    unready = cuframes.CuframesSubscriber.__new__(cuframes.CuframesSubscriber)  # no __init__
    with pytest.raises(TypeError, match="CuframesSubscriber object is not initialised"):
        unready.next_frame(0)


def test_frame_torch_errors(runtime_dir: str, key: str) -> None:
    """frame.torch() names what is wrong: the plane (before anything else), a plane the format
    lacks, and PyTorch missing (in a process where `import torch` fails); the frame is still
    released. Its tensors are checked against torch.from_dlpack on the GPU machine
    (tests/python/gpu/test_gpu_fast_path.py)."""
    import subprocess
    import sys

    code = TORCH_REFUSED.format(key=key, dir=runtime_dir)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ValueError plane must be \"y\", \"uv\" or \"yuv\", got 'rgb'", lines
    assert lines[1] == "ValueError plane must be \"y\", \"uv\" or \"yuv\", got 0", lines
    assert lines[2].startswith("CuframesInvalidArgument") and "GRAY8" in lines[2], lines
    for line in lines[3:5]:
        assert line.startswith("ModuleNotFoundError .torch() needs PyTorch"), lines
    assert lines[5:] == ["held 1", "held after 0"]


TORCH_HOST = """
import sys
sys.path.insert(0, {helpers!r})
import numpy as np, torch
import cuframes
from helpers import make_frame
PF = cuframes.PixelFormat
w, h = 1366, 768
for fast in (True, False):
    cuframes._cuframes._torch_fast_path(fast)
    want = [make_frame(PF.NV12, w, h, t) for t in (3, 4)]
    key = "{key}-%d" % fast
    with cuframes.publish(key, w, h, memory="host", runtime_dir={dir!r}) as pub, \\
         cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=5000, runtime_dir={dir!r}) as sub:
        pub.publish(want[0], 3)
        with pub.loan() as loan:
            loan.torch("yuv").copy_(torch.from_numpy(want[1]))
            assert loan.torch().data_ptr() == loan.cuda_ptr
            loan.pts_ns = 4
        for tag, data in zip((3, 4), want):
            with sub.next_frame(timeout_ms=5000) as frame:
                assert frame.pts_ns == tag
                for plane in ("y", "uv", "yuv"):
                    a = frame.torch(plane)
                    b = torch.from_dlpack(getattr(frame, plane))
                    assert (a.data_ptr(), a.shape, a.stride(), a.dtype, a.device) == \\
                        (b.data_ptr(), b.shape, b.stride(), b.dtype, b.device), plane
                    del a, b
                y = frame.torch()
                assert y.stride() == (frame.pitch_y, 1) and y.device.type == "cpu"
                assert torch.equal(y, torch.from_numpy(data[:h]))
                assert torch.equal(frame.torch("yuv"), torch.from_numpy(data))
                try:
                    frame.torch(stream=5)
                    raise AssertionError("no BufferError")
                except BufferError as e:
                    assert "host memory" in str(e), e
            assert sub.stats()["held_frames"] == 1  # y holds it
            del y
            assert sub.stats()["held_frames"] == 0
print("ok", torch.__version__)
"""


def test_frame_torch_on_host_rings(runtime_dir: str, key: str) -> None:
    """frame.torch() / loan.torch() with a real PyTorch on host rings: the tensor
    torch.from_dlpack gives, through torch's C import and through the protocol; a torch
    without DLPack 1.0 (Debian 12's 1.13) takes legacy capsules. Runs in CUFRAMES_TORCH_PYTHON
    (or this interpreter) where it imports torch; CI has none, so the GPU machine's twin is
    tests/python/gpu/test_gpu_fast_path.py::test_frame_torch_is_torch_from_dlpack (host and
    cuda rings)."""
    run_with_torch(TORCH_HOST, key, runtime_dir)


def run_with_torch(template: str, key: str, runtime_dir: str) -> None:
    """Runs template (formatted with helpers, key and dir) in CUFRAMES_TORCH_PYTHON, or this
    interpreter; skips where it cannot import torch. The code prints "ok <torch version>"."""
    import os
    import subprocess
    import sys

    python = os.environ.get("CUFRAMES_TORCH_PYTHON") or sys.executable
    probe = subprocess.run([python, "-c", "import torch, cuframes"], capture_output=True,
                           text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"no torch in {python} (set CUFRAMES_TORCH_PYTHON)")
    here = os.path.dirname(os.path.abspath(__file__))
    code = template.format(helpers=here, key=key, dir=runtime_dir)
    r = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok "), r.stdout


TORCH_PUBLISH = """
import sys
sys.path.insert(0, {helpers!r})
import numpy as np, torch
import cuframes
from helpers import make_frame
PF = cuframes.PixelFormat
C = cuframes._cuframes
w, h = 1366, 768
# what the shim's check needs (torch >= 2.4; Debian 12's 1.13 takes the C export)
shim = hasattr(getattr(torch._C, "_aoti", None), "unsafe_alloc_void_ptr_from_tensor")
tag = 0
for fast, view in ((True, True), (True, False), (False, True)):
    C._torch_fast_path(fast)
    C._torch_view(view)
    key = "{key}-%d%d" % (fast, view)
    with cuframes.publish(key, w, h, memory="host", runtime_dir={dir!r}) as pub, \
         cuframes.publish(key + "-p010", 640, 360, PF.P010, memory="host",
                          runtime_dir={dir!r}) as pub10, \
         cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=5000, runtime_dir={dir!r}) as sub, \
         cuframes.subscribe(key + "-p010", mode=cuframes.SubscriberMode.STRICT_ORDER,
                            connect_timeout_ms=5000, runtime_dir={dir!r}) as sub10:
        def sources(t):
            whole = torch.from_numpy(make_frame(PF.NV12, w, h, t))
            wide = torch.zeros((h * 3 // 2 + 3, w + 50), dtype=torch.uint8)
            wide[2:2 + h * 3 // 2, 7:7 + w] = whole  # a view with an offset and a row stride
            yield whole, whole
            yield wide[2:2 + h * 3 // 2, 7:7 + w], whole
            yield (whole[:h].clone(), wide[2 + h:2 + h * 3 // 2, 7:7 + w]), whole
            yield whole.view(torch.int8), whole
        for src, want in sources(tag):
            refs = [sys.getrefcount(s) for s in (src if isinstance(src, tuple) else (src,))]
            tag += 1
            assert pub.publish(src, tag) > 0
            assert refs == [sys.getrefcount(s) for s in (src if isinstance(src, tuple) else (src,))]
            with sub.next_frame(timeout_ms=5000) as frame:
                assert frame.pts_ns == tag
                assert torch.equal(torch.from_dlpack(frame.yuv), want), (fast, view, tag)
        p010 = torch.from_numpy(make_frame(PF.P010, 640, 360, 9).view(np.int16))
        for src in (p010, p010.view(torch.uint16)) if hasattr(torch, "uint16") else (p010,):
            pub10.publish(src, 9)
            with sub10.next_frame(timeout_ms=5000) as frame:
                got = np.from_dlpack(frame.yuv)
                assert np.array_equal(got, make_frame(PF.P010, 640, 360, 9))
        # what publish() refuses, nothing published, the source's references given back
        whole = torch.from_numpy(make_frame(PF.NV12, w, h, 1))
        before = pub.stats()["published"]
        bad = [(whole.float(), "float"), (whole[:, ::2], "shape"),
               (torch.zeros((h * 3 // 2, w), dtype=torch.int32), "32-bit"),
               (whole.t().contiguous().t(), "strides[1] == 1"),
               (torch.zeros((h * 3 // 2, w, 1), dtype=torch.uint8), "3 dimensions")]
        if fast:  # torch exports a lazy negation's memory as it is: refused on cuframes' path
            bad.append((torch._neg_view(whole), "negative bit"))
        for src, what in bad:
            n = sys.getrefcount(src)
            try:
                pub.publish(src, 1)
                raise AssertionError("published: " + what)
            except cuframes.CuframesInvalidArgument as e:
                assert what in str(e), (what, str(e))
            assert sys.getrefcount(src) == n, what
        assert pub.stats()["published"] == before
C._torch_fast_path(True)
C._torch_view(True)
assert C._torch_native_used()[2] == shim, torch.__version__
print("ok", torch.__version__)
"""


def test_publish_torch_tensors_on_host_rings(runtime_dir: str, key: str) -> None:
    """publish() of torch tensors with a real PyTorch: read through torch's C shim (torch >= 2.4,
    the default), through torch's C export (_torch_view(False), and torches without the shim)
    and through __dlpack__ (_torch_fast_path(False)), the frames exact for a whole frame, a view
    with an offset and a row stride, a (Y, UV) pair, int8, and int16/uint16 for P010; what it
    refuses (dtype, shape, strides, dimensions, a lazy negation), nothing published then and
    no reference kept. Runs in CUFRAMES_TORCH_PYTHON (or this interpreter) where it imports
    torch; CI has none, so the GPU machine's twin (cuda tensors) is
    tests/python/gpu/test_gpu_fast_path.py::test_publish_reads_torch_tensors_in_place."""
    run_with_torch(TORCH_PUBLISH, key, runtime_dir)


TORCH_AHEAD = """
import sys
sys.path.insert(0, {helpers!r})
import torch
import cuframes
from torch_ahead import check_torch_ahead
for i, (fast, ahead, native) in enumerate(((True, True, True), (True, False, True),
                                            (False, True, True), (True, True, False))):
    check_torch_ahead(cuframes, torch, "{key}-%d" % i, {dir!r}, "host", fast, ahead, native)
print("ok", torch.__version__)
"""


def test_frame_torch_made_ahead_on_host_rings(runtime_dir: str, key: str) -> None:
    """The tensors next_frame() makes ahead for frame.torch(), with a real PyTorch on host rings
    (tests/python/torch_ahead.py). Runs in CUFRAMES_TORCH_PYTHON (or this interpreter) where it
    imports torch; CI has none, so its twin runs on the GPU machine (cuda and host rings:
    tests/python/gpu/test_gpu_fast_path.py::test_frame_torch_made_ahead)."""
    run_with_torch(TORCH_AHEAD, key, runtime_dir)
