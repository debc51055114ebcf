"""frame.torch() over a stream of frames, with a real PyTorch: the tensors next_frame() makes
ahead (python/src/torch_spares.h) are what torch.from_dlpack gives, hold their frames as long as
they live, and are taken once the ring has come round. Shared by the CPU test (host rings, run
in an interpreter that has torch: tests/python/test_fast_path.py) and its GPU twin (cuda and
host rings: tests/python/gpu/test_gpu_fast_path.py)."""

from __future__ import annotations

from typing import Any

from helpers import make_frame, wait_until


def check_torch_ahead(cuframes: Any, torch: Any, key: str, runtime_dir: str, memory: str,
                      fast: bool, ahead: bool, native: bool = True) -> None:
    """fast: torch's C import (_torch_fast_path); ahead: tensors made ahead (_torch_made_ahead).
    None are made without both. native: torch's current stream and inference mode asked of its C
    functions (_torch_native), which the inference-mode frames below would catch answering
    wrong."""
    PF = cuframes.PixelFormat
    w, h, slots = 320, 240, 3
    n = 5 * slots
    want = [make_frame(PF.NV12, w, h, tag) for tag in range(n)]
    device = "cuda" if memory == "cuda" else "cpu"
    cuframes._cuframes._torch_fast_path(fast)
    cuframes._cuframes._torch_made_ahead(ahead)
    cuframes._cuframes._torch_native(native)
    try:
        with cuframes.publish(key, w, h, memory=memory, slots=slots,
                              runtime_dir=runtime_dir) as pub, \
             cuframes.subscribe(key, mode=cuframes.SubscriberMode.STRICT_ORDER,
                                connect_timeout_ms=5000, runtime_dir=runtime_dir) as sub:
            kept = None
            for tag, data in enumerate(want):
                src = torch.from_numpy(data)
                pub.publish(src.cuda() if memory == "cuda" else data, tag)
                frame = sub.next_frame(timeout_ms=5000)
                assert frame.pts_ns == tag
                yuv, y = frame.torch("yuv"), frame.torch("y")
                for plane, t in (("yuv", yuv), ("y", y)):
                    ref = torch.from_dlpack(getattr(frame, plane))
                    assert (t.data_ptr(), t.shape, t.stride(), t.dtype, t.device) == \
                        (ref.data_ptr(), ref.shape, ref.stride(), ref.dtype, ref.device), \
                        (tag, plane)
                    assert t.device.type == device and not t.is_inference(), (tag, plane)
                    del ref, t
                assert torch.equal(yuv.cpu(), src), tag
                assert torch.equal(y.cpu(), src[:h]), tag
                if tag % 4 == 1:  # inference mode is torch.from_dlpack's: an inference tensor
                    with torch.inference_mode():
                        uv = frame.torch("uv")
                    assert uv.is_inference() and torch.equal(uv.cpu(), src[h:]), tag
                    del uv
                if tag == 4:  # kept past its frame: its slot stays held, never written
                    kept = (frame.torch("yuv"), src)
                frame.release()
                others = 1 if tag > 4 else 0  # frame 4, held by kept
                assert sub.stats()["held_frames"] == 1 + others, tag  # the tensors hold it
                del yuv, y, frame
                left = others + (1 if tag == 4 else 0)
                wait_until(lambda: sub.stats()["held_frames"] == left,
                           what=f"frame {tag} released when its tensors went")
            assert kept is not None and torch.equal(kept[0].cpu(), kept[1])
            kept = None
            wait_until(lambda: sub.stats()["held_frames"] == 0, what="frame 4 released")
            made, taken = sub._torch_ahead()
            if fast and ahead:
                # From the ring's second round on, every .torch("yuv") / ("y") takes one (the
                # held slot's excepted); uv (in inference mode) is made only while it is.
                assert taken >= 2 * (n - 2 * slots), (made, taken)
                assert made >= taken, (made, taken)
            else:
                assert (made, taken) == (0, 0)
            if fast and ahead:  # every torch since 1.9 has c10::InferenceMode::is_enabled
                assert cuframes._cuframes._torch_native_used()[1], torch.__version__
    finally:
        cuframes._cuframes._torch_fast_path(True)
        cuframes._cuframes._torch_made_ahead(True)
        cuframes._cuframes._torch_native(True)
