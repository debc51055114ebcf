"""CUDA rings end to end: torch and cupy sources and consumers, content checked on the GPU."""

from __future__ import annotations

import cupy
import numpy as np
import pytest
import torch

import cuframes
from helpers import Peer, make_frame, wait_until

PF = cuframes.PixelFormat
Mode = cuframes.SubscriberMode
W, H = 1366, 768  # odd geometry: cuda rings pad rows to 256 bytes -> pitch 1536


def gpu_pattern(fmt: PF, w: int, h: int, tag: int) -> torch.Tensor:
    """make_frame(...) on the GPU, as torch (P010: int16 with the same bits)."""
    a = make_frame(fmt, w, h, tag)
    if fmt == PF.P010:
        a = a.view(np.int16)
    return torch.from_numpy(a).cuda()


def test_torch_source_torch_consumer(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, W, H, memory="cuda") as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000) as sub:
        assert pub.memory == "cuda" and sub.memory == "cuda"
        assert pub.pitch_y == 1536
        src = gpu_pattern(PF.NV12, W, H, 3)
        assert pub.publish(src, pts_ns=3) == 1
        with sub.next_frame(timeout_ms=5000) as frame:
            assert frame.__dlpack_device__() == (2, 0)
            assert frame.memory == "cuda" and frame.device == 0 and frame.pitch_y == 1536
            y = torch.from_dlpack(frame)
            assert y.is_cuda and y.shape == (H, W) and y.stride() == (1536, 1)
            assert y.dtype == torch.uint8
            uv = torch.from_dlpack(frame.dlpack_uv())
            assert uv.shape == (H // 2, W) and uv.stride() == (1536, 1)
            assert torch.equal(y, src[:H]) and torch.equal(uv, src[H:])
            assert torch.equal(torch.from_dlpack(frame.yuv), src)
            assert y.data_ptr() == frame.cuda_ptr
            del y, uv


def test_strided_torch_source_and_host_source(runtime_dir: str, key: str) -> None:
    """Any row stride on the GPU; and a host (numpy) source uploaded into the cuda ring."""
    with cuframes.publish(key, W, H, memory="cuda") as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000) as sub:
        wide = torch.zeros((H * 3 // 2, W + 100), dtype=torch.uint8, device="cuda")
        wide[:, :W] = gpu_pattern(PF.NV12, W, H, 4)
        pub.publish(wide[:, :W], 4)
        pub.publish(make_frame(PF.NV12, W, H, 5), 5)  # numpy: host memory, uploaded
        for tag in (4, 5):
            with sub.next_frame(timeout_ms=5000) as frame:
                assert frame.pts_ns == tag
                assert torch.equal(torch.from_dlpack(frame.yuv), gpu_pattern(PF.NV12, W, H, tag))


def test_cupy_source_cupy_consumer_p010(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, W, H, PF.P010, memory="cuda") as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000) as sub:
        src = cupy.asarray(make_frame(PF.P010, W, H, 6))
        assert src.dtype == cupy.uint16
        pub.publish(src, 6)
        with sub.next_frame(timeout_ms=5000) as frame:
            assert frame.bytes_per_sample == 2 and frame.pitch_y == 2816  # 2732 -> 256-aligned
            y = cupy.from_dlpack(frame)  # passes cupy's current stream
            assert y.dtype == cupy.uint16 and y.shape == (H, W)
            assert y.strides == (frame.pitch_y, 2)
            uv = cupy.from_dlpack(frame.dlpack_uv())  # a raw capsule
            assert bool((y == src[:H]).all()) and bool((uv == src[H:]).all())
            del y, uv


def test_torch_int16_source_into_p010(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 640, 360, PF.P010, memory="cuda") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=5000) as sub:
        src = gpu_pattern(PF.P010, 640, 360, 7)  # int16 carrying the P010 bits
        pub.publish(src, 7)
        with sub.next_frame(timeout_ms=5000) as frame:
            got = cupy.from_dlpack(frame.yuv)
            want = cupy.asarray(make_frame(PF.P010, 640, 360, 7))
            assert bool((got == want).all())


def test_loan_written_with_torch(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, W, H, memory="cuda") as pub, \
         cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=5000) as sub:
        stream = torch.cuda.Stream()
        src = gpu_pattern(PF.NV12, W, H, 8)
        with torch.cuda.stream(stream):
            with pub.loan() as loan:
                assert loan.__dlpack_device__() == (2, 0)
                dst = torch.from_dlpack(loan.yuv)  # exported to `stream`: commit waits for it
                dst.copy_(src)
                torch.cuda._sleep(20_000_000)  # keep the stream busy: commit must wait for it
                loan.pts_ns = 8
            del dst
        assert loan.committed and loan.seq == 1
        with sub.next_frame(timeout_ms=5000) as frame:
            assert frame.pts_ns == 8
            assert torch.equal(torch.from_dlpack(frame.yuv), src)
        # cupy writer, explicit commit
        loan = pub.loan()
        cupy.from_dlpack(loan.yuv)[...] = cupy.asarray(make_frame(PF.NV12, W, H, 9))
        loan.commit(pts_ns=9)
        with sub.next_frame(timeout_ms=5000) as frame:
            assert torch.equal(torch.from_dlpack(frame.yuv), gpu_pattern(PF.NV12, W, H, 9))


