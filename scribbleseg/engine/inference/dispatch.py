"""The one whole-or-tiled dispatcher: a batch of images, each predicted whole or tile by tile.

:func:`infer_images` sends the images that :func:`~scribbleseg.engine.inference.windows.uses_slide` keeps
whole (under ``settings.slide``) through
:func:`~scribbleseg.engine.inference.probabilities.infer_probabilities` together, and every other one, in
order, through :func:`~scribbleseg.engine.inference.slide.slide_infer` into the band sinks the caller
opens for it, so a large image never needs its ``[K, H, W]`` probabilities in memory. Evaluation
(:func:`infer_labels`: label maps), prediction (label PNGs, probability files), the trainer's validation and
the figures all run through it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Mapping, Sequence

import torch
from torch import Tensor

from scribbleseg.engine.inference.band_sinks import LabelSink
from scribbleseg.engine.inference.band_stitching import BandSink
from scribbleseg.engine.inference.model import InferenceModel, as_inference_model
from scribbleseg.engine.inference.probabilities import ImageFacts, head_notes, infer_probabilities, run_heads
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.inference.slide import slide_infer
from scribbleseg.engine.inference.tile_sources import TensorTiles, TileSource
from scribbleseg.engine.inference.windows import uses_slide

__all__ = ["ImageOutput", "BatchOutput", "LabelMaps", "SlideSinks", "infer_images", "infer_labels"]

# (image index, height, width) -> a context holding head -> band sinks of one tiled image; the sinks are
# complete when the context ends (a probability file is then in place)
SlideSinks = Callable[[int, int, int], ContextManager[Mapping[str, Sequence[BandSink]]]]


@dataclass
class ImageOutput:
    """One image of :func:`infer_images`.

    Attributes:
        slid: True when it was predicted tile by tile (its rows went to the sinks of ``slide_sinks``).
        probabilities: head -> ``[K, H, W]`` float32 of a whole image, ``None`` for a tiled one.
        image_logits: ``[K]`` float32 image-classifier logits (view-averaged for a whole image, the
            maximum over tiles for a tiled one), or ``None`` (no classifier).
    """

    slid: bool
    probabilities: dict[str, Tensor] | None = None
    image_logits: Tensor | None = None


@dataclass
class BatchOutput:
    """:func:`infer_images` of ``N`` images: their outputs in input order and the remarks about the heads."""

    images: list[ImageOutput]
    notes: list[str] = field(default_factory=list)


def _no_sinks(index: int, height: int, width: int) -> ContextManager[Mapping[str, Sequence[BandSink]]]:
    return contextlib.nullcontext({})


@torch.no_grad()
def infer_images(model: InferenceModel, images: Sequence[TileSource], settings: InferenceSettings,
                 facts: ImageFacts = ImageFacts(), slide_sinks: SlideSinks = _no_sinks) -> BatchOutput:
    """Predict ``N`` images (``images[i].whole()`` / ``read()``: normalised pixels), each whole or tiled.

    Args:
        model: the model (a bare method is adapted), in eval mode; the heads of ``settings`` must run.
        images: the images as tile sources (:class:`TensorTiles`, :class:`RGBTiles`).
        settings: heads, class source, views, autocast, tiling (``settings.slide``), tiles per pass.
        facts: the ``N`` images' names (file class source) and ``[N, K]`` ground-truth classes (oracle).
        slide_sinks: opens the band sinks of a tiled image (see :data:`SlideSinks`).
    """
    model = as_inference_model(model)
    heads = run_heads(settings)
    slid = [uses_slide(settings.slide, image.height, image.width) for image in images]
    outputs = [ImageOutput(slid=tiled) for tiled in slid]
    whole = [index for index, tiled in enumerate(slid) if not tiled]
    if whole:
        result = infer_probabilities(model, [images[index].whole() for index in whole], settings,
                                     facts.pick(whole))
        for position, index in enumerate(whole):
            outputs[index].probabilities = {head: result.probabilities[head][position] for head in heads}
            if result.image_logits is not None:
                outputs[index].image_logits = result.image_logits[position].float()
    for index in (index for index, tiled in enumerate(slid) if tiled):
        image = images[index]
        with slide_sinks(index, image.height, image.width) as sinks:
            tiled = slide_infer(model, image, {head: list(sinks.get(head, ())) for head in heads}, settings,
                                facts.pick([index]))
        if tiled.image_logits is not None:
            outputs[index].image_logits = tiled.image_logits[0].float()
    return BatchOutput(images=outputs, notes=head_notes(model, heads, settings.class_source))


@dataclass
class LabelMaps:
    """Result of :func:`infer_labels` for ``N`` images.

    Attributes:
        labels: head -> ``N`` label maps ``[H_i, W_i]`` (int64 from whole images, uint8 from tiled ones).
        slid: ``N`` flags, True where the image was predicted tile by tile.
        notes: remarks about what the heads mean with this class source.
        image_logits: ``[N, K]`` float32 image-classifier logits, or ``None`` (no classifier).
    """

    labels: dict[str, list[Tensor]]
    slid: list[bool]
    notes: list[str] = field(default_factory=list)
    image_logits: Tensor | None = None


@torch.no_grad()
def infer_labels(model: InferenceModel, images: Sequence[Tensor], settings: InferenceSettings,
                 facts: ImageFacts = ImageFacts()) -> LabelMaps:
    """Arg-max label maps of the heads of ``settings`` for ``N`` normalised images ``[3, H_i, W_i]``
    (:func:`infer_images` with a label sink per head of a tiled image)."""
    model = as_inference_model(model)
    heads = run_heads(settings)
    label_sinks: dict[int, dict[str, LabelSink]] = {}

    @contextlib.contextmanager
    def open_sinks(index: int, height: int, width: int):  # type: ignore[no-untyped-def]
        label_sinks[index] = {head: LabelSink(height, width, model.num_classes) for head in heads}
        yield {head: [sink] for head, sink in label_sinks[index].items()}

    output = infer_images(model, [TensorTiles(image) for image in images], settings, facts, open_sinks)
    labels = {head: [label_sinks[index][head].labels if image.slid else image.probabilities[head].argmax(dim=0)
                     for index, image in enumerate(output.images)]  # type: ignore[index]
              for head in heads}
    rows = [image.image_logits for image in output.images]
    scores = torch.stack(rows) if rows and all(row is not None for row in rows) else None  # type: ignore[misc]
    return LabelMaps(labels=labels, slid=[image.slid for image in output.images], notes=output.notes,
                     image_logits=scores)
