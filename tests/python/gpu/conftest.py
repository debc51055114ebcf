"""GPU tests: CUDA rings, read with torch and cupy. Run on the GPU machine:

    pip install ./python && python3 -m pytest tests/python/gpu -v

Not part of scripts/test.sh (CI has no GPU). Every test here carries the gpu marker."""

from __future__ import annotations

import warnings

import pytest

# torch and cupy may warn while they import (deprecations of their own): that is not ours.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import cupy  # noqa: F401
    import torch

if not torch.cuda.is_available():
    raise RuntimeError("tests/python/gpu needs a CUDA device (torch.cuda.is_available() is False)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/gpu/" in str(item.fspath):
            item.add_marker(pytest.mark.gpu)
