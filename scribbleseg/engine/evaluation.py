"""Evaluation of a segmentor on full images against dense ground truth: mIoU per head and class source.

``evaluate(segmentor, dataset, heads=("basic", "local"), class_source="threshold:500")`` runs
:func:`~scribbleseg.engine.inference.infer_probabilities` over the data set (full images, no crop; any
size), takes the arg-max of each head and accumulates one confusion matrix per head against the dense
ground-truth masks (255 = ignored). Under ``torch.distributed`` every process scores its share of the
images (``rank::world_size``) and the matrices are all-reduced, so every process returns the same
result.

A head that cannot run (``global`` without a full prototype bank, ``local`` / ``global`` for a model
trained without them) is skipped; the returned :class:`EvalReport` (a ``dict[str, EvalResult]``)
lists it in ``.skipped`` with the reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from rich.table import Table

from scribbleseg.engine.atomic_io import atomic_write_text
from scribbleseg.engine.confusion import (
    ConfusionAccumulator,
    class_accuracy,
    iou_from_confusion,
    mean_iou,
    pixel_accuracy,
)
from scribbleseg.engine.inference import infer_probabilities, resolve_heads
from scribbleseg.errors import ConfigError, DataError
from scribbleseg.pfa import ClassSource, parse_class_source

__all__ = [
    "DEFAULT_MS_SCALES",
    "EvalResult",
    "EvalReport",
    "evaluate",
    "comparison_table",
    "results_to_json",
    "write_results_json",
]

# SegFormer's multi-scale test ratios (used when ms_flip is on and no scales are given)
DEFAULT_MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def _percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100.0 * value:.1f}"


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass
class EvalResult:
    """Scores of one head with one class source over a data set.

    Attributes:
        head: ``"basic"``, ``"local"`` or ``"global"``.
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

    def table(self) -> Table:
        """Per-class IoU table (rich), one row per class plus the mean, values in % as the paper's Tab. 6."""
        table = Table(title=f"{self.head} head, classes: {self.class_source} ({self.num_images} images)")
        table.add_column("class")
        table.add_column("IoU (%)", justify="right")
        table.add_column("acc (%)", justify="right")
        table.add_column("GT pixels", justify="right")
        support = self.confusion.sum(axis=1)
        for name, iou, accuracy, pixels in zip(self.class_names, self.per_class_iou,
                                               self.per_class_accuracy, support):
            table.add_row(name, _percent(iou), _percent(accuracy), str(int(pixels)))
        table.add_section()
        table.add_row("mean", _percent(self.miou), _percent(self.mean_accuracy), str(int(support.sum())),
                      style="bold")
        return table


class EvalReport(dict):
    """``dict[str, EvalResult]`` (head -> result) plus ``skipped``: head -> reason it could not run."""

    def __init__(self, results: dict[str, EvalResult] | None = None, skipped: dict[str, str] | None = None):
        super().__init__(results or {})
        self.skipped: dict[str, str] = dict(skipped or {})


def comparison_table(results: dict[str, EvalResult], title: str | None = None) -> Table:
    """Per-class IoU (%) with one column per result (head) and a final mean row (Tab. 6, transposed)."""
    if not results:
        raise ValueError("comparison_table needs at least one result")
    first = next(iter(results.values()))
    table = Table(title=title or f"per-class IoU (%), {first.num_images} images")
    table.add_column("class")
    for key in results:
        table.add_column(str(key), justify="right")
    ious = {key: result.per_class_iou for key, result in results.items()}
    for index, name in enumerate(first.class_names):
        table.add_row(name, *(_percent(ious[key][index]) for key in results))
    table.add_section()
    table.add_row("mean", *(_percent(result.miou) for result in results.values()), style="bold")
    table.add_row("pixel acc", *(_percent(result.pixel_accuracy) for result in results.values()))
    return table


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


def _dataset_classes(dataset) -> tuple[tuple[str, ...], int]:
    """(class names, ignore index) from ``dataset.info``, looking through ``Subset`` wrappers."""
    node = dataset
    while getattr(node, "info", None) is None and getattr(node, "dataset", None) is not None:
        node = node.dataset
    info = getattr(node, "info", None)
    if info is None:
        raise ConfigError("the evaluation data set has no .info (class names / ignore index)")
    return tuple(info.class_names), int(getattr(info, "ignore_index", 255))


def _shard(dataset, shard: bool | None) -> range:
    """Indices this process scores.

    Under torch.distributed with ``shard=None`` (auto), a plain data set is split ``rank::world_size``
    while a ``torch.utils.data.Subset`` is taken as the caller's own shard and scored whole.
    """
    length = len(dataset)
    distributed = torch.distributed
    if not (distributed.is_available() and distributed.is_initialized()):
        return range(length)
    if shard is None:
        shard = not isinstance(dataset, torch.utils.data.Subset)
    if not shard:
        return range(length)
    return range(distributed.get_rank(), length, distributed.get_world_size())


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


