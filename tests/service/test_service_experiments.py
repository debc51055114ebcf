"""The experiments' switches (issue 16; docs/architecture.md, "The decode pipeline at scale")
that act without a GPU: CUFRAMES_DECODER_OPTS passes options to the decoder, and names those the
decoder does not have. (CUFRAMES_PUBLISH_SYNC and CUFRAMES_CUDA_SCHED act on CUDA only: the GPU
machine's service benchmark runs them, bench/service_bench.py --variants experiments.)"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

import media
import svc


def test_decoder_opts_reach_the_decoder(clip: Callable[[str], tuple[media.Clip, Path]],
                                        service: Callable[..., svc.Service],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    c, path = clip("h264-1280x720")
    monkeypatch.setenv("CUFRAMES_DECODER_OPTS", "threads=1,no_such_option=3")
    s = service({"f": {"url": str(path), "decoder": "software", "loop": True,
                       "realtime": False}})
    s.wait_camera("f", lambda x: x["frames"] >= c.frames, 30, "a whole pass")
    log = s.log_tail(400)
    assert "CUFRAMES_DECODER_OPTS: the h264 decoder has no option no_such_option" in log, log
    assert "has no option threads" not in log, log  # an option it has is taken
    s.assert_running()
