"""Evaluation of a method on full images against dense ground truth: mIoU per head and class source.

``evaluate(method, dataset, heads=None, class_source="threshold:500")`` runs
:func:`~scribbleseg.engine.inference.labels.infer_labels` over the data set (full images, no crop; any
size; whole, or tile by tile above the pixel budget of ``slide``), takes the arg-max of each head and
accumulates one confusion matrix per head against the dense ground-truth masks (255 = ignored). Under ``torch.distributed`` every process scores its share of the
images (``rank::world_size``) and the matrices are all-reduced, so every process returns the same
result.

A head that cannot run with this model (see the method's ``heads()``) is skipped; the returned
:class:`~scribbleseg.engine.evaluation.results.EvalReport` (a ``dict[str, EvalResult]``) lists it in
``.skipped`` with the reason. A model with an image classifier also gets ``report.classifier``: its AP per
class and mAP against the image labels of the dense ground truth (gathered over all processes).

:func:`evaluate_class_sources` scores the class-dependent heads under several class sources (e.g. oracle /
head / threshold / none) so the honest rows and the upper bound sit side by side.
"""

from __future__ import annotations

from typing import Sequence

import torch

from scribbleseg.engine.evaluation.confusion import ConfusionAccumulator
from scribbleseg.engine.runtime.distributed import unwrap_model
from scribbleseg.engine.runtime.progress import progress_bar
from scribbleseg.engine.evaluation.results import ClassifierResult, EvalReport, EvalResult
from scribbleseg.engine.inference.probabilities import class_dependent, method_device, resolve_heads
from scribbleseg.engine.inference.labels import infer_labels
from scribbleseg.engine.inference.windows import SlideSettings
from scribbleseg.engine.inference.views import DEFAULT_MS_SCALES
from scribbleseg.errors import ConfigError, DataError
from scribbleseg.methods import (
    BASIC_HEAD,
    DEFAULT_HEAD_THRESHOLD,
    ClassSource,
    HeadClassSource,
    check_source_fits,
    parse_class_source,
)

__all__ = ["comparison_sources", "evaluate", "evaluate_class_sources"]

# SegFormer's multi-scale test ratios (used when ms_flip is on and no scales are given)


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


