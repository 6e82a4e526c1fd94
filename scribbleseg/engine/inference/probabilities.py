"""Full-image inference of any method: heads, class sources, multi-scale + flip.

One call takes a list of normalised images of any sizes ``[3, H_i, W_i]`` and returns, for each asked
head, the class probabilities ``[K, H_i, W_i]`` of every image at its own full resolution (views and
the mapping back: :mod:`scribbleseg.engine.inference.views`).

Heads come from the method (:meth:`~scribbleseg.methods.SegmentationMethod.heads`). A head that
``uses_classes`` needs the image's class set, picked by a class source (appendix A.2, Tab. 4) from the
basic prediction of each image's own region at full resolution (``threshold:N``; with several views,
from their average), the ground-truth labels (``oracle``), a JSON file (``file:PATH``) or nothing
(``none``: such heads then return the basic prediction, Tab. 4's "Without Augmented" row, and
:func:`head_notes` says so). With a single view one ``method.infer`` pass gives the basic prediction, the
classes and the class-dependent heads; with several views a first pass per view gives the basic
predictions, the classes are chosen once from their average, and a second pass per view gives the
class-dependent heads with those classes. A caller that already knows the class set passes it as
``classes`` (one pass per view; sliding-window inference does this for every tile of an image, see
:mod:`scribbleseg.engine.inference.slide`).

The heads, class source, views and autocast come from one
:class:`~scribbleseg.engine.inference.settings.InferenceSettings`; what the class sources may read about
the images besides their pixels (names, ground-truth classes) from an :class:`ImageFacts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import torch
from torch import Tensor

from scribbleseg.engine.inference.model import InferenceModel, as_inference_model
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.inference.views import (
    Size,
    accumulate,
    autocast,
    image_regions,
    to_image_probabilities,
    view_batch,
)
from scribbleseg.errors import ConfigError
from scribbleseg.methods import BASIC_HEAD, ClassSource, Evidence, NoClassSource

__all__ = ["ImageFacts", "InferenceOutput", "available_heads", "head_notes", "resolve_heads", "infer_probabilities",
           "class_dependent", "run_heads"]


@dataclass(frozen=True)
class ImageFacts:
    """What the caller knows about ``N`` images besides their pixels (for the class sources that read it).

    Attributes:
        names: the ``N`` image names (the ``file:`` class source), or ``None``.
        given: ``[N, K]`` bool ground-truth classes (the ``oracle`` class source), or ``None``.
    """

    names: Sequence[str] | None = None
    given: Tensor | None = None

    def pick(self, indices: Sequence[int]) -> "ImageFacts":
        """The facts of the images at ``indices``."""
        return ImageFacts(names=[self.names[i] for i in indices] if self.names is not None else None,
                          given=self.given[list(indices)] if self.given is not None else None)


@dataclass
class InferenceOutput:
    """Result of :func:`infer_probabilities` for a batch of ``N`` images.

    Attributes:
        probabilities: head -> list of ``N`` tensors ``[K, H_i, W_i]`` float32 (softmax, view-averaged).
        present: ``[N, K]`` bool classes used by the class-dependent heads, or ``None`` (none used).
        notes: remarks about what the heads mean with this class source.
        image_logits: ``[N, K]`` view-averaged logits of the method's image-level classifier, or ``None``.
    """

    probabilities: dict[str, list[Tensor]]
    present: Tensor | None = None
    notes: list[str] = field(default_factory=list)
    image_logits: Tensor | None = None

    def labels(self, head: str) -> list[Tensor]:
        """Arg-max label maps ``[H_i, W_i]`` int64 of ``head``."""
        return [probs.argmax(dim=0) for probs in self.probabilities[head]]


def available_heads(method: InferenceModel) -> dict[str, str | None]:
    """head -> ``None`` when it can be evaluated, else the reason why not."""
    return {name: info.unavailable for name, info in method.heads().items()}


def class_dependent(method: InferenceModel, heads: Sequence[str]) -> list[str]:
    """The heads of ``heads`` that need the image's class set."""
    infos = method.heads()
    return [head for head in heads if infos[head].uses_classes]


