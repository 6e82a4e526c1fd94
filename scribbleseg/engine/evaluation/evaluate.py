"""Evaluation of a model on full images against dense ground truth: mIoU per head and class source.

``evaluate(model, dataset, settings)`` runs the inference dispatcher
(:func:`~scribbleseg.engine.inference.dispatch.infer_labels`: full images, no crop; any size; whole, or tile
by tile above the pixel budget of ``settings.slide``) over the data set, takes the arg-max of each head
and accumulates one confusion matrix per head against the dense ground-truth masks (255 = ignored). The
model is anything behind :class:`~scribbleseg.engine.inference.model.InferenceModel` (a checkpoint, an
exported ``.onnx`` model, the method being trained). Under ``torch.distributed`` every process scores its
share of the images (``rank::world_size``) and the matrices are all-reduced, so every process returns
the same result.

A head that cannot run with this model (see the model's ``heads()``) is skipped; the returned
:class:`~scribbleseg.engine.evaluation.results.EvalReport` (a ``dict[str, EvalResult]``) lists it in
``.skipped`` with the reason. A model with an image classifier also gets ``report.classifier``: its AP per
class and mAP against the image labels of the dense ground truth (gathered over all processes).

:func:`evaluate_class_sources` scores the class-dependent heads under several class sources (e.g. oracle /
head / threshold / none) so the honest rows and the upper bound sit side by side.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch
from torch import nn

from scribbleseg.engine.evaluation.confusion import ConfusionAccumulator
from scribbleseg.engine.runtime.distributed import unwrap_model
from scribbleseg.engine.runtime.progress import progress_bar
from scribbleseg.engine.evaluation.results import ClassifierResult, EvalReport, EvalResult, SourceTable
from scribbleseg.engine.inference.dispatch import infer_labels
from scribbleseg.engine.inference.model import InferenceModel, as_inference_model
from scribbleseg.engine.inference.probabilities import ImageFacts, class_dependent, resolve_heads
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.errors import ConfigError, DataError
from scribbleseg.methods import BASIC_HEAD, DEFAULT_HEAD_THRESHOLD, HeadClassSource
from scribbleseg.methods.class_sources import (
    ClassSource,
    NoClassSource,
    OracleClassSource,
    PredictionThresholdClassSource,
)

__all__ = ["comparison_sources", "evaluate", "evaluate_class_sources"]


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


def _model(model: "InferenceModel | nn.Module") -> InferenceModel:
    """The model behind the inference protocol (a DDP wrapper unwrapped, a bare method adapted)."""
    return as_inference_model(unwrap_model(model) if isinstance(model, nn.Module) else model)


@torch.no_grad()
def evaluate(model: "InferenceModel | nn.Module", dataset, settings: InferenceSettings = InferenceSettings(), *,
             progress: bool = False, shard: bool | None = None) -> EvalReport:
    """Score the heads of ``settings`` of ``model`` on every image of ``dataset`` against its dense ground truth.

    Args:
        model: an :class:`~scribbleseg.engine.inference.model.InferenceModel`, or a method (a DDP wrapper
            is unwrapped), where it is (its device is not changed); it predicts in its ``eval_mode()``.
        dataset: map-style data set of dicts ``image [3, H, W]``, ``mask [H, W]`` (255 ignore), ``classes
            [K]`` bool, ``name``, with ``.info`` (class names, ignore index) — e.g. ``EvalDataset``.
        settings: heads to score (``None`` = every head of the model; impossible heads are skipped,
            ``report.skipped``; ConfigError if none can run), the class source, views, autocast, whole or
            tiled inference, and ``tile_batch`` images (or tiles) per forward pass (padded to the largest;
            1 = exact per-image padding).
        progress: show a tqdm bar.
        shard: under torch.distributed, score only this rank's ``rank::world_size`` share (``None``: yes,
            unless ``dataset`` is a ``Subset``, which is taken as the caller's shard). The confusion
            matrices are always all-reduced.

    Returns:
        :class:`EvalReport` head -> :class:`EvalResult`.
    """
    model = _model(model)
    class_names, ignore_index = _dataset_classes(dataset)
    if len(class_names) != model.num_classes:
        raise ConfigError(f"the model predicts {model.num_classes} classes but the data set has "
                          f"{len(class_names)} ({', '.join(class_names[:5])}, ...)")
    source = model.class_source(settings.class_source)  # ConfigError when the model cannot use it
    runnable, skipped = resolve_heads(model, settings.heads)
    dependent = class_dependent(model, runnable)
    run = replace(settings, heads=tuple(runnable), class_source=source)
    batch_size = settings.tile_batch
    model_device = model.device
    accumulators = {head: ConfusionAccumulator(len(class_names), ignore_index, model_device) for head in runnable}
    indices = list(_shard(dataset, shard))
    image_scores = torch.zeros(len(dataset), model.num_classes, device=model_device)  # [L, K], this rank's rows
    image_labels = torch.zeros(len(dataset), model.num_classes, device=model_device)
    batches = [indices[start:start + batch_size] for start in range(0, len(indices), batch_size)]
    augment_notes: list[str] = []
    scored_against_scribbles = False
    slid_images = 0
    with model.eval_mode():
        iterator = progress_bar(batches, desc="evaluating", unit="batch") if progress else batches
        for batch_indices in iterator:
            items = [dataset[index] for index in batch_indices]
            scored_against_scribbles |= any(not item.get("has_dense_gt", True) for item in items)
            names = [str(item.get("name", index)) for item, index in zip(items, batch_indices)]
            given = torch.stack([torch.as_tensor(item["classes"], dtype=torch.bool) for item in items])
            output = infer_labels(model, [item["image"] for item in items], run, ImageFacts(names, given))
            augment_notes.extend(note for note in output.notes if note not in augment_notes)
            slid_images += sum(output.slid)
            if output.image_logits is not None:
                rows = torch.as_tensor(batch_indices, device=model_device)
                image_scores[rows] = torch.sigmoid(output.image_logits.to(model_device).float())
                image_labels[rows] = given.to(model_device).float()
            for head in runnable:
                for item, name, label in zip(items, names, output.labels[head]):
                    mask = torch.as_tensor(item["mask"]).to(model_device)
                    if mask.shape != label.shape:
                        raise DataError(f"ground truth of image {name!r} is {tuple(mask.shape)}, the image is "
                                        f"{tuple(label.shape)}")
                    try:
                        accumulators[head].update(label, mask)
                    except DataError as err:
                        raise DataError(f"image {name!r}: {err}") from None
    count = torch.tensor([len(indices)], dtype=torch.long, device=model_device)
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        distributed.all_reduce(count)
        if model.has_image_classifier:
            distributed.all_reduce(image_scores)  # each row is written by exactly one rank
            distributed.all_reduce(image_labels)
    common_notes = ["some images have no dense ground truth and were scored against their scribbles"] \
        if scored_against_scribbles else []
    classifier = None
    if model.has_image_classifier:
        threshold = source.threshold if isinstance(source, HeadClassSource) else DEFAULT_HEAD_THRESHOLD
        classifier = ClassifierResult(image_scores.double().cpu().numpy(), image_labels.cpu().numpy() > 0.5,
                                      class_names, background_index=source.background_index, threshold=threshold)
    if slid_images:
        tiling = settings.slide
        common_notes.append(f"{slid_images} image(s) predicted tile by tile ({tiling.tile} px tiles, stride "
                            f"{tiling.step}, {tiling.blend} blending)")
    report = EvalReport(skipped=skipped, classifier=classifier)
    for head in runnable:
        accumulators[head].all_reduce()
        report[head] = EvalResult(
            head=head, class_source=source.spec, confusion=accumulators[head].matrix.numpy(),
            class_names=class_names, num_images=int(count.item()), scales=settings.scales, flip=settings.flip,
            notes=common_notes + (augment_notes if head in dependent else []))
    return report


def comparison_sources(model: "InferenceModel | nn.Module", main: ClassSource) -> list[ClassSource]:
    """The class sources of the side-by-side table: ``main`` first, then oracle, head (for a model with an
    image classifier), threshold and none, each kind once."""
    others = [OracleClassSource(), HeadClassSource(), PredictionThresholdClassSource(), NoClassSource()]
    usable = _model(model).has_image_classifier
    return [main] + [source for source in others
                     if source.kind != main.kind and (usable or not source.needs_image_classifier)]


def evaluate_class_sources(model: "InferenceModel | nn.Module", dataset, sources: Sequence[ClassSource],
                           settings: InferenceSettings = InferenceSettings(), *,
                           known: dict[str, EvalReport] | None = None) -> SourceTable:
    """Class source spec -> {class-dependent head -> result} for every source of ``sources``.

    ``settings``: as for :func:`evaluate` (its class source is replaced by each of ``sources``). ``known``
    holds reports already computed (spec -> report; reused, not rescored). ``none`` needs no pass: without
    classes the augmented heads *are* the basic prediction (Tab. 4 "Without Augmented"), so its rows are
    the basic head's result relabelled (from a known report, else one basic-only pass). Sources the model
    cannot use (``head`` without a classifier) are left out; a model that chooses its classes inside its
    graph (``in_graph_classes``, an exported head) can use none, so its table is empty.
    """
    model = _model(model)
    runnable, _ = resolve_heads(model, settings.heads)
    dependent = class_dependent(model, runnable)
    known = dict(known or {})
    table = SourceTable()
    if not dependent or model.in_graph_classes:
        return table
    for source in sources:
        if source.needs_image_classifier and not model.has_image_classifier:
            continue
        spec = source.spec
        table.sources[spec] = source
        if source.kind == "none":
            basic = next((report[BASIC_HEAD] for report in known.values() if BASIC_HEAD in report), None)
            if basic is None:
                basic = evaluate(model, dataset, replace(settings, heads=(BASIC_HEAD,),
                                                         class_source=source))[BASIC_HEAD]
            table[spec] = {head: _relabelled(basic, head, spec) for head in dependent}
            continue
        report = known.get(spec)
        if report is None:
            report = evaluate(model, dataset, replace(settings, heads=tuple(dependent), class_source=source))
            known[spec] = report
        table[spec] = {head: report[head] for head in dependent if head in report}
    return table


def _relabelled(result: EvalResult, head: str, class_source: str) -> EvalResult:
    """``result`` (the basic head's) presented as ``head`` under ``class_source`` (same confusion)."""
    return EvalResult(head=head, class_source=class_source, confusion=result.confusion,
                      class_names=result.class_names, num_images=result.num_images, scales=result.scales,
                      flip=result.flip, notes=[f"class source '{class_source}' gives no classes: equals basic"])
