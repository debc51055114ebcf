"""pip install ./python into a fresh virtual environment, then use the installed package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SMOKE = r"""
import os, sys, tempfile
import numpy as np
import cuframes
assert cuframes.__file__.startswith(sys.prefix), cuframes.__file__
d = tempfile.mkdtemp()
with cuframes.publish("cam-smoke", 1366, 768, memory="host", runtime_dir=d) as pub, \
     cuframes.subscribe("cam-smoke", runtime_dir=d, connect_timeout_ms=2000) as sub:
    src = (np.arange(1152 * 1366) % 251).astype(np.uint8).reshape(1152, 1366)
    seq = pub.publish(src)
    with sub.next_frame(timeout_ms=2000) as f:
        assert f.seq == seq == 1 and f.pitch_y == 1408
        assert (np.from_dlpack(f.yuv) == src).all()
print("OK", cuframes.version_string())
"""


@pytest.mark.slow
def test_pip_install_into_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    r = subprocess.run([py, "-m", "pip", "install", str(REPO / "python")],
                       capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "numpy" in r.stdout  # a declared dependency: the documented use needs it
    r = subprocess.run([py, "-c", SMOKE], capture_output=True, text=True, env=env, timeout=120,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("OK ")
    (site,) = (venv / "lib").glob("python*/site-packages")
    installed = {str(p.relative_to(site)) for p in (site / "cuframes").rglob("*")
                 if "__pycache__" not in p.parts}
    assert {"cuframes/__init__.py", "cuframes/py.typed", "cuframes/_cuframes.pyi"} <= \
           {"cuframes/" + n for n in (p.split("/", 1)[-1] for p in installed)}
    # Only the package: neither libcuframes.so nor the C headers land in the environment.
    assert not list(venv.rglob("libcuframes*")) and not list(venv.rglob("cuframes.h"))
    # The module carries the core: no libcuframes.so needed at run time.
    (so,) = (site / "cuframes").glob("_cuframes*.so")
    ldd = subprocess.run(["ldd", str(so)], capture_output=True, text=True).stdout
    assert "libcuframes" not in ldd
