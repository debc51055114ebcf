"""The `cuframes` command-line tool's command line (no GPU): --version and the usage, the usage
against docs/cli.md, usage errors (exit 2), a key with no publisher, output that cannot be
written, the runtime directory (missing, not a directory, from CUFRAMES_RUNTIME_DIR)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

import cuframes

import clitest
from clitest import run_cli


def test_version_and_help() -> None:
    r = run_cli("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"cuframes {cuframes.version_string()} (libcuframes "
                               f"{cuframes.version_string()}, protocol "
                               f"{cuframes.protocol_version()})")
    for args in (["help"], ["--help"], ["stat", "--help"]):
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("usage: cuframes COMMAND")
        for command in ("list", "stat", "snapshot", "sub"):
            assert f"\n  {command} " in r.stdout


def _usage_rows(text: str, section: str) -> list[str]:
    """The left column of a section of the usage ("Commands:", "Options:"): each row starts
    with two spaces; its help follows after two or more spaces, or on the lines below."""
    rows: list[str] = []
    lines = text.split("\n")
    start = lines.index(section) + 1
    for line in lines[start:]:
        if not line.strip():
            break
        if line.startswith("  ") and not line.startswith("   "):
            rows.append(re.split(r"\s{2,}", line.strip())[0])
    return rows


def test_help_matches_docs() -> None:
    """docs/cli.md against the usage that the command table prints: the command table of
    "Command line" lists exactly the usage's commands, each command's section opens with its
    synopsis, and every option of the usage is documented (and no other)."""
    usage = run_cli("--help").stdout
    commands = _usage_rows(usage, "Commands:")
    options = _usage_rows(usage, "Options:")
    assert commands and options, usage
    doc = (clitest.ROOT / "docs" / "cli.md").read_text()

    section = doc.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    documented = [re.sub(r"`", "", row.split(" | ")[0][2:]).replace("\\|", "|")
                  for row in section.split("\n") if row.startswith("| `")]
    assert documented == commands, (documented, commands)

    common = [o for o in options if o.startswith("--runtime-dir")]
    assert common == ["--runtime-dir DIR"], options
    for synopsis in commands:
        name = synopsis.split(" ")[0].rstrip(",")
        if name in ("help", "--version"):
            continue
        line = f"    cuframes {synopsis} [{common[0]}]"
        assert f"\n## {name}\n" in doc, name
        assert line in doc.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0], line

    in_usage = {o.split(" ")[0] for o in options}
    # Not options of a command: the pseudo-commands, cmake's (how to build), "--opt=value".
    others = {"--help", "--version", "--build", "--install", "--opt"}
    in_doc = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", doc)) - others
    assert in_usage == in_doc, (sorted(in_usage - in_doc), sorted(in_doc - in_usage))


@pytest.mark.parametrize("args, message", [
    ([], "no command given"),
    (["bogus"], "unknown command 'bogus'"),
    (["list", "--bogus"], "unknown option '--bogus'"),
    (["list", "extra"], "unexpected argument 'extra'"),
    (["list", "--json=1"], "option --json takes no value"),
    (["stat"], "missing KEY"),
    (["stat", "k", "--runtime-dir"], "option --runtime-dir needs a value"),
    (["stat", "k", "--watch", "0"], "option --watch: '0' is not a number from 0.05"),
    (["stat", "k", "--watch", "soon"], "unexpected argument 'soon'"),
    (["snapshot", "k"], "missing KEY and FILE"),
    (["snapshot", "k", "frame.gif"], "must end in .jpg, .jpeg or .png"),
    (["snapshot", "k", "frame.png", "--timeout", "-5"], "option --timeout: '-5'"),
    (["sub", "k", "--mode", "fast"], "option --mode: 'fast' is not newest_only (newest) or strict_order (strict)"),
    (["sub", "k", "--seconds", "x"], "option --seconds: 'x' is not a number"),
    # Values the library refuses are bad values too (issue 20).
    (["stat", "bad key"], "invalid key 'bad key'"),
    (["snapshot", "bad/key", "f.png"], "invalid key 'bad/key'"),
    (["sub", "k", "--name", "bad name"], "invalid consumer_name 'bad name'"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    r = run_cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert message in r.stderr
    assert "\nusage: cuframes COMMAND" in r.stderr


@pytest.mark.parametrize("args", [
    ["stat", "nokey"], ["stat", "nokey", "--watch", "0.1"], ["stat", "nokey", "--json"],
    ["snapshot", "nokey", "out.png"], ["sub", "nokey"],
])
def test_missing_key(args: list[str], runtime_dir: str, tmp_path: Path) -> None:
    r = run_cli(*args, "--runtime-dir", runtime_dir)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert f"cuframes {args[0]}: PUBLISHER_GONE" in r.stderr
    assert f"no publisher for 'nokey' in {runtime_dir}" in r.stderr
    assert "usage:" not in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_output_not_written(runtime_dir: str) -> None:
    """Output that cannot be written (a full disk) is a failure, not a silent success."""
    with open("/dev/full", "w") as full:
        r = subprocess.run([str(clitest.CLI), "list", "--runtime-dir", runtime_dir],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 1
    assert "cuframes list: cannot write the output" in r.stderr


def test_bad_runtime_dir(tmp_path: Path) -> None:
    # Missing: nothing there, nothing made (only a publisher makes it).
    missing = tmp_path / "no" / "such" / "dir"
    r = run_cli("list", "--runtime-dir", str(missing))
    assert r.returncode == 0, r.stderr
    assert "no such directory" in r.stdout and not (tmp_path / "no").exists()
    # There, but not a directory: an error naming it.
    (tmp_path / "file").write_text("")
    r = run_cli("list", "--runtime-dir", str(tmp_path / "file"))
    assert r.returncode == 1
    assert f"cuframes list: SHM: runtime dir {tmp_path / 'file'} is not a directory" in r.stderr


def test_runtime_dir_from_environment(runtime_dir: str, key: str,
                                      publish: Callable[..., Any]) -> None:
    publish(key, 64, 48)
    r = subprocess.run([str(clitest.CLI), "list"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, CUFRAMES_RUNTIME_DIR=runtime_dir))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].split()[0] == key
