"""The package's surface: every name the spec documents, with its defaults."""

from __future__ import annotations

import enum
import inspect
import re

import pytest

import cuframes

SEED_EXCEPTIONS = {
    "CuframesPublisherGone": "PUBLISHER_GONE",
    "CuframesFrameTimeout": "FRAME_TIMEOUT",
    "CuframesDeviceLost": "DEVICE_LOST",
    "CuframesShmError": "SHM",
    "CuframesProtocolMismatch": "PROTOCOL_MISMATCH",
    "CuframesInvalidArgument": "INVALID_ARGUMENT",
    "CuframesOutOfMemory": "OUT_OF_MEMORY",
    "CuframesInternal": "INTERNAL",
    "CuframesOverrun": "OVERRUN",
}


def test_all_is_complete_and_importable() -> None:
    for name in cuframes.__all__:
        assert hasattr(cuframes, name), name
    public = {n for n in dir(cuframes) if not n.startswith("_")}
    assert public == set(cuframes.__all__)  # no imported modules or typing names (issue 20)


def test_functions_have_signatures() -> None:
    """inspect.signature works on every public function, with the documented defaults."""
    for name in cuframes.__all__:
        obj = getattr(cuframes, name)
        if inspect.isclass(obj) or not callable(obj):
            continue
        inspect.signature(obj)  # raises for a bare pybind11 function
    p = inspect.signature(cuframes.publish).parameters
    assert p["format"].default is cuframes.PixelFormat.NV12 and p["slots"].default == 8
    assert p["policy"].default is cuframes.PublisherPolicy.DROP
    assert p["runtime_dir"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.signature(cuframes.list_publishers).parameters["runtime_dir"].default is None


def test_version() -> None:
    v = cuframes.version_string()
    assert re.fullmatch(r"\d+\.\d+\.\d+", v)
    assert cuframes.__version__ == v
    assert cuframes.protocol_version() >= 1


def test_now_ns_is_monotonic() -> None:
    import time

    a = cuframes.now_ns()
    b = time.monotonic_ns()
    c = cuframes.now_ns()
    assert a <= b <= c


def test_exceptions() -> None:
    assert issubclass(cuframes.CuframesError, Exception)
    assert cuframes.CuframesError.__module__ == "cuframes"
    for name, status in SEED_EXCEPTIONS.items():
        cls = getattr(cuframes, name)
        assert issubclass(cls, cuframes.CuframesError), name
        assert cls.status == status
        assert cls.__module__ == "cuframes"
        assert cls.__doc__
    assert len(set(SEED_EXCEPTIONS.values())) == 9
    assert issubclass(cuframes.CuframesFrameTimeout, TimeoutError)
    assert issubclass(cuframes.CuframesInvalidArgument, ValueError)
    codes = sorted(getattr(cuframes, n).code for n in SEED_EXCEPTIONS)
    assert codes == list(range(1, 10))


def test_enums() -> None:
    assert issubclass(cuframes.SubscriberMode, enum.IntEnum)
    assert [m.name for m in cuframes.SubscriberMode] == ["NEWEST_ONLY", "STRICT_ORDER"]
    assert [m.name for m in cuframes.PixelFormat] == ["NV12", "P010", "GRAY8"]
    assert [m.name for m in cuframes.PublisherPolicy] == ["DROP", "STRICT_WAIT"]
    assert cuframes.PixelFormat(1) is cuframes.PixelFormat.NV12
    assert cuframes.PixelFormat.NV12.__class__.__module__ == "cuframes"


def test_subscribe_signature() -> None:
    sig = inspect.signature(cuframes.subscribe)
    defaults = {n: p.default for n, p in sig.parameters.items()}
    assert defaults == {
        "key": inspect.Parameter.empty,
        "consumer_name": None,
        "mode": cuframes.SubscriberMode.NEWEST_ONLY,
        "cuda_device": 0,
        "connect_timeout_ms": -1,
        "consumer_stream": 0,
        "runtime_dir": None,
        "spin_us": 0,
        "warm_us": 0,
    }


def test_python_wrappers_keep_the_cores_defaults() -> None:
    """subscribe() is Python over _SubscriberBase, whose defaults come from the core's
    cuframes_subscriber_options_init(): the two signatures must not drift apart."""
    from helpers import pybind_params

    base = pybind_params(cuframes._cuframes._SubscriberBase.__init__.__doc__ or "")
    sig = inspect.signature(cuframes.subscribe)
    wrapper = [(n, None if p.default is inspect.Parameter.empty else repr(p.default),
                p.kind == inspect.Parameter.KEYWORD_ONLY) for n, p in sig.parameters.items()]
    assert base == wrapper


def test_publish_signature_defaults() -> None:
    from helpers import pybind_params

    params = pybind_params(cuframes.publish.__doc__ or "")
    assert params[:8] == [
        ("key", None, False), ("width", None, False), ("height", None, False),
        ("format", "<PixelFormat.NV12: 1>", False), ("slots", "8", False),
        ("memory", "'cuda'", False), ("cuda_device", "0", False),
        ("policy", "<PublisherPolicy.DROP: 0>", False)]
    assert ("runtime_dir", "None", True) in params
    assert ("packet_ring_bytes", "0", True) in params


def test_subscribe_without_publisher_times_out(runtime_dir: str, key: str) -> None:
    with pytest.raises(cuframes.CuframesPublisherGone) as e:
        cuframes.subscribe(key, connect_timeout_ms=0)
    assert e.value.status == "PUBLISHER_GONE"
    with pytest.raises(cuframes.CuframesPublisherGone, match="within 150 ms"):
        cuframes.subscribe(key, connect_timeout_ms=150)


def test_bad_arguments(runtime_dir: str, key: str) -> None:
    with pytest.raises(cuframes.CuframesInvalidArgument):
        cuframes.publish("bad key!", 64, 64, memory="host")
    with pytest.raises(cuframes.CuframesInvalidArgument):
        cuframes.publish(key, 63, 64, memory="host")  # NV12 needs even sizes
    with pytest.raises(cuframes.CuframesInvalidArgument, match="memory"):
        cuframes.publish(key, 64, 64, memory="vram")
    with pytest.raises(ValueError):  # CuframesInvalidArgument is a ValueError too
        cuframes.publish(key, 64, 64, memory="host", slots=1)
    with pytest.raises(TypeError):
        cuframes.publish(key, 64, 64, format="NV12", memory="host")  # type: ignore[arg-type]
    with pytest.raises(cuframes.CuframesInvalidArgument):
        cuframes.subscribe("bad/key", connect_timeout_ms=0)


def test_cuda_memory_without_gpu_or_with(runtime_dir: str, key: str) -> None:
    """memory="cuda" (the default) works on a GPU machine and fails cleanly without one."""
    try:
        pub = cuframes.publish(key, 64, 64)
    except cuframes.CuframesDeviceLost as e:
        assert "CUDA" in str(e) or "cuda" in str(e)
        return
    with pub:
        assert pub.memory == "cuda"


def test_second_publisher_on_a_key_is_refused(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="host"):
        with pytest.raises(cuframes.CuframesShmError):
            cuframes.publish(key, 64, 64, memory="host")


def test_list_publishers(runtime_dir: str) -> None:
    assert cuframes.list_publishers() == []
    with cuframes.publish("cam-b", 64, 64, memory="host"), \
         cuframes.publish("cam-a", 64, 64, memory="host", runtime_dir=runtime_dir):
        assert cuframes.list_publishers() == ["cam-a", "cam-b"]
        assert cuframes.list_publishers(runtime_dir) == ["cam-a", "cam-b"]
    assert cuframes.list_publishers(runtime_dir=runtime_dir) == []


def test_looking_creates_nothing(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listing, observing and subscribing only look: a runtime directory that is not there is
    not created, and the messages name it (issue 20)."""
    nowhere = tmp_path / "not-yet"
    assert cuframes.runtime_dir(str(nowhere)) == str(nowhere)
    assert cuframes.list_publishers(str(nowhere)) == []
    with pytest.raises(cuframes.CuframesPublisherGone, match=f"in {nowhere} \\(no such directory\\)"):
        cuframes.subscribe("k", connect_timeout_ms=0, runtime_dir=str(nowhere))
    with pytest.raises(cuframes.CuframesPublisherGone, match="no such directory"):
        cuframes.observe("k", runtime_dir=str(nowhere))
    with pytest.raises(cuframes.CuframesPublisherGone, match="no such directory"):
        cuframes.subscribe_packets("k", connect_timeout_ms=0, runtime_dir=str(nowhere))
    assert not nowhere.exists()
    # A relative directory is not made in the working directory either.
    monkeypatch.chdir(tmp_path)
    assert cuframes.list_publishers("rt2") == []
    assert not (tmp_path / "rt2").exists()
    # The default rule: the directory a publisher would use, looked at, not made.
    monkeypatch.delenv("CUFRAMES_RUNTIME_DIR", raising=False)
    default = cuframes.runtime_dir()
    existed = __import__("os").path.exists(default)
    cuframes.list_publishers()
    assert __import__("os").path.exists(default) == existed


def test_waiting_for_a_directory_that_appears(tmp_path) -> None:
    """A subscriber waiting for a publisher in a directory that does not exist yet attaches
    once a publisher makes it."""
    import threading
    d = tmp_path / "later"
    pubs = []
    t = threading.Timer(0.3, lambda: pubs.append(
        cuframes.publish("k", 64, 32, memory="host", runtime_dir=str(d))))
    t.start()
    try:
        with cuframes.subscribe("k", connect_timeout_ms=30000, runtime_dir=str(d)) as sub:
            t.join()
            pubs[0].publish(__import__("numpy").zeros((48, 64), "uint8"))
            assert sub.next_frame(timeout_ms=5000).seq == 1
    finally:
        t.join()
        for p in pubs:
            p.close()


def test_timeout_message_says_the_whole_wait(runtime_dir: str) -> None:
    """The message gives the wait that was asked for, not a slice of it (issue 20)."""
    with pytest.raises(cuframes.CuframesPublisherGone) as e:
        cuframes.subscribe("nope", connect_timeout_ms=450)
    msg = str(e.value)
    assert msg.count("within") == 1 and "within 450 ms" in msg, msg
    assert f"in {runtime_dir}" in msg, msg


def test_cuda_memory_without_a_gpu_says_what_to_do(runtime_dir: str) -> None:
    """Without an NVIDIA driver, a CUDA ring is refused naming the missing GPU and the way out
    (host memory); on a GPU machine it works (issue 20)."""
    import os
    if os.path.exists("/proc/driver/nvidia/version"):
        cuframes.publish("k", 64, 32).close()
        return
    with pytest.raises(cuframes.CuframesDeviceLost) as e:
        cuframes.publish("k", 64, 32)
    msg = str(e.value)
    assert ("no NVIDIA GPU or driver" in msg or "built without CUDA" in msg), msg
    assert 'memory="host"' in msg, msg
    assert os.listdir(runtime_dir) == []  # and the failed start left nothing behind
