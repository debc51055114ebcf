"""Command line and config validation: bad configs exit 2 with "file:line:column: key: message"
on stderr (both when starting and with --check-config), the shipped configs pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cuframes

import svc

# Each case: (id, YAML text, expected line, expected key regex or None for YAML syntax errors).
# The text is formatted with rt= the runtime dir; line numbers count from 1.
HEAD = 'runtime_dir: "{rt}"\nstatus_interval: 1s\ncameras:\n  a:\n'
#       line 1                  line 2               line 3     line 4
BAD = [
    ("unknown-camera-key",
     HEAD + '    url: "testsrc://"\n    bogus_key: 3\n', 6, r"cameras\.a\.bogus_key"),
    ("unknown-top-level-key",
     'runtime_dir: "{rt}"\ncamras:\n  a:\n    url: "testsrc://"\n', 2, r"camras"),
    ("unknown-nested-key",
     HEAD + '    url: "testsrc://"\n    reconnect:\n      initial: 1s\n      maxx: 5s\n', 8,
     r"cameras\.a\.reconnect\.maxx"),
    ("wrong-type-slots",
     HEAD + '    url: "testsrc://"\n    slots: many\n', 6, r"cameras\.a\.slots"),
    ("wrong-type-loop",
     HEAD + '    url: "testsrc://"\n    loop: maybe\n', 6, r"cameras\.a\.loop"),
    ("wrong-type-map-as-scalar",
     HEAD + '    url: "testsrc://"\n    reconnect: 5\n', 6, r"cameras\.a\.reconnect"),
    ("bad-duration",
     HEAD + '    url: "testsrc://"\n    stall_timeout: 2 parsecs\n', 6,
     r"cameras\.a\.stall_timeout"),
    ("bad-enum",
     HEAD + '    url: "testsrc://"\n    policy: sometimes\n', 6, r"cameras\.a\.policy"),
    ("out-of-range-slots",
     HEAD + '    url: "testsrc://"\n    slots: 1\n', 6, r"cameras\.a\.slots"),
    ("bad-default",
     'runtime_dir: "{rt}"\ndefaults:\n  memory: vram\ncameras:\n  a:\n    url: "testsrc://"\n',
     3, r"defaults\.memory"),
    ("duplicate-camera",
     HEAD + '    url: "testsrc://"\n  b:\n    url: "testsrc://"\n  a:\n    url: "testsrc://"\n',
     8, r"cameras\.a"),
    ("bad-url-scheme",
     HEAD + '    url: "ftp://example.com/cam"\n', 5, r"cameras\.a\.url"),
    ("missing-url",
     HEAD + '    slots: 4\n', (4, 5), r"cameras\.a(\.url)?"),
    ("bad-camera-name",
     'runtime_dir: "{rt}"\ncameras:\n  "front door":\n    url: "testsrc://"\n', 3,
     r"cameras\.front door"),
    ("yaml-illegal-map-value",
     HEAD + '    url: testsrc://: x: y\n    slots: 4\n', 5, None),
    ("yaml-bad-indentation",
     HEAD + '    url: "testsrc://"\n   slots: 4\n', 6, None),
]


def _expect_message(stderr: str, path: Path, line: int | tuple[int, ...],
                    key: str | None) -> None:
    lines = "|".join(str(n) for n in (line if isinstance(line, tuple) else (line,)))
    if key is None:  # a YAML syntax error has no key: file:line:column: then the message
        pat = rf"{re.escape(str(path))}:({lines}):\d+: \S"
    else:
        pat = rf"{re.escape(str(path))}:({lines}):\d+: {key}: \S"
    assert re.search(pat, stderr, re.M), (
        f"expected a line matching {pat!r} on stderr; got:\n{stderr}")


@pytest.mark.parametrize("text,line,key", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config_rejected(text: str, line: int | tuple[int, ...], key: str | None, workdir: Path,
                             runtime_dir: str) -> None:
    path = workdir / "bad.yaml"
    path.write_text(text.format(rt=runtime_dir))

    # Starting on it: exit 2 at once, nothing published.
    r = svc.run_service(["--config", str(path)])
    assert r.returncode == 2, (f"exit code {r.returncode}, expected 2\nstdout: {r.stdout}\n"
                               f"stderr: {r.stderr}")
    _expect_message(r.stderr, path, line, key)
    assert cuframes.list_publishers(runtime_dir) == []

    # --check-config: the same verdict and message.
    r = svc.run_service(["--config", str(path), "--check-config"])
    assert r.returncode == 2, (f"--check-config exit code {r.returncode}, expected 2\n"
                               f"stdout: {r.stdout}\nstderr: {r.stderr}")
    _expect_message(r.stderr, path, line, key)
    assert "OK" not in r.stdout.split()


def test_missing_config_file(workdir: Path) -> None:
    path = workdir / "absent.yaml"
    for extra in ([], ["--check-config"]):
        r = svc.run_service(["--config", str(path), *extra])
        assert r.returncode == 2, (extra, r.returncode, r.stderr)
        assert str(path) in r.stderr, r.stderr


def test_check_config_good(workdir: Path, runtime_dir: str) -> None:
    path = svc.write_config(workdir / "good.yaml", {
        "a": {"url": "testsrc://?width=640&height=360&fps=10", "slots": 4,
              "policy": "strict_wait", "stall_timeout": "2s", "open_timeout": "500ms",
              "reconnect": {"initial": "250ms", "max": "4s"}},
        "b": {"url": "rtsp://user:pw@192.0.2.1:554/stream", "rtsp_transport": "udp",
              "decoder": "software", "memory": "auto", "packet_ring": "1MiB"},
        "c": {"url": "testsrc://", "width": 320, "height": 240, "fps": 5, "loop": False,
              "realtime": False},
    }, runtime_dir)
    r = svc.run_service(["--config", str(path), "--check-config"])
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "OK" in (r.stdout + r.stderr), (r.stdout, r.stderr)
    assert cuframes.list_publishers(runtime_dir) == [], "--check-config started cameras"


@pytest.mark.parametrize("name", ["cuframes.yaml", "cameras.example.yaml"])
def test_check_config_shipped(name: str) -> None:
    path = svc.ROOT / "config" / name
    assert path.exists(), f"{path} is not shipped"
    r = svc.run_service(["--config", str(path), "--check-config"])
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "OK" in (r.stdout + r.stderr), (r.stdout, r.stderr)


def test_version() -> None:
    r = svc.run_service(["--version"])
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert re.search(r"\d+\.\d+\.\d+", r.stdout), r.stdout


def test_bad_command_line(workdir: Path, runtime_dir: str) -> None:
    r = svc.run_service(["--no-such-option"])
    assert r.returncode != 0, r
    r = svc.run_service(["--config", str(workdir / "absent.yaml"), "extra-argument"])
    assert r.returncode != 0, r


def test_help_matches_docs() -> None:
    """--help lists the options of main.cc's table; docs/configuration.md's "Command line"
    table documents the same ones, with the same value names."""
    r = svc.run_service(["--help"])
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].startswith("usage: cuframes-service "), r.stdout
    in_help = [re.split(r"\s{2,}", line.strip())[0] for line in lines[1:] if line.startswith("  --")]
    assert lines[0] == "usage: cuframes-service " + " ".join(f"[{o}]" for o in in_help)
    doc = (svc.ROOT / "docs" / "configuration.md").read_text()
    section = doc.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    in_doc = [row.split("`")[1] for row in section.splitlines() if row.startswith("| `")]
    assert in_help == in_doc


@pytest.mark.parametrize("check", [False, True], ids=["run", "check-config"])
def test_bad_log_level(check: bool, workdir: Path, runtime_dir: str) -> None:
    """An unknown --log-level is refused, also by --check-config (which must say whether the
    service would start with these arguments)."""
    path = svc.write_config(workdir / "good.yaml", {"a": {"url": "testsrc://"}}, runtime_dir)
    extra = ["--check-config"] if check else []
    r = svc.run_service(["--config", str(path), "--log-level", "loud", *extra], timeout=10)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "loud" in r.stderr, r.stderr
    assert cuframes.list_publishers(runtime_dir) == []
