"""cuframes: decoded camera frames shared zero-copy between processes.

A publisher owns a key ("cam-parking") and a ring of frame slots in GPU (CUDA) or host memory;
any number of subscribers in other processes read the frames without copying them and hand
them to PyTorch, CuPy or NumPy through DLPack. See docs/python.md.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import inspect
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Optional, Sequence, Tuple, Union

from . import _cuframes
from ._cuframes import (
    ColorMatrix,
    ColorRange,
    CuframesCodecParams,
    CuframesDeviceLost,
    CuframesError,
    CuframesFrame,
    CuframesFrameTimeout,
    CuframesInternal,
    CuframesInvalidArgument,
    CuframesLoan,
    CuframesOutOfMemory,
    CuframesOverrun,
    CuframesPacket,
    CuframesPacketReader,
    CuframesPlane,
    CuframesProtocolMismatch,
    CuframesPublisher,
    CuframesPublisherGone,
    CuframesShmError,
    PixelFormat,
    PublisherPolicy,
    SubscriberMode,
    list_publishers,
    now_ns,
    observe,
    protocol_version,
    publish,
    runtime_dir,
    subscribe_packets,
    version_string,
)

__version__: str = version_string()

__all__ = [
    "ColorMatrix",
    "ColorRange",
    "CuframesBatch",
    "CuframesCodecParams",
    "CuframesDeviceLost",
    "CuframesError",
    "CuframesFrame",
    "CuframesFrameTimeout",
    "CuframesInternal",
    "CuframesInvalidArgument",
    "CuframesLoan",
    "CuframesOutOfMemory",
    "CuframesOverrun",
    "CuframesPacket",
    "CuframesPacketReader",
    "CuframesPlane",
    "CuframesProtocolMismatch",
    "CuframesPublisher",
    "CuframesPublisherGone",
    "CuframesShmError",
    "CuframesSubscriber",
    "PixelFormat",
    "PublisherPolicy",
    "SubscriberMode",
    "list_publishers",
    "now_ns",
    "observe",
    "protocol_version",
    "preprocess",
    "publish",
    "runtime_dir",
    "subscribe",
    "subscribe_packets",
    "version_string",
]


def _set_ready(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class CuframesSubscriber(_cuframes._SubscriberBase):
    """A subscription to one key (use :func:`subscribe`).

    A context manager; ``close()`` is idempotent. Thread-safety contract: a subscriber belongs
    to one thread at a time (a second thread calling ``next_frame`` or ``close`` while the first
    one waits gets CuframesInvalidArgument); the counters and ``stats()`` may be read from any
    thread. Several subscribers, each in its own thread, are fine. The GIL is released while
    ``next_frame`` waits.
    """

    async def next_frame_async(self, timeout_ms: int = -1) -> CuframesFrame:
        """Awaits the next frame on the running asyncio loop, up to ``timeout_ms`` (-1: forever).

        Waits on the subscriber's fd with ``loop.add_reader``: no thread, no polling. Raises
        CuframesFrameTimeout (counted in ``timeouts``), CuframesPublisherGone, CuframesOverrun.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout_ms < 0 else loop.time() + timeout_ms / 1000.0
        while True:
            frame = self._next_frame_nowait()
            if frame is not None:
                return frame
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                self._wait_expired(timeout_ms)  # counts it, raises CuframesFrameTimeout
            fd = self.fileno()
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _set_ready, ready)
            try:
                await asyncio.wait_for(ready, remaining)
            except asyncio.TimeoutError:
                pass  # the loop above makes one last attempt, then raises
            finally:
                loop.remove_reader(fd)

    async def frames(self, timeout_ms: int = -1) -> AsyncIterator[CuframesFrame]:
        """``async for frame in sub.frames():`` every frame, as next_frame_async gives them.

        Each frame is released when the loop asks for the next one (DLPack tensors taken from
        it keep their own hold). Ends by raising what next_frame_async raises, e.g.
        CuframesPublisherGone.
        """
        frame: Optional[CuframesFrame] = None
        try:
            while True:
                frame = await self.next_frame_async(timeout_ms)
                yield frame
                frame.release()
                frame = None
        finally:
            if frame is not None:
                frame.release()


def subscribe(
    key: str,
    consumer_name: Optional[str] = None,
    mode: SubscriberMode = SubscriberMode.NEWEST_ONLY,
    cuda_device: int = 0,
    connect_timeout_ms: int = -1,
    consumer_stream: object = 0,
    *,
    runtime_dir: Optional[str] = None,
    spin_us: int = 0,
    warm_us: int = 0,
) -> CuframesSubscriber:
    """Subscribes to ``key``'s publisher and returns a :class:`CuframesSubscriber`.

    consumer_name: ``[A-Za-z0-9._-]{1,63}``; None = "<program>-<pid>". mode: NEWEST_ONLY (the
    newest frame, gaps counted) or STRICT_ORDER (every frame in order). cuda_device: the GPU to
    import a cuda ring on. connect_timeout_ms: how long to wait for the publisher to appear (-1:
    forever). consumer_stream: the cudaStream_t (int, or a torch/cupy stream) frames are
    consumed on; their holds are released once the work queued on it has finished.
    runtime_dir: the rendezvous directory (default: $CUFRAMES_RUNTIME_DIR, /run/cuframes, ...).
    spin_us: 0 (default) sleeps until woken; otherwise next_frame busy-waits from spin_us before
    to spin_us after the next frame's expected arrival (learnt from the publisher's cadence): lower
    latency where waking a sleeping CPU is slow (VMs), for up to 2 * spin_us of CPU per frame.
    warm_us: 0 (default) or, with spin_us 0, next_frame wakes once warm_us before the next frame
    is expected, warms up what the frame's handling runs first (the GIL, the frame object, torch's
    and CUDA's first questions) and sleeps again until the frame comes: lower latency for one more
    wake-up per frame, without busy-waiting.

    Raises CuframesPublisherGone when no publisher appears in time, CuframesProtocolMismatch,
    CuframesShmError (e.g. the subscriber table is full), CuframesDeviceLost (cuda ring, no GPU).
    """
    return CuframesSubscriber(key, consumer_name, mode, cuda_device, connect_timeout_ms,
                              consumer_stream, runtime_dir=runtime_dir, spin_us=spin_us,
                              warm_us=warm_us)


