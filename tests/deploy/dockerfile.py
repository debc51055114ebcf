"""A Dockerfile's stages and instructions, read as the builder reads them (comments, continuation
lines, global ARGs in FROM). Plain Python: the deployment suite (deploy_helpers.py) and
tests/gpu/image_layout.sh use it, the latter without cuframes or numpy."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class Instruction:
    line: int
    cmd: str  # upper case: FROM, RUN, COPY, ...
    args: str


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, cmd: str) -> list[Instruction]:
        return [i for i in self.instructions if i.cmd == cmd]

    def last(self, cmd: str) -> Optional[Instruction]:
        found = self.all(cmd)
        return found[-1] if found else None


def parse_dockerfile(path: Path, build_args: Optional[dict[str, str]] = None
                     ) -> tuple[dict[str, str], list[Stage]]:
    """(global ARGs, stages) of a Dockerfile: comments dropped, continuation lines joined,
    ${ARG} in FROM substituted with the global ARGs' values, as the builder does: build_args
    (`--build-arg`) where given, else the defaults, which may use the ARGs before them."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    lines = path.read_text().splitlines()

    def subst(text: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)

    i = 0
    while i < len(lines):
        start = i
        text = lines[i]
        i += 1
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        while text.rstrip().endswith("\\") and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                continue
            text = text.rstrip()[:-1] + " " + nxt.strip()
        cmd, _, rest = text.strip().partition(" ")
        ins = Instruction(start + 1, cmd.upper(), rest.strip())
        if ins.cmd == "ARG" and not stages:
            name, _, default = ins.args.partition("=")
            name = name.strip()
            given = (build_args or {}).get(name)
            args[name] = given if given is not None else subst(default.strip())
        elif ins.cmd == "FROM":
            ref = subst(ins.args)
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", ref, re.IGNORECASE)
            assert m, f"{path}:{ins.line}: cannot read FROM {ins.args!r}"
            stages.append(Stage(m.group(2) or str(len(stages)), m.group(1), [ins]))
        else:
            assert stages, f"{path}:{ins.line}: {ins.cmd} before the first FROM"
            stages[-1].instructions.append(ins)
    return args, stages
