"""Evaluation results: the scores of one head with one class source, a report of several, and JSON.

Metrics are in ``[0, 1]`` and derived from one ``[K, K]`` confusion matrix per head (rows = ground truth,
columns = prediction); NaN (a class absent from ground truth and prediction) is written as ``null``.
:class:`ClassifierResult` scores a model's image classifier (AP per class, mAP over the object classes,
and the class sets it gives at a threshold) against the image labels of the dense ground truth.
Tables for the terminal are in :mod:`scribbleseg.engine.evaluation.tables`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scribbleseg.atomic_files import atomic_write_text
from scribbleseg.engine.evaluation.average_precision import per_class_average_precision
from scribbleseg.engine.evaluation.confusion import class_accuracy, iou_from_confusion, mean_iou, pixel_accuracy

__all__ = ["ClassifierResult", "EvalResult", "EvalReport", "results_to_json", "write_results_json"]


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


MIN_AP_SUPPORT = 5  # fewer positive or negative images than this: the class's AP is marked unreliable


@dataclass
class ClassifierResult:
    """The image classifier on a data set: ``probabilities [N, K]`` against ``targets [N, K]`` (GT labels).

    Attributes:
        probabilities: ``sigmoid(image logits)`` per image (view-averaged logits), float64.
        targets: classes present in each image's dense ground truth, bool.
        class_names: ``K`` names.
        background_index: the always-present class, left out of the mAP and the set metrics.
        threshold: the probability the class source ``head`` uses (for the set metrics).
    """

    probabilities: np.ndarray
    targets: np.ndarray
    class_names: tuple[str, ...]
    background_index: int = 0
    threshold: float = 0.5

    def _objects(self) -> np.ndarray:
        keep = np.ones(len(self.class_names), dtype=bool)
        keep[self.background_index] = False
        return keep

    @property
    def per_class_ap(self) -> np.ndarray:
        """``[K]`` AP in ``[0, 1]``; NaN for the background and for classes never present."""
        ap = per_class_average_precision(self.probabilities, self.targets)
        ap[self.background_index] = float("nan")
        return ap

    @property
    def map(self) -> float:
        """Mean AP over the object classes that occur (Tab. 4's mAP), in ``[0, 1]``."""
        values = self.per_class_ap[self._objects()]
        values = values[~np.isnan(values)]
        return float(values.mean()) if values.size else float("nan")

    @property
    def positives(self) -> np.ndarray:
        """``[K]`` images that hold each class (the AP's support)."""
        return self.targets.sum(axis=0).astype(np.int64)

    @property
    def negatives(self) -> np.ndarray:
        """``[K]`` images that do not hold each class."""
        return self.targets.shape[0] - self.positives

    @property
    def unreliable(self) -> np.ndarray:
        """``[K]`` bool: an AP from fewer than :data:`MIN_AP_SUPPORT` positive or negative images (a handful of
        images can give AP 100 to a classifier that misses most classes); never for the background."""
        few = np.minimum(self.positives, self.negatives) < MIN_AP_SUPPORT
        return few & self._objects() & ~np.isnan(self.per_class_ap)

    def set_scores(self) -> dict[str, float]:
        """Object-class precision, recall and exact-set rate of the sets ``probability >= threshold``."""
        keep = self._objects()
        chosen = self.probabilities[:, keep] >= self.threshold
        truth = self.targets[:, keep]
        hits = float((chosen & truth).sum())
        return {
            "precision": hits / max(float(chosen.sum()), 1.0),
            "recall": hits / max(float(truth.sum()), 1.0),
            "exact_set_rate": float((chosen == truth).all(axis=1).mean()) if len(truth) else float("nan"),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (NaN written as ``null``); metrics in ``[0, 1]``."""
        return {
            "map": _json_number(self.map),
            "per_class_ap": {name: _json_number(value) for name, value in zip(self.class_names, self.per_class_ap)},
            "threshold": self.threshold,
            **{name: _json_number(value) for name, value in self.set_scores().items()},
            "num_images": int(self.targets.shape[0]),
            "positives": {name: int(count) for name, count in zip(self.class_names, self.targets.sum(axis=0))},
            "negatives": {name: int(count) for name, count in zip(self.class_names, self.negatives)},
            "unreliable_ap": [name for name, flag in zip(self.class_names, self.unreliable) if flag],
        }


class EvalReport(dict):
    """``dict[str, EvalResult]`` (head -> result) plus ``skipped``: head -> reason it could not run, and
    ``classifier``: the image classifier's :class:`ClassifierResult` (``None`` without a classifier)."""

    def __init__(self, results: dict[str, EvalResult] | None = None, skipped: dict[str, str] | None = None,
                 classifier: ClassifierResult | None = None):
        super().__init__(results or {})
        self.skipped: dict[str, str] = dict(skipped or {})
        self.classifier = classifier


class SourceTable(dict):
    """``dict[str, dict[str, EvalResult]]`` (class source spec -> head -> result) plus ``sources``: spec ->
    the :class:`~scribbleseg.methods.class_sources.ClassSource` it was scored with."""

    def __init__(self, rows: dict[str, dict[str, EvalResult]] | None = None,
                 sources: dict[str, Any] | None = None) -> None:
        super().__init__(rows or {})
        self.sources: dict[str, Any] = dict(sources or {})


def results_to_json(report: dict[str, EvalResult], sources: dict[str, dict[str, EvalResult]] | None = None,
                    **meta: Any) -> str:
    """JSON text: ``{"meta", "results": {head: record}, "skipped": {head: reason}, "classifier", "class_sources"}``.

    ``classifier`` (the image classifier's AP / mAP) is present when the report has one; ``sources`` (class
    source -> {head: result}, e.g. from :func:`~scribbleseg.engine.evaluation.evaluate.evaluate_class_sources`) adds
    ``class_sources``: the class-dependent heads under further class sources.
    """
    payload: dict[str, Any] = {
        "meta": meta,
        "results": {head: result.to_dict() for head, result in report.items()},
        "skipped": dict(getattr(report, "skipped", {})),
    }
    classifier = getattr(report, "classifier", None)
    if classifier is not None:
        payload["classifier"] = classifier.to_dict()
    if sources:
        payload["class_sources"] = {spec: {head: result.to_dict() for head, result in results.items()}
                                    for spec, results in sources.items()}
    return json.dumps(payload, indent=2, default=str) + "\n"


def write_results_json(report: dict[str, EvalResult], path: str | Path,
                       sources: dict[str, dict[str, EvalResult]] | None = None, **meta: Any) -> Path:
    """Write :func:`results_to_json` to ``path`` atomically; returns the path."""
    return atomic_write_text(Path(path), results_to_json(report, sources, **meta))
