"""Config files are read safely (issue 14): only a regular file of at most 1 MiB is read, opened
without blocking. A FIFO, /dev/zero, a directory or an oversized file is a clear error naming
the path: at start (exit 2, also with --check-config) and on reload (SIGHUP: refused and logged,
the running cameras go on, the status file stays fresh, SIGTERM still works)."""

from __future__ import annotations

import os
import resource
import signal
import time
from pathlib import Path
from typing import Callable

import pytest

import cuframes

import svc

MAX_BYTES = 1 << 20  # docs/configuration.md: a config file is at most 1 MiB
CAM = {"url": "testsrc://?width=320&height=240&fps=30"}


def _padded(path: Path, runtime_dir: str, cameras: dict[str, dict[str, str]]) -> None:
    """A valid config made larger than MAX_BYTES by a trailing comment block."""
    svc.write_config(path, cameras, runtime_dir)
    line = "# " + "x" * 1021 + "\n"
    with open(path, "a") as f:
        f.write(line * (MAX_BYTES // len(line) + 16))
    assert path.stat().st_size > MAX_BYTES


def _make(kind: str, path: Path, runtime_dir: str) -> str:
    """Puts a bad config of this kind at path (atomically, replacing what is there); returns
    what the error message must say about it."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(tmp)
        want = "not a regular file (a FIFO)"
    elif kind == "dev-zero":
        os.symlink("/dev/zero", tmp)
        want = "not a regular file (a character device)"
    elif kind == "directory":
        tmp.mkdir()
        path.unlink(missing_ok=True)  # a directory cannot be renamed over a file
        want = "not a regular file (a directory)"
    elif kind == "oversized":
        # Valid YAML with a second camera: were it read, the reload would add it.
        _padded(tmp, runtime_dir, {"a": CAM, "b": CAM})
        want = "larger than the 1 MiB a config may have"
    elif kind == "sparse-3GiB":
        with open(tmp, "wb") as f:
            f.truncate(3 << 30)
        want = "larger than the 1 MiB a config may have"
    else:
        raise ValueError(kind)
    os.replace(tmp, path)
    return want


KINDS = ["fifo", "dev-zero", "directory", "oversized", "sparse-3GiB"]


@pytest.mark.parametrize("check", [True, False], ids=["check-config", "start"])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_config_file_at_start(kind: str, check: bool, workdir: Path,
                                  runtime_dir: str) -> None:
    path = workdir / "cuframes.yaml"
    want = _make(kind, path, runtime_dir)
    args = ["--config", str(path)] + (["--check-config"] if check else [])
    t = time.monotonic()
    r = svc.run_service(args, timeout=10)
    took = time.monotonic() - t
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr[-2000:])
    assert f"cuframes-service: {path}: " in r.stderr and want in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert took < 5, f"{took:.1f} s to refuse it"
    assert cuframes.list_publishers(runtime_dir) == []


def test_symlink_to_a_regular_file_is_fine(workdir: Path, runtime_dir: str) -> None:
    real = svc.write_config(workdir / "real.yaml", {"a": CAM}, runtime_dir)
    link = workdir / "link.yaml"
    link.symlink_to(real)
    r = svc.run_service(["--config", str(link), "--check-config"])
    assert r.returncode == 0, (r.returncode, r.stderr)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_config_file_on_reload(kind: str, service: Callable[..., svc.Service],
                                   runtime_dir: str) -> None:
    """SIGHUP with the config path now a bad file: the reload is refused with a log line naming
    the path and why, the running camera's STRICT_ORDER subscriber sees no gap and the same
    ring, the status file keeps being rewritten, and SIGTERM stops the service at once."""
    s = service({"a": CAM})
    s.wait_state("a", "streaming", 10)
    epoch = int(cuframes.observe("cam-a", runtime_dir=runtime_dir)["epoch"])
    reader = svc.FrameReader("cam-a", runtime_dir, 320, 240, consumer_name="reload")
    reader.start()
    try:
        reader.wait_frames(10, 10, s.describe)
        want = _make(kind, s.config, runtime_dir)
        s.send(signal.SIGHUP)
        needle = f"reload refused, keeping the running config: {s.config}: "

        def refused() -> list[str]:
            s.assert_running()
            return [ln for ln in s.log_tail(400).splitlines() if needle in ln]
        lines = svc.wait_for(refused, 10, "the reload refused in the log", s.describe)
        assert want in lines[0], lines[0]
        assert "reloaded" not in s.log_tail(400), s.log_tail()
        # The control loop is alive: the status file is rewritten (uptime moves on) ...
        st = s.status()
        assert st is not None
        up0 = st["uptime_s"]
        svc.wait_for(lambda: (s.status() or {}).get("uptime_s", 0) >= up0 + 1.0, 10,
                     "the status file rewritten after the refused reload", s.describe)
        assert sorted((s.status() or {})["cameras"]) == ["a"], s.describe()
        # ... and the camera never stopped.
        n = reader.count()
        reader.wait_frames(n + 30, 10, s.describe)
        assert s.camera("a")["state"] == "streaming", s.describe()
        assert int(cuframes.observe("cam-a", runtime_dir=runtime_dir)["epoch"]) == epoch
    finally:
        reader.finish()  # raises on a gap or an error
    t = time.monotonic()
    assert s.stop(signal.SIGTERM, timeout=5) == 0, s.log_tail()
    print(f"{kind}: refused; SIGTERM answered in {time.monotonic() - t:.2f} s")


def _vm_size(pid: int) -> int:
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("VmSize:"):
            return int(ln.split()[1]) * 1024
    raise AssertionError(f"no VmSize for {pid}")


def test_reload_out_of_memory_keeps_running(service: Callable[..., svc.Service],
                                            runtime_dir: str) -> None:
    """A reload that runs out of memory (the service's address space limited to what it uses
    plus 64 MiB, and a 1 MiB config of one long YAML list, which the parser needs some 150 MB
    for) is refused and logged like any other; the camera goes on (its ring the same, its
    subscriber still getting frames: NEWEST_ONLY, as the parse may starve a strict reader on 2
    cores), and with its memory back the service reloads and stops as ever. Before, bad_alloc
    escaped the reload and killed the service with every camera."""
    s = service({"a": CAM})
    s.wait_state("a", "streaming", 10)
    epoch = int(cuframes.observe("cam-a", runtime_dir=runtime_dir)["epoch"])
    reader = svc.FrameReader("cam-a", runtime_dir, 320, 240, consumer_name="oom", strict=False)
    reader.start()
    soft, hard = resource.prlimit(s.pid, resource.RLIMIT_AS)
    try:
        reader.wait_frames(10, 10, s.describe)
        svc.write_config(s.config, {"a": CAM}, runtime_dir)
        head = s.config.read_text()
        items = (MAX_BYTES - len(head) - len("padding:\n")) // 4
        s.config.write_text(head + "padding:\n" + "- x\n" * items)
        assert s.config.stat().st_size <= MAX_BYTES
        resource.prlimit(s.pid, resource.RLIMIT_AS, (_vm_size(s.pid) + (64 << 20), hard))
        s.send(signal.SIGHUP)
        needle = f"reload refused, keeping the running config: {s.config}: out of memory"
        svc.wait_for(lambda: s.assert_running() or needle in s.log_tail(400), 30,
                     "the reload refused for memory", s.describe)
        resource.prlimit(s.pid, resource.RLIMIT_AS, (soft, hard))
        n = reader.count()
        reader.wait_frames(n + 30, 10, s.describe)
        assert s.camera("a")["state"] == "streaming", s.describe()
        assert int(cuframes.observe("cam-a", runtime_dir=runtime_dir)["epoch"]) == epoch
        # With memory back, a good config reloads.
        svc.write_config(s.config, {"a": CAM, "b": CAM}, runtime_dir)
        s.send(signal.SIGHUP)
        s.wait_state("b", "streaming", 10)
    finally:
        if s.running():
            resource.prlimit(s.pid, resource.RLIMIT_AS, (soft, hard))
        reader.finish()
    assert s.stop(signal.SIGTERM, timeout=5) == 0, s.log_tail()
