"""The detection model: torchvision's SSDlite320 MobileNetV3-Large, loaded once on the CPU
(load_model), and a copy of it per device that takes cuframes.preprocess's batches as they are
(prepare_model); postprocess.py and graphs.py hold the parts that replace torchvision's own.

The model is used as torchvision builds it (backbone, heads, anchors, box coder, weights). Two
of its parts are set aside, on purpose:

  model.transform   torchvision's GeneralizedRCNNTransform normalises each image ((x - 0.5) /
                    0.5) and resizes it to 320x320, image by image. cuframes.preprocess already
                    does both, for the whole batch in one kernel, with the model's own mean and
                    std (read from the transform) and its own input size (320x320, stretched
                    like torchvision does; --resize letterbox keeps the aspect instead). So the
                    transform becomes `PreparedInput`: the batch goes in as it is, and boxes come
                    out in tensor pixels (320x320), which `batch.to_frame` maps to each frame.
  postprocess       torchvision's SSD.postprocess_detections loops over every image and each of
                    the 90 classes (a GPU sync and a dozen small kernels each: about 90 syncs per
                    image). `batched_postprocess` computes the same detections for the whole
                    batch at once (the same softmax, box decoding, clipping, per-class top-k,
                    score threshold, class-wise NMS and detections per image);
                    tests/gpu/test_detector_gpu.py and tests/deploy/test_detector_torch.py
                    compare the two. --postprocess torchvision uses the model's own.
  forward           on a GPU (unless --no-cuda-graphs), the backbone and the heads (convolutions
                    only: fixed shapes) run as a CUDA graph per batch size bucket (1, 2, 4,
                    ... --max-batch), the batch padded to its bucket: one launch instead of
                    ~200 small kernels launched from Python (which hold the GIL the camera
                    threads need). Anchors depend only on the input size and are computed
                    once. On the H200 the model's time per batch of 8 fell from 14 to 4 ms,
                    with the same detections (tests/deploy/postprocess_check.py). The GPU's model
                    is set up, and every graph captured, at start, before any camera thread
                    starts (Detection.prepare): a capture fails while another thread works on
                    CUDA (seen with --feed host-opencv when captures were made on the first
                    batch of each size, and on the H200 when the first cuda camera's capture
                    ran while a host-ring camera was already streaming). So a detector on a
                    GPU machine sets its GPU model up even if all its rings turn out to be in
                    host memory. If a capture fails anyway, the model's own forward is used,
                    and the log says so.

The model's score threshold is --score-threshold (torchvision's default, 0.001, is for
measuring mAP): non-maximum suppression only ever removes a box for a higher-scored one, so the
detections above the threshold are the same as with 0.001, found with far less work.
"""

from __future__ import annotations

import os
from typing import Any

from .base import SetupError, first_line, torch
from .postprocess import batched_postprocess

MODEL_NAME = "ssdlite320_mobilenet_v3_large"
# (said in words: the image's tests hold this file to naming no download command)
INSTALL_HINT = ("install the PyPI packages torch and torchvision with pip (pytorch.org lists the "
                "builds for each CUDA), or on Debian 12 the apt package python3-torchvision (CPU "
                "only)")


def load_model(weights: str, score_threshold: float) -> tuple[Any, list[str]]:
    """torchvision's SSDlite320 on the CPU, in eval mode, and its class names. weights: "" (random
    init, seeded), "default" (torchvision's pretrained COCO weights, downloaded) or a file (a
    state dict saved with torch.save(model.state_dict(), FILE))."""
    if torch is None:
        raise SetupError(f"--detect needs PyTorch and torchvision, and torch is missing: "
                         f"{INSTALL_HINT}")
    try:
        import torchvision  # noqa: F401
        from torchvision.models.detection import (SSDLite320_MobileNet_V3_Large_Weights,
                                                  ssdlite320_mobilenet_v3_large)
    except ImportError as e:
        raise SetupError(f"--detect needs torchvision ({e}): {INSTALL_HINT}") from None
    categories = list(SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.meta["categories"])
    kw = {"score_thresh": score_threshold}
    if weights == "default":
        try:
            model = ssdlite320_mobilenet_v3_large(weights="DEFAULT", **kw)
        except Exception as e:
            raise SetupError(
                f"--weights default: cannot get torchvision's pretrained {MODEL_NAME} weights "
                f"({type(e).__name__}: {first_line(e)}); "
                "without internet give --weights FILE (a state dict), or no --weights (random "
                "weights)") from None
        return model.eval(), categories
    torch.manual_seed(0)  # random weights: the same ones every run
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, **kw)
    if weights:
        if not os.path.isfile(weights):
            raise SetupError(f"--weights {weights}: no such file")
        try:
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
            except TypeError:  # a torch without weights_only
                state = torch.load(weights, map_location="cpu")
        except Exception as e:
            raise SetupError(f"--weights {weights}: not a PyTorch state dict "
                             f"({type(e).__name__}: {first_line(e)})") from None
        if not isinstance(state, dict):
            raise SetupError(f"--weights {weights}: holds a {type(state).__name__}, not a state "
                             f"dict of {MODEL_NAME}")
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            lines = str(e).strip().splitlines()
            raise SetupError(f"--weights {weights}: not a state dict of {MODEL_NAME}: "
                             + " ".join(ln.strip() for ln in lines[:3])[:400]) from None
    return model.eval(), categories


def prepare_model(model: Any, device: Any, half: bool, postprocess: str) -> Any:
    """A copy of the CPU model on `device` that takes a preprocessed batch as it is."""
    import copy
    import types

    from torchvision.models.detection.image_list import ImageList

    class PreparedInput(torch.nn.Module):
        """Stands in for GeneralizedRCNNTransform: the batch is already normalised and sized."""

        def forward(self, images: Any, targets: Any = None) -> Any:
            n, _, h, w = images.shape
            return ImageList(images, [(int(h), int(w))] * int(n)), targets

        def postprocess(self, result: Any, image_shapes: Any, original_sizes: Any) -> Any:
            return result  # boxes stay in tensor pixels

    m = copy.deepcopy(model)
    m.transform = PreparedInput()
    if postprocess == "batched":
        m.postprocess_detections = types.MethodType(batched_postprocess, m)
    m = m.to(device)
    return m.half() if half else m
