"""Evaluation results: the scores of one head with one class source, a report of several, and JSON.

Metrics are in ``[0, 1]`` and derived from one ``[K, K]`` confusion matrix per head (rows = ground truth,
columns = prediction); NaN (a class absent from ground truth and prediction) is written as ``null``.
Tables for the terminal are in :mod:`scribbleseg.engine.eval_tables`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scribbleseg.atomic_files import atomic_write_text
from scribbleseg.engine.confusion import class_accuracy, iou_from_confusion, mean_iou, pixel_accuracy

__all__ = ["EvalResult", "EvalReport", "results_to_json", "write_results_json"]


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass
class EvalResult:
    """Scores of one head with one class source over a data set.

    Attributes:
        head: the method's head (e.g. ``"basic"``).
        class_source: the class source spec (``"oracle"``, ``"threshold:500"``, ``"file:..."``, ``"none"``).
        confusion: ``[K, K]`` int64 counts, rows = ground truth, columns = prediction.
        class_names: ``K`` names.
        num_images: images scored (all processes together).
        scales / flip: the test-time views.
        notes: remarks (e.g. augmented head without class information equals basic).
    """

    head: str
    class_source: str
    confusion: np.ndarray
    class_names: tuple[str, ...]
    num_images: int
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def per_class_iou(self) -> np.ndarray:
        """``[K]`` float64 IoU in ``[0, 1]``; NaN for classes absent from both GT and prediction."""
        return iou_from_confusion(self.confusion)

    @property
    def miou(self) -> float:
        """Mean IoU over the classes whose IoU is defined, in ``[0, 1]``."""
        return mean_iou(self.per_class_iou)

    @property
    def pixel_accuracy(self) -> float:
        """Fraction of scored pixels predicted correctly."""
        return pixel_accuracy(self.confusion)

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """``[K]`` recall per class (NaN for classes absent from the ground truth)."""
        return class_accuracy(self.confusion)

    @property
    def mean_accuracy(self) -> float:
        """Mean of the defined per-class recalls."""
        return mean_iou(self.per_class_accuracy)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (NaN written as ``null``); metrics in ``[0, 1]``."""
        return {
            "head": self.head,
            "class_source": self.class_source,
            "miou": _json_number(self.miou),
            "pixel_accuracy": _json_number(self.pixel_accuracy),
            "mean_accuracy": _json_number(self.mean_accuracy),
            "per_class_iou": {name: _json_number(value)
                              for name, value in zip(self.class_names, self.per_class_iou)},
            "num_images": self.num_images,
            "scales": list(self.scales),
            "flip": self.flip,
            "class_names": list(self.class_names),
            "confusion": self.confusion.astype(np.int64).tolist(),
            "notes": list(self.notes),
        }


class EvalReport(dict):
    """``dict[str, EvalResult]`` (head -> result) plus ``skipped``: head -> reason it could not run."""

    def __init__(self, results: dict[str, EvalResult] | None = None, skipped: dict[str, str] | None = None):
        super().__init__(results or {})
        self.skipped: dict[str, str] = dict(skipped or {})


def results_to_json(report: dict[str, EvalResult], **meta: Any) -> str:
    """JSON text: ``{"meta": {...}, "results": {head: record}, "skipped": {head: reason}}``."""
    payload = {
        "meta": meta,
        "results": {head: result.to_dict() for head, result in report.items()},
        "skipped": dict(getattr(report, "skipped", {})),
    }
    return json.dumps(payload, indent=2, default=str) + "\n"


def write_results_json(report: dict[str, EvalResult], path: str | Path, **meta: Any) -> Path:
    """Write :func:`results_to_json` to ``path`` atomically; returns the path."""
    return atomic_write_text(Path(path), results_to_json(report, **meta))
