"""The model's backbone and heads replayed as CUDA graphs, one per batch size bucket (see
model.py)."""

from __future__ import annotations

from typing import Any

from .base import first_line, log, torch


class GraphedSSD:
    """The prepared model's forward on a GPU, its backbone and heads replayed as CUDA graphs (see
    model.py); the same detections as model(x).

    Every graph is captured by capture(), at start, before any camera thread starts
    (Detection.prepare): a capture fails when another thread works on CUDA meanwhile, so none is
    made once frames flow. A batch larger than max_batch runs in parts of max_batch.
    If a capture fails, the model's own forward runs from then on, and the log says so."""

    def __init__(self, model: Any, stream: Any, max_batch: int) -> None:
        self.model = model
        self.stream = stream
        self.max_batch = max_batch
        # (bucket, h, w) -> (graph, static input, head outputs, anchors)
        self.graphs: dict[tuple[int, int, int], tuple[Any, Any, dict[str, Any], list[Any]]] = {}
        self.failed = ""  # why a capture failed: the model's own forward from then on

    def _core(self, x: Any) -> tuple[dict[str, Any], list[Any]]:
        features = list(self.model.backbone(x).values())
        return self.model.head(features), features

    def buckets(self) -> list[int]:
        """The batch sizes captured: 1, 2, 4, ... up to max_batch (itself included)."""
        out, b = [], 1
        while b < self.max_batch:
            out.append(b)
            b *= 2
        return out + [self.max_batch]

    def capture(self, h: int, w: int, dtype: Any) -> bool:
        """Captures a graph per bucket for inputs of h x w. False (and self.failed says why) if
        one fails: then the model's own forward is used."""
        try:
            for n in self.buckets():
                self.graphs[(n, h, w)] = self._capture_one(n, h, w, dtype)
            return True
        except Exception as e:  # noqa: BLE001 (any capture failure: fall back, say why)
            self.graphs.clear()
            self.failed = first_line(e)
            log.warning("CUDA graphs: a capture failed (%s); the model's own forward is used",
                        self.failed)
            return False

    def _capture_one(self, n: int, h: int, w: int, dtype: Any) -> tuple[Any, Any,
                                                                       dict[str, Any], list[Any]]:
        from torchvision.models.detection.image_list import ImageList
        x = torch.zeros((n, 3, h, w), dtype=dtype, device=self.stream.device)
        side = torch.cuda.Stream(device=self.stream.device)
        side.wait_stream(self.stream)
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up outside the capture (cuDNN picks its algorithms)
                _, features = self._core(x)
        self.stream.wait_stream(side)
        anchors = self.model.anchor_generator(ImageList(x, [(h, w)] * n), features)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the camera threads may use CUDA meanwhile (their releases, --measure)
        with torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
            head, _ = self._core(x)
        self.stream.wait_stream(side)
        return graph, x, head, anchors

    def __call__(self, x: Any) -> list[dict[str, Any]]:
        n, _, h, w = (int(v) for v in x.shape)
        if n > self.max_batch:
            return [d for i in range(0, n, self.max_batch)
                    for d in self(x[i:i + self.max_batch])]
        bucket = next(b for b in self.buckets() if b >= n)
        entry = self.graphs.get((bucket, h, w))
        if entry is None:  # not captured (a failed capture, or an input size not foreseen)
            return self.model(x)
        graph, static_x, head, anchors = entry
        static_x[:n].copy_(x)
        if n < bucket:
            static_x[n:].zero_()
        graph.replay()
        outputs = {k: v[:n] for k, v in head.items()}
        return self.model.postprocess_detections(outputs, anchors[:n], [(h, w)] * n)