@torch.no_grad()
def evaluate(
    segmentor,
    dataset,
    *,
    heads: Sequence[str] | None = ("basic",),
    class_source: str | ClassSource = "oracle",
    ms_flip: bool = False,
    scales: Sequence[float] = (1.0,),
    device: str | torch.device | None = "cpu",
    batch_size: int = 1,
    amp: bool = False,
    progress: bool = False,
    shard: bool | None = None,
) -> EvalReport:
    """Score ``heads`` of ``segmentor`` on every image of ``dataset`` against its dense ground truth.

    Args:
        segmentor: :class:`~scribbleseg.pfa.PFASegmentor` (a DDP wrapper is unwrapped). It is put in eval
            mode and restored to its previous mode afterwards.
        dataset: map-style data set of dicts ``image [3, H, W]``, ``mask [H, W]`` (255 ignore), ``classes
            [K]`` bool, ``name``, with ``.info`` (class names, ignore index) — e.g. ``EvalDataset``.
        heads: heads to score; ``None`` = every head this model can run. Impossible heads are skipped
            (``report.skipped``); ConfigError if none can run.
        class_source: ``"oracle" | "threshold:N" | "file:PATH" | "none"`` or a ``ClassSource``.
        ms_flip: average over ``scales`` and their horizontal mirrors; with ``scales=(1.0,)`` the scales
            become :data:`DEFAULT_MS_SCALES`.
        scales: test scales.
        device: where to run; ``None`` keeps the model's device.
        batch_size: images per forward (padded to the largest; 1 = exact per-image padding).
        amp: autocast (bf16 on CPU, fp16 on CUDA).
        progress: show a tqdm bar.
        shard: under torch.distributed, score only this rank's ``rank::world_size`` share (``None``: yes,
            unless ``dataset`` is a ``Subset``, which is taken as the caller's shard). The confusion
            matrices are always all-reduced.

    Returns:
        :class:`EvalReport` head -> :class:`EvalResult`.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    model = _unwrap(segmentor)
    class_names, ignore_index = _dataset_classes(dataset)
    if len(class_names) != model.num_classes:
        raise ConfigError(f"the model predicts {model.num_classes} classes but the data set has "
                          f"{len(class_names)} ({', '.join(class_names[:5])}, ...)")
    source = class_source if isinstance(class_source, ClassSource) else parse_class_source(class_source, class_names)
    source_name = class_source if isinstance(class_source, str) else type(class_source).__name__
    runnable, skipped = resolve_heads(model, heads)
    view_scales = tuple(float(s) for s in scales)
    if ms_flip and view_scales == (1.0,):
        view_scales = DEFAULT_MS_SCALES
    if device is not None:
        model.to(torch.device(device))
    model_device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    accumulators = {head: ConfusionAccumulator(len(class_names), ignore_index, model_device) for head in runnable}
    indices = list(_shard(dataset, shard))
    batches = [indices[start:start + batch_size] for start in range(0, len(indices), batch_size)]
    augment_notes: list[str] = []
    scored_against_scribbles = False
    try:
        iterator = batches
        if progress:
            from tqdm import tqdm
            iterator = tqdm(batches, desc="evaluating", unit="batch")
        for batch_indices in iterator:
            items = [dataset[index] for index in batch_indices]
            scored_against_scribbles |= any(not item.get("has_dense_gt", True) for item in items)
            names = [str(item.get("name", index)) for item, index in zip(items, batch_indices)]
            given = torch.stack([torch.as_tensor(item["classes"], dtype=torch.bool) for item in items])
            output = infer_probabilities(
                model, [item["image"] for item in items], heads=runnable, class_source=source,
                names=names, given=given, scales=view_scales, flip=ms_flip, amp=amp)
            augment_notes.extend(note for note in output.notes if note not in augment_notes)
            for head in runnable:
                for item, name, label in zip(items, names, output.labels(head)):
                    mask = torch.as_tensor(item["mask"]).to(model_device)
                    if mask.shape != label.shape:
                        raise DataError(f"ground truth of image {name!r} is {tuple(mask.shape)}, the image is "
                                        f"{tuple(label.shape)}")
                    try:
                        accumulators[head].update(label, mask)
                    except DataError as err:
                        raise DataError(f"image {name!r}: {err}") from None
    finally:
        model.train(was_training)
    count = torch.tensor([len(indices)], dtype=torch.long, device=model_device)
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        distributed.all_reduce(count)
    common_notes = ["some images have no dense ground truth and were scored against their scribbles"] \
        if scored_against_scribbles else []
    report = EvalReport(skipped=skipped)
    for head in runnable:
        accumulators[head].all_reduce()
        report[head] = EvalResult(
            head=head, class_source=source_name, confusion=accumulators[head].matrix.numpy(),
            class_names=class_names, num_images=int(count.item()), scales=view_scales, flip=ms_flip,
            notes=common_notes + (augment_notes if head != "basic" else []))
    return report