def resolve_heads(method: InferenceModel, heads: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """(heads to run, skipped head -> reason) for the asked heads (``None`` / empty = all of the method's).

    Raises ConfigError for an unknown head name, or when none of the explicitly asked heads can run.
    """
    reasons = available_heads(method)
    asked = list(dict.fromkeys(heads)) if heads else list(reasons)
    unknown = [head for head in asked if head not in reasons]
    if unknown:
        raise ConfigError(f"unknown head {unknown[0]!r}; this model's heads are {', '.join(reasons)}")
    runnable = [head for head in asked if reasons[head] is None]
    skipped = {head: str(reasons[head]) for head in asked if reasons[head] is not None}
    if not runnable:
        detail = "; ".join(f"{head}: {why}" for head, why in skipped.items())
        raise ConfigError(f"none of the asked heads can be evaluated with this model ({detail})")
    return runnable, skipped


def run_heads(settings: InferenceSettings) -> tuple[str, ...]:
    """The heads ``settings`` runs at this level: its own, or the basic head when it names none."""
    return settings.heads if settings.heads else (BASIC_HEAD,)


def head_notes(method: InferenceModel, heads: Sequence[str], class_source: ClassSource) -> list[str]:
    """Human-readable remarks about what the class-dependent heads mean with ``class_source``."""
    dependent = class_dependent(method, heads)
    if isinstance(class_source, NoClassSource) and dependent:
        return [f"class source 'none' gives no class information, so the {'/'.join(dependent)} head(s) "
                "equal the basic prediction (Tab. 4 'Without Augmented')"]
    return []


def _present_classes(source: ClassSource, maps: Sequence[Tensor], image_sizes, facts: ImageFacts,
                     image_logits: Tensor | None) -> Tensor | None:
    """``[N, K]`` bool present classes from the class source, or None (no class information).

    ``maps`` are per-image full-resolution basic logits ``[1, K, H_i, W_i]``. The source is asked one
    image at a time (images may differ in size), so a pixel threshold counts real image pixels only.
    """
    rows = []
    for index, logits in enumerate(maps):
        evidence = Evidence(logits, image_logits[index:index + 1] if image_logits is not None else None)
        row = source.classes(evidence, image_sizes[index],
                             names=[facts.names[index]] if facts.names is not None else None,
                             given=facts.given[index:index + 1] if facts.given is not None else None)
        if row is None:
            return None
        rows.append(row.to(torch.bool))
    return torch.cat(rows, dim=0)


def _view_passes(method: InferenceModel, images: Sequence[Tensor], image_sizes: Sequence[Size],
                 settings: InferenceSettings, wanted: Sequence[str],
                 classes: Tensor | None) -> tuple[dict[str, list[Tensor]], Tensor | None]:
    """One ``method.infer`` per view of ``settings``: (head -> per-image probability sums ``[K, H_i, W_i]``,
    view-mean ``[N, K]`` image logits or ``None``) for the heads of ``wanted``, class-dependent ones with
    ``classes``."""
    device = images[0].device
    views = settings.views
    totals: dict[str, list[Tensor] | None] = {head: None for head in wanted}
    image_logits_total: Tensor | None = None
    for scale, mirrored in views:
        batch, view_sizes = view_batch(images, scale, mirrored)
        with autocast(device, settings.amp):
            prediction = method.infer(batch, heads=list(wanted), classes=classes)
        for head in wanted:
            if head in prediction.logits:
                totals[head] = accumulate(totals[head], to_image_probabilities(
                    prediction.logits[head], tuple(batch.shape[-2:]), view_sizes, image_sizes, mirrored))
        if prediction.image_logits is not None:
            scores = prediction.image_logits.float()
            image_logits_total = scores if image_logits_total is None else image_logits_total + scores
    image_logits = image_logits_total / len(views) if image_logits_total is not None else None
    return {head: total for head, total in totals.items() if total is not None}, image_logits


@torch.no_grad()
def infer_probabilities(
    model: InferenceModel,
    images: Sequence[Tensor],
    settings: InferenceSettings = InferenceSettings(),
    facts: ImageFacts = ImageFacts(),
    classes: Tensor | None = None,
) -> InferenceOutput:
    """Per-image class probabilities of each head (see the module docstring for the steps).

    Args:
        model: an :class:`~scribbleseg.engine.inference.model.InferenceModel` (a bare method is adapted),
            in eval mode (the caller's business).
        images: ``N`` normalised images ``[3, H_i, W_i]`` (any sizes).
        settings: heads (they must be runnable, see :func:`resolve_heads`; none named = the basic
            head), class source, views and autocast (``slide`` / ``tile_batch`` are not read).
        facts: the images' names (file class source) and ``[N, K]`` ground-truth classes (oracle).
        classes: ``[N, K]`` bool class set of the class-dependent heads, chosen by the caller (e.g. once
            per image for all its sliding-window tiles); the class source is then not asked and every
            view needs a single pass.

    Returns:
        :class:`InferenceOutput` with ``probabilities[head]`` = N tensors ``[K, H_i, W_i]`` on the
        model's device.
    """
    model = as_inference_model(model)
    heads = run_heads(settings)
    source = settings.class_source
    device = model.device
    images = [image.to(device=device, dtype=torch.float32) for image in images]
    image_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
    count = len(settings.views)
    dependent = class_dependent(model, heads)
    notes = head_notes(model, heads, source) if classes is None else []
    facts = replace(facts, given=facts.given.to(device) if facts.given is not None else None,
                    names=list(facts.names) if facts.names is not None else None)

    def finish(totals: dict[str, list[Tensor]], present: Tensor | None,
               image_logits: Tensor | None) -> InferenceOutput:
        probabilities = {head: [item / count for item in totals[head]] for head in totals}
        for head in dependent:
            if head not in probabilities:  # no classes: no augmentation
                probabilities[head] = probabilities[BASIC_HEAD]
        if BASIC_HEAD not in heads:
            probabilities.pop(BASIC_HEAD, None)
        return InferenceOutput(probabilities=probabilities, present=present, notes=notes,
                               image_logits=image_logits)

    if classes is not None and dependent:
        present = classes.to(device=device, dtype=torch.bool)
        totals, image_logits = _view_passes(model, images, image_sizes, settings, list(heads), present)
        return finish(totals, present, image_logits)

    if count == 1 and dependent:
        (scale, mirrored), = settings.views
        batch, view_sizes = view_batch(images, scale, mirrored)
        padded = tuple(batch.shape[-2:])

        def choose(evidence: Evidence) -> Tensor | None:
            regions = image_regions(evidence.basic, padded, view_sizes, image_sizes)
            return _present_classes(source, regions, image_sizes, facts, evidence.image_logits)

        with autocast(device, settings.amp):
            prediction = model.infer(batch, heads=[BASIC_HEAD, *dependent], classes=choose)
        totals = {head: to_image_probabilities(logits, padded, view_sizes, image_sizes, mirrored)
                  for head, logits in prediction.logits.items()}
        image_logits = prediction.image_logits.float() if prediction.image_logits is not None else None
        return finish(totals, prediction.present, image_logits)

    totals, image_logits = _view_passes(model, images, image_sizes, settings, [BASIC_HEAD], None)
    if not dependent:
        return finish(totals, None, image_logits)
    basic_logs = [(total / count).clamp_min(1e-12).log()[None] for total in totals[BASIC_HEAD]]
    present = _present_classes(source, basic_logs, image_sizes, facts, image_logits)
    if present is None:
        return finish(totals, None, image_logits)
    dependent_totals, _ = _view_passes(model, images, image_sizes, settings, dependent, present)
    totals.update(dependent_totals)
    return finish(totals, present, image_logits)