class CuframesBatch(_cuframes._BatchBase):
    """Frames converted into one model-ready batch (use :func:`preprocess`).

    A DLPack producer (``torch.from_dlpack(batch)``, ``numpy.from_dlpack(batch)``): shape
    (N, 3, H, W) for nchw, (N, H, W, 3) for nhwc, compact, on the frames' device. It holds its
    memory itself: the frames may be released at once.
    """

    def to_frame(self, boxes: Any, i: int) -> Any:
        """Maps boxes from tensor pixels of image ``i`` back to frame ``i``'s pixels.

        boxes: an (M, 4) array of x1, y1, x2, y2 (numpy, torch or cupy, or anything numpy takes);
        returns a float array of the same kind: (x - pad_x) / scale_x and (y - pad_y) / scale_y,
        clipped to the frame (0..width, 0..height).
        """
        sx, sy, px, py = self.transforms[i]
        width, height = self.frame_sizes[i]
        if not hasattr(boxes, "shape"):
            import numpy

            boxes = numpy.asarray(boxes, dtype=numpy.float64).reshape(-1, 4)
        shape = tuple(boxes.shape)
        if len(shape) != 2 or shape[1] != 4:
            raise ValueError(f"boxes must be an (M, 4) array of x1, y1, x2, y2, got shape {shape}")
        out = boxes * 1.0  # a float copy, of the same library and device
        out[:, 0::2] -= px
        out[:, 0::2] /= sx
        out[:, 1::2] -= py
        out[:, 1::2] /= sy
        out[:, 0::2] = out[:, 0::2].clip(0, width)
        out[:, 1::2] = out[:, 1::2].clip(0, height)
        return out


def preprocess(
    frames: Union[CuframesFrame, Sequence[CuframesFrame]],
    size: Union[int, Tuple[int, int]] = (640, 640),
    *,
    dtype: str = "float16",
    layout: str = "nchw",
    channels: str = "rgb",
    resize: str = "letterbox",
    pad_value: float = 114,
    scale: float = 1 / 255,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    stream: object = None,
) -> CuframesBatch:
    """Converts frames (of any rings, sizes and formats) into one batch for a model.

    frames: one CuframesFrame or a sequence of them, all in host memory or all on one GPU.
    size: (height, width) of each image, or one int for a square. dtype: "uint8" (the 0..255
    level), "float16" or "float32"; layout: "nchw" or "nhwc"; channels: "rgb" or "bgr"; resize:
    "letterbox" (keep the aspect, centre, pad with pad_value, a 0..255 level) or "stretch".
    Float values are (level * scale - mean[c]) / std[c], c the output channel; mean and std are
    None or 3 numbers. Colours follow each frame's color_matrix and color_range (UNKNOWN: BT.709
    from 720 rows up, BT.601 below, limited range). stream: the CUDA stream to work on (default:
    frames[0]'s subscriber's consumer_stream); None for host frames.

    Returns a CuframesBatch on the frames' device: ``.transforms`` per frame, ``.to_frame(boxes,
    i)``. The frames may be released right after the call: their release waits for the work.
    Raises CuframesInvalidArgument (a ValueError) naming a bad argument, TypeError for a wrong
    type, CuframesDeviceLost for CUDA failures.
    """
    return CuframesBatch(frames, size, dtype=dtype, layout=layout, channels=channels,
                         resize=resize, pad_value=pad_value, scale=scale, mean=mean, std=std,
                         stream=stream)


def _stub_signatures() -> dict[str, inspect.Signature]:
    """The signature of each function of the compiled module, read from its stub
    (_cuframes.pyi, held equal to the binding by tests/python/test_stubs.py): pybind11's
    functions carry none that ``inspect`` can read."""
    tree = ast.parse((Path(__file__).parent / "_cuframes.pyi").read_text())
    env = dict(vars(_cuframes))

    def default(node: Optional[ast.expr]) -> object:
        if node is None:
            return inspect.Parameter.empty
        return eval(compile(ast.Expression(node), "_cuframes.pyi", "eval"), env)  # our own stub

    def annotation(node: Optional[ast.expr]) -> object:
        return inspect.Parameter.empty if node is None else ast.unparse(node)

    sigs = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        a = fn.args
        positional = a.posonlyargs + a.args
        defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
        params = [inspect.Parameter(p.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=default(d), annotation=annotation(p.annotation))
                  for p, d in zip(positional, defaults)]
        params += [inspect.Parameter(p.arg, inspect.Parameter.KEYWORD_ONLY,
                                     default=default(d), annotation=annotation(p.annotation))
                   for p, d in zip(a.kwonlyargs, a.kw_defaults)]
        sigs[fn.name] = inspect.Signature(params, return_annotation=annotation(fn.returns))
    return sigs


def _with_signature(fn: Callable[..., Any], sig: inspect.Signature) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    call.__signature__ = sig  # type: ignore[attr-defined]
    return call


for _name, _sig in _stub_signatures().items():
    if _name in __all__:
        globals()[_name] = _with_signature(getattr(_cuframes, _name), _sig)
del _name, _sig


def __dir__() -> list[str]:
    """The public API only (``__all__``), not the modules and names this file imports."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
