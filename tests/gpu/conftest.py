"""The GPU suite's shared helpers: tests/common (deadline.py) on the path, as the CPU suites'
conftests put it, for the modules this suite borrows from tests/cli and tests/service."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
