"""What every module of the example detector shares: its logger, the ring names of the
service's cameras, PyTorch when it is there, Home Assistant ids and the setup error."""

from __future__ import annotations

import logging
import re

log = logging.getLogger("detector")

RING_PREFIX = "cam-"

try:  # optional: GPU frames need it
    import torch
    import torch.nn.functional as F
except ImportError:  # host rings only
    torch = None  # type: ignore[assignment]
    F = None  # type: ignore[assignment]


def ha_id(name: str) -> str:
    """A name as a Home Assistant id: lower case, runs of other characters one '_'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "x"


class SetupError(Exception):
    """A problem with the detection setup (torchvision, weights), said to the user."""


def first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""
