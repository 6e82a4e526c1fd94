"""Confusion matrix accumulation and the metrics derived from it (IoU, mIoU, pixel accuracy).

The matrix is ``[K, K]`` int64 with rows = ground-truth class and columns = predicted class. It is
accumulated with one ``torch.bincount`` per update (no Python loop over pixels or classes) on the
device of the labels, and summed across processes with ``torch.distributed.all_reduce`` when a
process group is initialised.

IoU of class ``c`` is ``TP / (TP + FP + FN)``; a class absent from both the ground truth and the
prediction has ``0 / 0`` and gets NaN, which the mean (mIoU) skips. This matches the usual
PASCAL VOC protocol (mean over classes that occur).
"""

from __future__ import annotations

import numpy as np
import torch

from scribbleseg.errors import DataError

__all__ = [
    "confusion_matrix",
    "ConfusionAccumulator",
    "iou_from_confusion",
    "mean_iou",
    "pixel_accuracy",
    "class_accuracy",
]


def confusion_matrix(
    prediction: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """Count (ground truth, prediction) pairs over every pixel whose target is not ``ignore_index``.

    Args:
        prediction: ``[...]`` integer class ids in ``[0, num_classes)`` (any shape, e.g. ``[N, H, W]``).
        target: same shape as ``prediction``; ``ignore_index`` marks pixels that are not scored.
        num_classes: ``K``.
        ignore_index: target value that is skipped.

    Returns:
        ``[K, K]`` int64 tensor on ``target``'s device, rows = ground truth, columns = prediction.

    Raises:
        DataError: a target value is neither ``ignore_index`` nor in ``[0, K)``.
        ValueError: shapes differ or a prediction is out of range (a programming error).
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    target = target.reshape(-1).long()
    prediction = prediction.reshape(-1).to(device=target.device, dtype=torch.long)
    if prediction.numel() == 0:
        return torch.zeros(num_classes, num_classes, dtype=torch.long, device=target.device)
    low, high = torch.aminmax(prediction)
    if int(low) < 0 or int(high) >= num_classes:
        raise ValueError(f"prediction has class ids outside [0, {num_classes})")
    # bin 0 collects the ignored pixels, bin 1 + t*K + p the pair (t, p): no boolean indexing (slow on CPU)
    pair_index = target * num_classes
    pair_index.add_(prediction).add_(1)
    pair_index.masked_fill_(target == ignore_index, 0)
    target_low = int(target.min())
    counts = torch.bincount(pair_index.clamp_(min=0), minlength=num_classes * num_classes + 1)
    if target_low < 0 or counts.numel() > num_classes * num_classes + 1:  # rare: look closer
        bad = (target != ignore_index) & ((target < 0) | (target >= num_classes))
        if bool(bad.any()):
            values = torch.unique(target[bad]).tolist()[:10]
            raise DataError(
                f"ground-truth mask has label values {values} outside [0, {num_classes}) "
                f"that are not the ignore value {ignore_index}"
            )
    counts = counts[1:]
    return counts.reshape(num_classes, num_classes)


def iou_from_confusion(confusion: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per-class IoU ``[K]`` float64 from a ``[K, K]`` confusion matrix; NaN where TP+FP+FN = 0."""
    matrix = _as_float_array(confusion)
    true_positive = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / np.where(union > 0, union, 1.0), np.nan)


def mean_iou(per_class_iou: np.ndarray) -> float:
    """Mean over the classes whose IoU is defined (not NaN); NaN when no class is defined."""
    defined = per_class_iou[~np.isnan(per_class_iou)]
    return float(defined.mean()) if defined.size else float("nan")


def pixel_accuracy(confusion: torch.Tensor | np.ndarray) -> float:
    """Fraction of scored pixels predicted correctly; NaN when no pixel was scored."""
    matrix = _as_float_array(confusion)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total > 0 else float("nan")


def class_accuracy(confusion: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per-class recall ``TP / (TP + FN)`` ``[K]``; NaN for classes absent from the ground truth."""
    matrix = _as_float_array(confusion)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / np.where(support > 0, support, 1.0), np.nan)


def _as_float_array(confusion: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(confusion, torch.Tensor):
        confusion = confusion.detach().cpu().numpy()
    return np.asarray(confusion, dtype=np.float64)


class ConfusionAccumulator:
    """Running ``[K, K]`` confusion matrix over many images (and processes).

    ``update`` adds one batch; ``all_reduce`` sums the matrices of every process when
    ``torch.distributed`` is initialised (a no-op otherwise); ``matrix`` returns the int64 counts.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, device: str | torch.device = "cpu"):
        if num_classes < 1:
            raise ValueError("num_classes must be >= 1")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self._counts = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long,
                                   device=torch.device(device))

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add ``prediction`` / ``target`` (same shape, e.g. ``[H, W]`` or ``[N, H, W]``)."""
        counts = confusion_matrix(prediction, target, self.num_classes, self.ignore_index)
        self._counts += counts.to(self._counts.device)

    def all_reduce(self) -> None:
        """Sum the counts over all processes of the default group (when initialised)."""
        distributed = torch.distributed
        if distributed.is_available() and distributed.is_initialized():
            distributed.all_reduce(self._counts, op=distributed.ReduceOp.SUM)

    def reset(self) -> None:
        """Zero the counts."""
        self._counts.zero_()

    @property
    def matrix(self) -> torch.Tensor:
        """The ``[K, K]`` int64 counts (rows = ground truth, columns = prediction), on the CPU."""
        return self._counts.detach().cpu().clone()