@torch.no_grad()
def evaluate(
    method,
    dataset,
    *,
    heads: Sequence[str] | None = None,
    class_source: str | ClassSource = "oracle",
    ms_flip: bool = False,
    scales: Sequence[float] = (1.0,),
    device: str | torch.device | None = "cpu",
    batch_size: int = 1,
    amp: bool = False,
    progress: bool = False,
    shard: bool | None = None,
    slide: SlideSettings | None = None,
) -> EvalReport:
    """Score ``heads`` of ``method`` on every image of ``dataset`` against its dense ground truth.

    Args:
        method: a :class:`~scribbleseg.methods.SegmentationMethod` (a DDP wrapper is unwrapped). It is put
            in eval mode and restored to its previous mode afterwards.
        dataset: map-style data set of dicts ``image [3, H, W]``, ``mask [H, W]`` (255 ignore), ``classes
            [K]`` bool, ``name``, with ``.info`` (class names, ignore index) — e.g. ``EvalDataset``.
        heads: heads to score; ``None`` = every head of the model. Impossible heads are skipped
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
        slide: whole-image or sliding-window inference per image (default :class:`SlideSettings`:
            ``auto``, whole up to its pixel budget); in slide mode ``batch_size`` tiles go per forward.

    Returns:
        :class:`EvalReport` head -> :class:`EvalResult`.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    model = unwrap_model(method)
    class_names, ignore_index = _dataset_classes(dataset)
    if len(class_names) != model.num_classes:
        raise ConfigError(f"the model predicts {model.num_classes} classes but the data set has "
                          f"{len(class_names)} ({', '.join(class_names[:5])}, ...)")
    source = class_source if isinstance(class_source, ClassSource) else parse_class_source(class_source, class_names)
    source_name = class_source if isinstance(class_source, str) else type(class_source).__name__
    check_source_fits(source, model)
    runnable, skipped = resolve_heads(model, heads)
    dependent = class_dependent(model, runnable)
    view_scales = tuple(float(s) for s in scales)
    if ms_flip and view_scales == (1.0,):
        view_scales = DEFAULT_MS_SCALES
    if device is not None:
        model.to(torch.device(device))
    model_device = method_device(model)
    was_training = model.training
    model.eval()
    accumulators = {head: ConfusionAccumulator(len(class_names), ignore_index, model_device) for head in runnable}
    indices = list(_shard(dataset, shard))
    image_scores = torch.zeros(len(dataset), model.num_classes, device=model_device)  # [L, K], this rank's rows
    image_labels = torch.zeros(len(dataset), model.num_classes, device=model_device)
    batches = [indices[start:start + batch_size] for start in range(0, len(indices), batch_size)]
    augment_notes: list[str] = []
    scored_against_scribbles = False
    slid_images = 0
    try:
        iterator = progress_bar(batches, desc="evaluating", unit="batch") if progress else batches
        for batch_indices in iterator:
            items = [dataset[index] for index in batch_indices]
            scored_against_scribbles |= any(not item.get("has_dense_gt", True) for item in items)
            names = [str(item.get("name", index)) for item, index in zip(items, batch_indices)]
            given = torch.stack([torch.as_tensor(item["classes"], dtype=torch.bool) for item in items])
            output = infer_labels(
                model, [item["image"] for item in items], heads=runnable, class_source=source,
                names=names, given=given, scales=view_scales, flip=ms_flip, amp=amp,
                slide=slide if slide is not None else SlideSettings(), tile_batch=batch_size)
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
    finally:
        model.train(was_training)
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
        tiling = slide if slide is not None else SlideSettings()
        common_notes.append(f"{slid_images} image(s) predicted tile by tile ({tiling.tile} px tiles, stride "
                            f"{tiling.step}, {tiling.blend} blending)")
    report = EvalReport(skipped=skipped, classifier=classifier)
    for head in runnable:
        accumulators[head].all_reduce()
        report[head] = EvalResult(
            head=head, class_source=source_name, confusion=accumulators[head].matrix.numpy(),
            class_names=class_names, num_images=int(count.item()), scales=view_scales, flip=ms_flip,
            notes=common_notes + (augment_notes if head in dependent else []))
    return report


def comparison_sources(method, main_source: str) -> list[str]:
    """The class sources of the side-by-side table: ``main_source`` first, then oracle, head (for a model
    with an image classifier), threshold and none, each kind once."""
    kinds = ["oracle", "head", "threshold", "none"] if unwrap_model(method).has_image_classifier \
        else ["oracle", "threshold", "none"]
    main_kind = main_source.partition(":")[0]
    return [main_source] + [kind for kind in kinds if kind != main_kind]


def evaluate_class_sources(method, dataset, sources: Sequence[str], *, heads: Sequence[str] | None = None,
                           known: dict[str, EvalReport] | None = None, **options) -> dict[str, dict[str, EvalResult]]:
    """Class source -> {class-dependent head -> result} for every spec of ``sources``.

    ``known`` holds reports already computed (source -> report; reused, not rescored). ``none`` needs no
    pass: without classes the augmented heads *are* the basic prediction (Tab. 4 "Without Augmented"), so
    its rows are the basic head's result relabelled (from a known report, else one basic-only pass). Other
    ``options`` go to :func:`evaluate`. Sources the model cannot use (``head`` without a classifier) are
    left out.
    """
    model = unwrap_model(method)
    runnable, _ = resolve_heads(model, heads)
    dependent = class_dependent(model, runnable)
    known = dict(known or {})
    table: dict[str, dict[str, EvalResult]] = {}
    if not dependent:
        return table
    for spec in sources:
        if spec.partition(":")[0] == "head" and not model.has_image_classifier:
            continue
        if spec == "none":
            basic = next((report[BASIC_HEAD] for report in known.values() if BASIC_HEAD in report), None)
            if basic is None:
                basic = evaluate(model, dataset, heads=[BASIC_HEAD], class_source="none", **options)[BASIC_HEAD]
            table[spec] = {head: _relabelled(basic, head, spec) for head in dependent}
            continue
        report = known.get(spec)
        if report is None:
            report = evaluate(model, dataset, heads=dependent, class_source=spec, **options)
            known[spec] = report
        table[spec] = {head: report[head] for head in dependent if head in report}
    return table


def _relabelled(result: EvalResult, head: str, class_source: str) -> EvalResult:
    """``result`` (the basic head's) presented as ``head`` under ``class_source`` (same confusion)."""
    return EvalResult(head=head, class_source=class_source, confusion=result.confusion,
                      class_names=result.class_names, num_images=result.num_images, scales=result.scales,
                      flip=result.flip, notes=[f"class source '{class_source}' gives no classes: equals basic"])
