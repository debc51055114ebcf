#!/usr/bin/env python3
"""examples/detector.py's batched SSD post-processing (examples/detector_app/postprocess.py)
against torchvision's own (SSD.postprocess_detections, image by image and class by class) on the
same head outputs: the model's real heads and anchors on a batch of pictures with random weights,
and head outputs made up to give many overlapping candidates (NMS at work). Prints one line per
case and exits 1 on any difference; on a GPU also the detector's CUDA graphs (GraphedSSD) against
the model's own forward. Run by tests/deploy/test_detector_torch.py (CPU) and
tests/gpu/test_detector_gpu.py (CUDA, float16) with an interpreter that has torchvision:

    postprocess_check.py [--device cpu|cuda] [--half]

With --make-weights FILE it writes a state dict for the tests instead: random weights (which
score every class about 1/91 everywhere, so nothing is detected) with the coarsest head level
(6 anchors on a 1x1 map) made to say "person" (class 1) with a score of about 0.8, so a few
large detections come out of any picture.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_detector() -> Any:
    """The parts of the example detector (examples/detector_app/) this checks."""
    sys.path.insert(0, str(ROOT / "examples"))
    from detector_app import graphs, model
    return types.SimpleNamespace(load_model=model.load_model, prepare_model=model.prepare_model,
                                 GraphedSSD=graphs.GraphedSSD)


def same(a: list, b: list, tol: float) -> str:
    """'' if the two lists of detections agree (as sets per image: ties may be ordered apart),
    else what differs."""
    import torch
    if len(a) != len(b):
        return f"{len(a)} images vs {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        if x["scores"].numel() != y["scores"].numel():
            return f"image {i}: {x['scores'].numel()} detections vs {y['scores'].numel()}"
        if x["scores"].numel() == 0:
            continue

        def rows(d: dict) -> "torch.Tensor":
            r = torch.cat([d["scores"].double()[:, None], d["labels"].double()[:, None],
                           d["boxes"].double()], 1).cpu()
            return r[torch.argsort(r[:, 0] * 1000 + r[:, 1] + r[:, 2] * 1e-6, descending=True)]
        rx, ry = rows(x), rows(y)
        d = float((rx - ry).abs().max())
        if d > tol:
            return f"image {i}: max |difference| {d:.6f} > {tol}"
    return ""


def compare(label: str, p: list, q: list, reference: str, tol: float) -> bool:
    """Prints one line: `label`, the detections of p, and whether they are q's (`reference`)."""
    diff = same(p, q, tol)
    count = sum(int(r["scores"].numel()) for r in p)
    print(f"{label}: {count} detections in {len(p)} image{'' if len(p) == 1 else 's'}: "
          f"{'same as ' + reference if not diff else 'DIFFERENT: ' + diff}")
    return not diff


def see_persons(model) -> None:
    """The coarsest head level (6 anchors on the 1x1 map) made to say "person"."""
    import torch
    head = model.head.classification_head.module_list[-1][-1]  # the 1x1 map's last conv
    classes = 91
    with torch.no_grad():
        for a in range(head.out_channels // classes):
            # softmax: about e^6 / (e^6 + 90) = 0.82; a little apart, so that no two anchors
            # tie (the order NMS takes tied boxes in is its own)
            head.bias[a * classes + 1] = 6.0 + 0.1 * a


def make_weights(det, path: str) -> None:
    import torch
    model, _ = det.load_model("", 0.5)
    see_persons(model)
    torch.save(model.state_dict(), path)
    print(f"wrote {path}")


def syncing_ssd(det: Any) -> Any:
    """The detector's GraphedSSD with a host synchronisation in its forward: every capture of it
    fails (CUDA forbids synchronising while a stream captures), as one disturbed would."""
    import torch

    class SyncingSSD(det.GraphedSSD):
        def _core(self, x: Any) -> Any:
            torch.cuda.synchronize()
            return super()._core(x)
    return SyncingSSD


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--half", action="store_true")
    ap.add_argument("--make-weights", default="", metavar="FILE")
    args = ap.parse_args()
    det = load_detector()
    import torch
    syncing = syncing_ssd(det)
    if args.make_weights:
        make_weights(det, args.make_weights)
        return 0
    dev = torch.device(args.device)
    # float64: both sides' non-maximum suppression decides alike (in float32 an IoU within
    # rounding of the threshold could go either way between a CPU and a GPU kernel)
    dtype = torch.float16 if args.half else torch.float64
    tol = 2e-2 if args.half else 1e-6
    failed = 0
    for thresh in (0.5, 0.02, 0.011):
        base, _ = det.load_model("", thresh)
        see_persons(base)  # random weights alone detect nothing
        ours = det.prepare_model(base, dev, args.half, "batched").to(dtype)
        theirs = det.prepare_model(base, dev, args.half, "torchvision").to(dtype)
        g = torch.Generator().manual_seed(1)
        x = (torch.rand(4, 3, 320, 320, generator=g) * 2 - 1).to(dev, dtype)
        with torch.inference_mode():
            # the real model end to end
            a, b = ours(x), theirs(x)
            # head outputs with confident, overlapping boxes: NMS and top-k have work to do
            feats = list(ours.backbone(x).values())
            anchors = ours.anchor_generator(ours.transform(x)[0], feats)
            n, an = x.shape[0], anchors[0].shape[0]
            logits = torch.randn(n, an, 91, generator=g) * 4
            reg = torch.randn(n, an, 4, generator=g) * 0.3
            heads = {"cls_logits": logits.to(dev, dtype), "bbox_regression": reg.to(dev, dtype)}
            shapes = [(320, 320)] * n
            c = ours.postprocess_detections(heads, anchors, shapes)
            d = theirs.postprocess_detections(heads, anchors, shapes)
        label = f"{args.device}{' half' if args.half else ''} threshold {thresh}"
        for what, p, q in (("model", a, b), ("made-up heads", c, d)):
            failed += not compare(f"postprocess {label} {what}", p, q, "torchvision", tol)
        if dev.type == "cuda":  # the detector's CUDA graphs against the model's own forward
            stream = torch.cuda.Stream(device=dev)
            graphed = det.GraphedSSD(ours, stream, max_batch=2)
            x6 = torch.cat([x, x[:2].flip(0)])
            with torch.cuda.stream(stream), torch.inference_mode():
                if not graphed.capture(320, 320, dtype):
                    print(f"graphs {label}: capture failed: {graphed.failed}")
                    failed += 1
                # a whole bucket, a batch padded to one, and one run in parts of max_batch
                for n in (2, 1, 5):
                    failed += not compare(f"graphs {label} batch {n}", graphed(x6[:n]),
                                          ours(x6[:n]), "the forward", tol)
                if thresh == 0.5:  # a capture that fails: the model's own forward from then on
                    broken = syncing(ours, stream, max_batch=2)
                    if broken.capture(320, 320, dtype) or not broken.failed:
                        print(f"graphs {label}: a failing capture was not seen ({broken.failed!r})")
                        failed += 1
                    else:
                        print(f"graphs {label}: a failing capture falls back ({broken.failed})")
                    failed += not compare(f"graphs fallback {label} batch 2", broken(x[:2]),
                                          ours(x[:2]), "the forward", tol)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
