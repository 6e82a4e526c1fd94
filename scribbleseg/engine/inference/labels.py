"""Arg-max label maps of a batch of images, each predicted whole or tile by tile (for ``eval``).

:func:`infer_labels` sends the images that :func:`~scribbleseg.engine.inference.windows.uses_slide` keeps
whole through :func:`~scribbleseg.engine.inference.probabilities.infer_probabilities` together, and every other one
through :func:`~scribbleseg.engine.inference.slide.slide_infer` with a label sink per head, so a large
image never needs its ``[K, H, W]`` probabilities in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from scribbleseg.engine.inference.band_sinks import LabelSink
from scribbleseg.engine.inference.probabilities import head_notes, infer_probabilities
from scribbleseg.engine.inference.slide import slide_infer
from scribbleseg.engine.inference.windows import SlideSettings, uses_slide
from scribbleseg.engine.inference.tile_sources import TensorTiles
from scribbleseg.methods import ClassSource, NoClassSource, SegmentationMethod

__all__ = ["LabelMaps", "infer_labels"]


@dataclass
class LabelMaps:
    """Result of :func:`infer_labels` for ``N`` images.

    Attributes:
        labels: head -> ``N`` label maps ``[H_i, W_i]`` (int64 from whole images, uint8 from tiled ones).
        slid: ``N`` flags, True where the image was predicted tile by tile.
        notes: remarks about what the heads mean with this class source.
        image_logits: ``[N, K]`` float32 image-classifier logits (view-averaged for whole images, the
            maximum over tiles for tiled ones), or ``None`` (no classifier).
    """

    labels: dict[str, list[Tensor]]
    slid: list[bool]
    notes: list[str] = field(default_factory=list)
    image_logits: Tensor | None = None


@torch.no_grad()
def infer_labels(
    method: SegmentationMethod,
    images: Sequence[Tensor],
    *,
    heads: Sequence[str],
    class_source: ClassSource | None = None,
    names: Sequence[str] | None = None,
    given: Tensor | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    amp: bool = False,
    slide: SlideSettings | None = None,
    tile_batch: int = 1,
) -> LabelMaps:
    """Label maps of ``heads`` for ``N`` normalised images ``[3, H_i, W_i]`` (arguments as
    :func:`~scribbleseg.engine.inference.probabilities.infer_probabilities`; ``slide``: whole / slide choice and
    tiling, ``None`` = always whole; ``tile_batch``: tiles per forward pass)."""
    source = class_source if class_source is not None else NoClassSource()
    slid = [uses_slide(slide, int(image.shape[-2]), int(image.shape[-1])) for image in images]
    labels: dict[str, list[Tensor | None]] = {head: [None] * len(images) for head in heads}
    notes = head_notes(method, heads, source)
    whole = [index for index, tiled in enumerate(slid) if not tiled]
    image_logits: list[Tensor | None] = [None] * len(images)
    if whole:
        output = infer_probabilities(
            method, [images[index] for index in whole], heads=heads, class_source=source,
            names=[names[index] for index in whole] if names is not None else None,
            given=given[whole] if given is not None else None, scales=scales, flip=flip, amp=amp)
        for head in heads:
            for index, label in zip(whole, output.labels(head)):
                labels[head][index] = label
        if output.image_logits is not None:
            for index, row in zip(whole, output.image_logits.float()):
                image_logits[index] = row
    for index in (index for index, tiled in enumerate(slid) if tiled):
        assert slide is not None
        image = images[index]
        sinks = {head: LabelSink(int(image.shape[-2]), int(image.shape[-1]), method.num_classes) for head in heads}
        result = slide_infer(method, TensorTiles(image), {head: [sink] for head, sink in sinks.items()}, settings=slide,
                    class_source=source, name=names[index] if names is not None else None,
                    given=given[index:index + 1] if given is not None else None, scales=scales, flip=flip,
                    amp=amp, tile_batch=tile_batch)
        for head, sink in sinks.items():
            labels[head][index] = sink.labels
        if result.image_logits is not None:
            image_logits[index] = result.image_logits[0].float()
    scores = torch.stack(image_logits) if image_logits and all(row is not None for row in image_logits) else None
    return LabelMaps(labels={head: [label for label in maps if label is not None] for head, maps in labels.items()},
                     slid=slid, notes=notes, image_logits=scores)
