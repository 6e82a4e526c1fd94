"""Full-image inference of a :class:`~scribbleseg.pfa.PFASegmentor`: padding, heads, class sources, MS + flip.

One call takes a list of normalised images of any sizes ``[3, H_i, W_i]`` and returns, for each asked
head, the class probabilities ``[K, H_i, W_i]`` of every image at its own full resolution:

1. **Views.** For every scale ``s`` (and its horizontal mirror when ``flip``), each image is resized to
   ``round(s * H_i) x round(s * W_i)`` (bilinear) and the batch is zero-padded at the bottom / right to a
   common size that is a multiple of 32 (zeros *after* normalisation = the ImageNet mean colour). With
   one image per batch the padding is below 32 pixels; with several, images are padded to the largest.
2. **Basic head.** The basic logits ``[N, K, h/4, w/4]`` of each view are upsampled x4 to the padded
   size, cropped back to each image's region, un-mirrored, resized to ``H_i x W_i`` and turned into
   softmax probabilities; the views are averaged.
3. **Classes.** The class source (appendix A.2, Tab. 4) picks the present classes ``[N, K]`` from the
   basic prediction of each image's own region at full resolution (``threshold:N``; with several views,
   from their average), the ground-truth labels (``oracle``), a JSON file (``file:PATH``) or nothing
   (``none``).
4. **Augmented heads.** The segmentor extracts the local prototypes of the present classes from each
   view's features and basic prediction and returns the ``local`` logits, and the ``global`` logits from
   the bank's prototypes of the present classes; they are mapped back and averaged like ``basic``. With a
   single view this is the same ``segmentor.infer`` pass as the basic head; with several views the
   augmented predictions come from a second pass per view with the classes chosen once.

Head availability: ``local`` needs a model trained with local augmentation (``pfa.use_local``);
``global`` needs ``pfa.use_global`` and a full prototype bank. With the ``none`` class source there is no
class information and therefore no augmentation: the ``local`` / ``global`` heads then return the basic
prediction (Tab. 4's "Without Augmented" row), and :func:`head_notes` says so.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from scribbleseg.errors import ConfigError
from scribbleseg.pfa import ClassSource, NoClassSource

__all__ = [
    "HEADS",
    "PAD_MULTIPLE",
    "InferenceOutput",
    "pad_batch",
    "available_heads",
    "head_notes",
    "resolve_heads",
    "infer_probabilities",
    "resolve_inference_device",
]

HEADS = ("basic", "local", "global")
PAD_MULTIPLE = 32
OUTPUT_STRIDE = 4


@dataclass
class InferenceOutput:
    """Result of :func:`infer_probabilities` for a batch of ``N`` images.

    Attributes:
        probabilities: head -> list of ``N`` tensors ``[K, H_i, W_i]`` float32 (softmax, view-averaged).
        present: ``[N, K]`` bool classes used for augmentation, or ``None`` (no augmentation).
    """

    probabilities: dict[str, list[Tensor]]
    present: Tensor | None = None
    notes: list[str] = field(default_factory=list)

    def labels(self, head: str) -> list[Tensor]:
        """Arg-max label maps ``[H_i, W_i]`` int64 of ``head``."""
        return [probs.argmax(dim=0) for probs in self.probabilities[head]]


def resolve_inference_device(spec: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` as given.

    Raises ConfigError for an unknown name or a CUDA device that is not there.
    """
    if isinstance(spec, torch.device):
        return spec
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec} asked for CUDA but no CUDA device is available (use auto or cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
    return device


def pad_batch(images: Sequence[Tensor], multiple: int = PAD_MULTIPLE) -> tuple[Tensor, list[tuple[int, int]]]:
    """Stack ``[3, H_i, W_i]`` images into ``[N, 3, H_p, W_p]``, zero-padded at the bottom / right.

    ``H_p`` / ``W_p`` are the largest height / width rounded up to a multiple of ``multiple``. Returns the
    batch and the original ``(H_i, W_i)`` of each image.
    """
    if not images:
        raise ValueError("pad_batch needs at least one image")
    sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
    height = -(-max(h for h, _ in sizes) // multiple) * multiple
    width = -(-max(w for _, w in sizes) // multiple) * multiple
    if all(size == sizes[0] for size in sizes):
        stacked = torch.stack(list(images))
        return F.pad(stacked, (0, width - sizes[0][1], 0, height - sizes[0][0])), sizes
    batch = images[0].new_zeros((len(images), images[0].shape[0], height, width))
    for index, (image, (h, w)) in enumerate(zip(images, sizes)):
        batch[index, :, :h, :w] = image
    return batch, sizes


def available_heads(segmentor) -> dict[str, str | None]:
    """head -> ``None`` when it can be evaluated, else the reason why not."""
    settings = segmentor.settings
    reasons: dict[str, str | None] = {"basic": None, "local": None, "global": None}
    if not settings.use_local:
        reasons["local"] = "the model was trained without local-prototype augmentation (pfa.use_local=false)"
    if not settings.use_global:
        reasons["global"] = "the model was trained without global-prototype augmentation (pfa.use_global=false)"
    elif not segmentor.bank.is_full:
        filled = int((segmentor.bank.filled >= segmentor.bank.slots).sum())
        reasons["global"] = (f"its prototype memory bank is not full ({filled} of {segmentor.num_classes} "
                             "classes have all their slots), so global augmentation never ran")
    return reasons


def resolve_heads(segmentor, heads: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """(heads to run, skipped head -> reason) for the asked heads (``None`` / empty = all available).

    Raises ConfigError for an unknown head name, or when none of the explicitly asked heads can run.
    """
    reasons = available_heads(segmentor)
    asked = list(dict.fromkeys(heads)) if heads else list(HEADS)
    unknown = [head for head in asked if head not in HEADS]
    if unknown:
        raise ConfigError(f"unknown head {unknown[0]!r}; heads are {', '.join(HEADS)}")
    runnable = [head for head in asked if reasons[head] is None]
    skipped = {head: str(reasons[head]) for head in asked if reasons[head] is not None}
    if not runnable:
        detail = "; ".join(f"{head}: {why}" for head, why in skipped.items())
        raise ConfigError(f"none of the asked heads can be evaluated with this model ({detail})")
    return runnable, skipped


def head_notes(heads: Sequence[str], class_source: ClassSource) -> list[str]:
    """Human-readable remarks about what the augmented heads mean with ``class_source``."""
    if isinstance(class_source, NoClassSource) and any(head != "basic" for head in heads):
        return ["class source 'none' gives no class information, so no prototype augmentation runs: "
                "the local/global heads equal the basic prediction (Tab. 4 'Without Augmented')"]
    return []


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _view_batches(images: Sequence[Tensor], scale: float) -> tuple[Tensor, list[tuple[int, int]]]:
    """Images resized by ``scale`` and padded into one batch; returns the batch and the resized sizes."""
    if scale == 1.0:
        return pad_batch(images)
    resized = []
    for image in images:
        h, w = image.shape[-2:]
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        resized.append(F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0])
    return pad_batch(resized)


def _to_image_probabilities(logits: Tensor, view_sizes: Sequence[tuple[int, int]],
                            image_sizes: Sequence[tuple[int, int]], flipped: bool) -> list[Tensor]:
    """``[N, K, h, w]`` logits of a padded (mirrored) view -> N probability maps ``[K, H_i, W_i]``."""
    padded = F.interpolate(logits.float(), scale_factor=OUTPUT_STRIDE, mode="bilinear", align_corners=False)
    if flipped:  # the view was the mirrored padded batch: mirror back, the image is top-left again
        padded = padded.flip(-1)
    maps = []
    for index, ((h, w), size) in enumerate(zip(view_sizes, image_sizes)):
        region = padded[index:index + 1, :, :h, :w]
        if (h, w) != tuple(size):
            region = F.interpolate(region, size=tuple(size), mode="bilinear", align_corners=False)
        maps.append(region[0].softmax(dim=0))
    return maps


def _accumulate(total: list[Tensor] | None, maps: list[Tensor]) -> list[Tensor]:
    if total is None:
        return maps
    return [running + new for running, new in zip(total, maps)]


class _ImageRegionClassSource(ClassSource):
    """Hands a class source the basic prediction of each image's own region, at the image's size.

    ``segmentor.infer`` gives the class source the logits of the padded (and rescaled) batch; this
    adapter upsamples them to the padded size, crops every image's region, resizes it to the image's
    original size and asks the wrapped source one image at a time, so a pixel threshold counts real
    image pixels only.
    """

    def __init__(self, inner: ClassSource, view_sizes, image_sizes) -> None:
        self.inner = inner
        self.view_sizes = list(view_sizes)
        self.image_sizes = list(image_sizes)

    def classes(self, basic_logits, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        padded = F.interpolate(basic_logits.float(), size=tuple(image_size), mode="bilinear", align_corners=False)
        regions = []
        for index, ((h, w), size) in enumerate(zip(self.view_sizes, self.image_sizes)):
            region = padded[index:index + 1, :, :h, :w]
            if (h, w) != tuple(size):
                region = F.interpolate(region, size=tuple(size), mode="bilinear", align_corners=False)
            regions.append(region)
        return _present_classes(self.inner, regions, self.image_sizes, names, given, already_logits=True)


def _augment_choice(augmented: Sequence[str]) -> str:
    """The ``augment`` argument of the segmentor for the asked augmented heads."""
    if "local" in augmented and "global" in augmented:
        return "both"
    return "local" if "local" in augmented else "global"


def _augmented_logits(output, head: str) -> Tensor:
    logits = output.local if head == "local" else output.global_
    if logits is None:
        raise ConfigError(f"the model produced no {head} prediction (check the head with resolve_heads first)")
    return logits


@torch.no_grad()
def infer_probabilities(
    segmentor,
    images: Sequence[Tensor],
    *,
    heads: Sequence[str] = ("basic",),
    class_source: ClassSource | None = None,
    names: Sequence[str] | None = None,
    given: Tensor | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    amp: bool = False,
) -> InferenceOutput:
    """Per-image class probabilities of each head (see the module docstring for the steps).

    Only the segmentor's public calls are used: ``segmentor(images, present=..., augment=...)`` and
    ``segmentor.infer(images, class_source, ...)``. With one view (single scale, no flip) a single
    ``infer`` pass gives the basic prediction, the classes and the augmented predictions. With several
    views, a first pass gives the basic prediction of every view, the classes are chosen once from their
    average, and a second pass gives the augmented predictions of every view with those classes.

    Args:
        segmentor: a :class:`~scribbleseg.pfa.PFASegmentor` (put in eval mode by the caller).
        images: ``N`` normalised images ``[3, H_i, W_i]`` (any sizes).
        heads: subset of ``("basic", "local", "global")``; heads must be runnable (see
            :func:`resolve_heads`).
        class_source: where the present classes come from (default: none).
        names: the ``N`` image names (file class source).
        given: ``[N, K]`` bool ground-truth classes (oracle class source).
        scales: test scales; ``(1.0,)`` for single scale.
        flip: also run the horizontal mirror of every scale.
        amp: autocast the network (bf16 on CPU, fp16 on CUDA); the averaging stays float32.

    Returns:
        :class:`InferenceOutput` with ``probabilities[head]`` = N tensors ``[K, H_i, W_i]`` on the
        model's device.
    """
    source = class_source if class_source is not None else NoClassSource()
    device = next(segmentor.parameters()).device
    images = [image.to(device=device, dtype=torch.float32) for image in images]
    image_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
    views = [(float(scale), mirrored) for scale in scales for mirrored in ((False, True) if flip else (False,))]
    if not views:
        raise ConfigError("at least one test scale is needed")
    augmented = [head for head in heads if head != "basic"]
    notes = head_notes(heads, source) if augmented else []
    given = given.to(device) if given is not None else None

    def view_batch(scale: float, mirrored: bool):
        batch, view_sizes = _view_batches(images, scale)
        return (batch.flip(-1) if mirrored else batch), view_sizes

    def finish(totals: dict[str, list[Tensor]], present: Tensor | None) -> InferenceOutput:
        probabilities = {head: [item / len(views) for item in totals[head]] for head in totals}
        for head in augmented:
            probabilities.setdefault(head, probabilities["basic"])  # no classes: no augmentation
        if "basic" not in heads:
            probabilities.pop("basic")
        return InferenceOutput(probabilities=probabilities, present=present, notes=notes)

    if len(views) == 1 and augmented:
        (scale, mirrored), = views
        batch, view_sizes = view_batch(scale, mirrored)
        region_source = _ImageRegionClassSource(source, view_sizes, image_sizes)
        with _autocast(device, amp):
            output = segmentor.infer(batch, region_source, names=list(names) if names is not None else None,
                                     given=given, augment=_augment_choice(augmented))
        totals = {"basic": _to_image_probabilities(output.basic, view_sizes, image_sizes, mirrored)}
        if output.present is not None:
            for head in augmented:
                totals[head] = _to_image_probabilities(_augmented_logits(output, head), view_sizes,
                                                       image_sizes, mirrored)
        return finish(totals, output.present)

    basic_total: list[Tensor] | None = None
    for scale, mirrored in views:
        batch, view_sizes = view_batch(scale, mirrored)
        with _autocast(device, amp):
            output = segmentor(batch, present=None, augment=False)
        basic_total = _accumulate(basic_total, _to_image_probabilities(output.basic, view_sizes, image_sizes,
                                                                      mirrored))
    assert basic_total is not None
    totals = {"basic": basic_total}
    if not augmented:
        return finish(totals, None)
    basic_probs = [total / len(views) for total in basic_total]
    present = _present_classes(source, basic_probs, image_sizes, names, given)
    if present is None:
        return finish(totals, None)
    augmented_totals: dict[str, list[Tensor] | None] = {head: None for head in augmented}
    for scale, mirrored in views:
        batch, view_sizes = view_batch(scale, mirrored)
        with _autocast(device, amp):
            output = segmentor(batch, present=present, augment=_augment_choice(augmented))
        for head in augmented:
            augmented_totals[head] = _accumulate(augmented_totals[head], _to_image_probabilities(
                _augmented_logits(output, head), view_sizes, image_sizes, mirrored))
    totals.update({head: total for head, total in augmented_totals.items() if total is not None})
    return finish(totals, output.present)


def _present_classes(source: ClassSource, maps: Sequence[Tensor], image_sizes, names, given,
                     already_logits: bool = False) -> Tensor | None:
    """``[N, K]`` bool present classes from the class source, or None (no augmentation).

    ``maps`` are per-image full-resolution basic predictions: probabilities ``[K, H_i, W_i]`` (handed
    to the source as log-probabilities) or, with ``already_logits``, logits ``[1, K, H_i, W_i]``. The
    source is asked one image at a time (images may differ in size), so a pixel threshold counts real
    image pixels only.
    """
    rows = []
    for index, prediction in enumerate(maps):
        logits = prediction if already_logits else prediction.clamp_min(1e-12).log()[None]
        row = source.classes(
            logits, image_sizes[index],
            names=[names[index]] if names is not None else None,
            given=given[index:index + 1] if given is not None else None,
        )
        if row is None:
            return None
        rows.append(row.to(torch.bool))
    return torch.cat(rows, dim=0)
