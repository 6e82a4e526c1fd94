"""Evaluation results as rich tables for the terminal (values in %, as the paper's tables)."""

from __future__ import annotations

import math

from rich.table import Table

from scribbleseg.engine.evaluation.results import MIN_AP_SUPPORT, ClassifierResult, EvalResult, SourceTable

__all__ = ["per_class_table", "comparison_table", "class_source_table", "classifier_table"]


def _percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100.0 * value:.1f}"


def per_class_table(result: EvalResult) -> Table:
    """Per-class IoU table (rich), one row per class plus the mean, values in % as the paper's Tab. 6."""
    table = Table(title=f"{result.head} head, classes: {result.class_source} ({result.num_images} images)")
    table.add_column("class")
    table.add_column("IoU (%)", justify="right")
    table.add_column("acc (%)", justify="right")
    table.add_column("GT pixels", justify="right")
    support = result.confusion.sum(axis=1)
    for name, iou, accuracy, pixels in zip(result.class_names, result.per_class_iou,
                                           result.per_class_accuracy, support):
        table.add_row(name, _percent(iou), _percent(accuracy), str(int(pixels)))
    table.add_section()
    table.add_row("mean", _percent(result.miou), _percent(result.mean_accuracy), str(int(support.sum())),
                  style="bold")
    return table


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


def class_source_table(sources: SourceTable, basic: EvalResult | None = None,
                       classifier: ClassifierResult | None = None, title: str | None = None) -> Table:
    """mIoU (%) of the class-dependent heads (columns) under each class source (rows), as Tab. 4.

    ``basic``: the un-augmented prediction, shown as the first row; ``classifier``: its mAP goes beside
    the rows of the sources that read it (``head``; Tab. 4's mAP column).
    """
    heads = list(dict.fromkeys(head for results in sources.values() for head in results))
    table = Table(title=title or "augmented heads by class source (mIoU %)")
    table.add_column("classes at inference")
    for head in heads:
        table.add_column(head, justify="right")
    table.add_column("classifier mAP (%)", justify="right")
    if basic is not None:
        table.add_row("(basic head, no augmentation)", *(_percent(basic.miou) for _ in heads), "-")
        table.add_section()
    for spec, results in sources.items():
        average = "-"
        source = sources.sources.get(spec)
        if classifier is not None and source is not None and source.needs_image_classifier:
            average = _percent(classifier.map) + (" *" if classifier.unreliable.any() else "")  # see classifier_table
        table.add_row(spec, *(_percent(results[head].miou) if head in results else "-" for head in heads), average)
    return table


def classifier_table(result: ClassifierResult, title: str | None = None) -> Table:
    """Per-class AP (%) of the image classifier with its support (images with / without the class), its
    mAP and the set scores at its threshold; an AP from fewer than ``MIN_AP_SUPPORT`` positive or negative
    images is marked ``*`` (unreliable), and so is a mAP that averages one."""
    unreliable = result.unreliable
    table = Table(title=title or f"image classifier, {result.targets.shape[0]} images",
                  caption=f"* unreliable: fewer than {MIN_AP_SUPPORT} images with or without the class"
                  if unreliable.any() else None)
    table.add_column("class")
    table.add_column("AP (%)", justify="right")
    table.add_column("with", justify="right")
    table.add_column("without", justify="right")
    for name, value, positives, negatives, few in zip(result.class_names, result.per_class_ap, result.positives,
                                                       result.negatives, unreliable):
        table.add_row(name, _percent(value) + (" *" if few else ""), str(int(positives)), str(int(negatives)))
    table.add_section()
    table.add_row("mAP", _percent(result.map) + (" *" if unreliable.any() else ""), "", "", style="bold")
    scores = result.set_scores()
    table.add_row(f"precision @ {result.threshold:g}", _percent(scores["precision"]), "", "")
    table.add_row(f"recall @ {result.threshold:g}", _percent(scores["recall"]), "", "")
    table.add_row("exact class set", _percent(scores["exact_set_rate"]), "", "")
    return table
