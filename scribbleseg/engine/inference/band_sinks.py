"""What the stitched rows of a sliding-window pass are turned into (see :mod:`band_stitching`).

* :class:`LabelSink`: the arg-max label map ``[H, W]`` (uint8 for up to 256 classes) on the CPU.
* :class:`ClassCountSink`: ``[K]`` arg-max pixel counts of the whole image (for the class sources).
* :class:`EvidenceSink`: the log-probabilities at every ``f``-th row and column, ``[K, ceil(H/f),
  ceil(W/f)]``: a bounded summary of the basic prediction for the class sources that look at the map.

The ``.npy`` probability file writer is :class:`scribbleseg.engine.prediction.probability_file.ProbabilityFileSink`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["ClassCountSink", "EVIDENCE_PIXELS", "EvidenceSink", "LabelSink", "evidence_factor"]

# at most ~1 M pixels of basic prediction handed to a class source (84 MB float32 for K = 21)
EVIDENCE_PIXELS = 1024 * 1024


class LabelSink:
    """Collects the arg-max label map ``labels [H, W]`` (uint8 when ``K <= 256``, else int32) on the CPU."""

    def __init__(self, height: int, width: int, num_classes: int) -> None:
        dtype = torch.uint8 if num_classes <= 256 else torch.int32
        self.labels = torch.empty((height, width), dtype=dtype)

    def write(self, top: int, probabilities: Tensor, labels: Tensor) -> None:
        self.labels[top:top + labels.shape[0]] = labels.to(device="cpu", dtype=self.labels.dtype)


class ClassCountSink:
    """``counts [K]`` int64: how many pixels of the image each class wins (the arg-max)."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.counts = torch.zeros(num_classes, dtype=torch.long, device=device)

    def write(self, top: int, probabilities: Tensor, labels: Tensor) -> None:
        self.counts += torch.bincount(labels.flatten(), minlength=self.counts.numel()).to(self.counts.device)


def evidence_factor(height: int, width: int, max_pixels: int = EVIDENCE_PIXELS) -> int:
    """The smallest ``f >= 1`` with ``ceil(H / f) * ceil(W / f) <= max_pixels``."""
    factor = max(1, math.isqrt(max(0, height * width - 1) // max_pixels))
    while math.ceil(height / factor) * math.ceil(width / factor) > max_pixels:
        factor += 1
    return factor


class EvidenceSink:
    """``log_probabilities [K, ceil(H/f), ceil(W/f)]``: rows and columns ``0, f, 2f, ...`` of the image."""

    def __init__(self, num_classes: int, height: int, width: int, factor: int,
                 device: torch.device | str = "cpu") -> None:
        self.factor = factor
        self.log_probabilities = torch.empty((num_classes, -(-height // factor), -(-width // factor)),
                                             device=device)

    def write(self, top: int, probabilities: Tensor, labels: Tensor) -> None:
        first = (-top) % self.factor  # first band row that lies on the sampling grid
        picked = probabilities[:, first::self.factor, ::self.factor]
        if picked.shape[1]:
            row = (top + first) // self.factor
            self.log_probabilities[:, row:row + picked.shape[1]] = picked.clamp_min(1e-12).log().to(
                self.log_probabilities.device)