def test_consumer_stream_release_after_work(runtime_dir: str, key: str) -> None:
    """The seed's pattern: take the tensor, launch work on the consumer stream, release at once.
    The slot stays held until that work has run, then the hold goes by itself."""
    stream = torch.cuda.Stream()
    with cuframes.publish(key, W, H, memory="cuda", slots=3) as pub, \
         cuframes.subscribe(key, connect_timeout_ms=5000, consumer_stream=stream.cuda_stream) as sub:
        assert sub.consumer_stream == stream.cuda_stream
        src = gpu_pattern(PF.NV12, W, H, 10)
        pub.publish(src, 10)
        with torch.cuda.stream(stream):
            with sub.next_frame(timeout_ms=5000) as frame:
                y = torch.from_dlpack(frame)
                torch.cuda._sleep(400_000_000)  # ~0.2 s of GPU time queued before the copy
                copy = y.clone()  # reads the frame once the sleep is done (no host sync)
            del y  # frame and tensor released right after launching the work
            assert not stream.query()  # the GPU has not run that work yet...
            assert sub.stats()["held_frames"] == 1  # ...so the slot is still held
            assert sub.ring_occupancy == 1
        stream.synchronize()
        assert torch.equal(copy, src[:H])
        wait_until(lambda: sub.stats()["held_frames"] == 0, what="the host-func release")
        assert sub.ring_occupancy == 0


def test_consumer_stream_as_object(runtime_dir: str, key: str) -> None:
    stream = torch.cuda.Stream()
    cstream = cupy.cuda.Stream(non_blocking=True)
    with cuframes.publish(key, 64, 64, memory="cuda"):
        with cuframes.subscribe(key, connect_timeout_ms=5000, consumer_stream=stream) as s1:
            assert s1.consumer_stream == stream.cuda_stream
        with cuframes.subscribe(key, connect_timeout_ms=5000, consumer_stream=cstream) as s2:
            assert s2.consumer_stream == cstream.ptr


def test_dlpack_stream_argument(runtime_dir: str, key: str) -> None:
    with cuframes.publish(key, 64, 64, memory="cuda") as pub, \
         cuframes.subscribe(key, connect_timeout_ms=5000) as sub:
        pub.publish(torch.zeros((96, 64), dtype=torch.uint8, device="cuda"))
        with sub.next_frame(timeout_ms=5000) as frame:
            with pytest.raises(BufferError, match="ambiguous"):
                frame.__dlpack__(stream=0)
            s = torch.cuda.Stream()
            frame.__dlpack__(stream=s.cuda_stream)
            frame.__dlpack__(stream=1)
            frame.__dlpack__(stream=-1)
            with pytest.raises(BufferError):
                frame.__dlpack__(dl_device=(1, 0))


def test_cuda_frames_across_processes(runtime_dir: str, key: str, peers: list[Peer]) -> None:
    """A publisher process with a cuda ring (host sources uploaded, and a torch-written loan);
    this process reads the frames with torch, zero-copy."""
    pub = Peer("publish", key, "--memory", "cuda")
    peers.append(pub)
    pub.expect("READY")
    with cuframes.subscribe(key, mode=Mode.STRICT_ORDER, connect_timeout_ms=10000) as sub:
        assert sub.memory == "cuda"
        pub.call("pub 21")
        pub.call("loan 22")
        for tag in (21, 22):
            with sub.next_frame(timeout_ms=10000) as frame:
                assert frame.pts_ns == tag and frame.__dlpack_device__() == (2, 0)
                assert torch.equal(torch.from_dlpack(frame.yuv), gpu_pattern(PF.NV12, W, H, tag))
        pub.call("pub 23")
        frame = sub.next_frame(timeout_ms=10000)
        pub.kill()
        with pytest.raises(cuframes.CuframesPublisherGone):
            sub.next_frame(timeout_ms=10000)
        # Still readable: the import keeps the memory alive until released.
        assert torch.equal(torch.from_dlpack(frame.yuv), gpu_pattern(PF.NV12, W, H, 23))
        frame.release()


def test_many_frames_content_under_load(runtime_dir: str, key: str) -> None:
    """NEWEST_ONLY reader while the publisher laps the ring: every frame handed out is intact."""
    with cuframes.publish(key, W, H, memory="cuda", slots=4) as pub, \
         cuframes.subscribe(key, connect_timeout_ms=5000) as sub:
        frames = [gpu_pattern(PF.NV12, W, H, t) for t in range(8)]
        checked = 0
        for i in range(200):
            pub.publish(frames[i % 8], i % 8)
            if i % 3 == 0:
                with sub.next_frame(timeout_ms=5000) as frame:
                    got = torch.from_dlpack(frame.yuv)
                    assert torch.equal(got, frames[frame.pts_ns])
                    checked += 1
                    del got
        assert checked == 67
