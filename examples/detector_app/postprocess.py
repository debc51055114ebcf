"""torchvision's SSD post-processing (SSD.postprocess_detections) for a whole batch at once: the
same detections, without its loop over every image and class (see model.py)."""

from __future__ import annotations

from typing import Any

from .base import torch


def batched_postprocess(model: Any, head_outputs: dict[str, Any], image_anchors: list[Any],
                        image_shapes: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """torchvision's SSD.postprocess_detections for a whole batch at once: per image and class
    the top `topk_candidates` anchors scoring above `score_thresh`, class-wise non-maximum
    suppression, the best `detections_per_img` per image."""
    from torchvision.ops import nms
    scores = torch.softmax(head_outputs["cls_logits"], dim=-1)[:, :, 1:]  # (N, A, C-1)
    n, a, c = scores.shape
    reg = head_outputs["bbox_regression"]
    anchors = torch.stack(image_anchors)
    boxes = model.box_coder.decode_single(reg.reshape(-1, 4), anchors.reshape(-1, 4)).view(n, a, 4)
    h, w = image_shapes[0]  # every image of the batch has the tensor's size
    boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                         boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], dim=-1)
    top, idx = scores.transpose(1, 2).topk(min(model.topk_candidates, a), dim=2)  # (N, C-1, k)
    img_i, cls_i, k_i = (top > model.score_thresh).nonzero(as_tuple=True)
    cand_scores = top[img_i, cls_i, k_i]
    cand_boxes = boxes[img_i, idx[img_i, cls_i, k_i]]
    labels = cls_i + 1
    out: list[dict[str, Any]] = []
    if cand_scores.numel() > 20000:  # pathological scores: the memory of one NMS over all
        from torchvision.ops import batched_nms
        for i in range(n):
            m = img_i == i
            b, s, lab = cand_boxes[m], cand_scores[m], labels[m]
            keep = batched_nms(b.double(), s.double(), lab, model.nms_thresh)[
                :model.detections_per_img]
            out.append({"boxes": b[keep], "scores": s[keep], "labels": lab[keep]})
        return out
    # One NMS for every (image, class): each group moved apart by the coordinate trick
    # (torchvision's batched_nms), in float64 so the offsets cost no precision.
    group = img_i * (c + 1) + labels
    b64 = cand_boxes.double()
    offset = group.double() * (b64.max() + 1 if b64.numel() else 1.0)
    keep = nms(b64 + offset[:, None], cand_scores.double(), model.nms_thresh)  # by score, desc
    kimg = img_i[keep]
    order = torch.sort(kimg, stable=True).indices  # by image, scores still descending
    keep, kimg = keep[order], kimg[order]
    counts = torch.bincount(kimg, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(keep.numel(), device=keep.device) - starts[kimg]
    sel = rank < model.detections_per_img
    keep, kimg = keep[sel], kimg[sel]
    for i, cnt in enumerate(torch.bincount(kimg, minlength=n).tolist()):
        k = keep[:cnt]
        keep = keep[cnt:]
        out.append({"boxes": cand_boxes[k], "scores": cand_scores[k], "labels": labels[k]})
    return out
