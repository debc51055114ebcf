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
    modules = {"asyncio", "annotations", "Any", "AsyncIterator", "Optional", "Sequence", "Tuple",
               "Union"}
    assert public - modules == set(cuframes.__all__)


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
    }


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
