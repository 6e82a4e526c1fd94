"""Sliding-window inference of one image with any method: heads, class sources, multi-scale + flip.

:func:`slide_infer` runs the method on the tiles of
:func:`~scribbleseg.engine.inference.windows.tile_grid` and streams each head's blended probabilities to
band sinks (:mod:`scribbleseg.engine.inference.band_stitching`), so memory stays ``O(K * tile * W)`` whatever the
image height. Each tile goes through
:func:`~scribbleseg.engine.inference.probabilities.infer_probabilities` exactly like a small image: test scales and
the horizontal flip apply to the tile (its content resized / mirrored, probabilities averaged), so with
one tile covering the image the result is that of whole-image inference.

Class-dependent heads (e.g. PFA's local / global prototype augmentation) need the image's class set,
chosen **once per image** and used by every tile:

1. pass 1 stitches the basic prediction; besides the basic head's own sinks it counts the arg-max pixels
   per class over the whole image (``Evidence.pixel_counts``), keeps a subsampled log-probability map
   (``Evidence.basic``, at most :data:`~scribbleseg.engine.inference.band_sinks.EVIDENCE_PIXELS` pixels) and the
   image-level classifier's logits (the maximum over tiles of each tile's view average: a class seen
   in any tile is in the image);
2. the class source picks the set from that evidence (``threshold:N`` counts full-resolution pixels, so
   it picks what it would pick from the whole-image prediction);
3. pass 2 runs the class-dependent heads on every tile with that fixed set (``method.infer(...,
   classes=mask)``).

With the ``none`` source (or one that gives no classes) the class-dependent heads are the basic
prediction, as in whole-image inference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator, Mapping, Sequence

import torch
from torch import Tensor

from scribbleseg.engine.inference.band_sinks import ClassCountSink, EvidenceSink, evidence_factor
from scribbleseg.engine.inference.band_stitching import BandSink, stitch
from scribbleseg.engine.inference.model import InferenceModel, as_inference_model
from scribbleseg.engine.inference.probabilities import ImageFacts, class_dependent, infer_probabilities
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.inference.windows import TileGrid, blend_window, tile_grid
from scribbleseg.engine.inference.tile_sources import TileSource
from scribbleseg.methods import BASIC_HEAD, Evidence, NoClassSource

__all__ = ["SlideResult", "slide_infer"]


@dataclass
class SlideResult:
    """What :func:`slide_infer` returns besides what its sinks received.

    Attributes:
        present: ``[1, K]`` bool class set of the class-dependent heads, or ``None`` (none used).
        tiles: number of tiles per pass.
        passes: network passes over the tiles (1, or 2 with class-dependent heads).
        image_logits: ``[1, K]`` image-classifier logits of the image (maximum over its tiles: a class
            seen in any tile is in the image), or ``None`` (no classifier).
    """

    present: Tensor | None
    tiles: int
    passes: int
    image_logits: Tensor | None = None


class _TileRows:
    """``predict_row(y)`` for :func:`stitch`: the heads of ``settings`` on the tiles of row ``y``, yielded
    batch by batch (``settings.tile_batch`` tiles per forward pass), class-dependent ones with ``classes``."""

    def __init__(self, model: InferenceModel, tiles: TileSource, grid: TileGrid, settings: InferenceSettings,
                 classes: Tensor | None) -> None:
        self.model, self.tiles, self.grid, self.settings, self.classes = model, tiles, grid, settings, classes
        self.image_logits: Tensor | None = None  # [1, K] maximum over tiles

    def __call__(self, top: int) -> Iterator[tuple[int, dict[str, Tensor]]]:
        grid, wanted, step = self.grid, self.settings.heads or (), self.settings.tile_batch
        for start in range(0, len(grid.xs), step):
            xs = grid.xs[start:start + step]
            batch = [self.tiles.read(top, top + grid.tile_height, x, x + grid.tile_width) for x in xs]
            classes = self.classes.expand(len(batch), -1) if self.classes is not None else None
            output = infer_probabilities(self.model, batch, self.settings, classes=classes)
            if output.image_logits is not None:
                best = output.image_logits.amax(dim=0, keepdim=True)
                self.image_logits = best if self.image_logits is None else torch.maximum(self.image_logits, best)
            for index, x in enumerate(xs):
                yield x, {head: output.probabilities[head][index] for head in wanted}


@torch.no_grad()
def slide_infer(
    model: InferenceModel,
    tiles: TileSource,
    sinks: Mapping[str, Sequence[BandSink]],
    settings: InferenceSettings = InferenceSettings(),
    facts: ImageFacts = ImageFacts(),
) -> SlideResult:
    """Stream the blended probabilities of every head of ``sinks`` for one image (see the module docstring).

    Args:
        model: the model (a bare method is adapted), in eval mode; its heads in ``sinks`` must be runnable.
        tiles: the image (``tiles.height x tiles.width``), normalised per window.
        sinks: head -> band sinks receiving its final rows (labels, probability file, ...).
        settings: ``settings.slide``: tile size, stride and blending window (its ``mode`` is not looked
            at); the class source, the test-time views of each tile (as in
            :func:`~scribbleseg.engine.inference.probabilities.infer_probabilities`), autocast and
            ``tile_batch`` tiles per forward pass (``settings.heads`` is not read: the heads are those
            of ``sinks``).
        facts: the image's name (file class source) and ``[1, K]`` ground-truth classes (oracle).
    """
    model = as_inference_model(model)
    heads = list(sinks)
    device = model.device
    grid = tile_grid(tiles.height, tiles.width, settings.slide)
    window = blend_window(grid.tile_height, grid.tile_width, settings.slide.blend, device)
    num_classes = model.num_classes
    source = settings.class_source
    dependent = class_dependent(model, heads)
    needs_classes = bool(dependent) and not isinstance(source, NoClassSource)
    dependent_sinks = [sink for head in dependent for sink in sinks[head]]

    def rows(wanted: Sequence[str], classes: Tensor | None) -> _TileRows:
        return _TileRows(model, tiles, grid, replace(settings, heads=tuple(wanted)), classes)

    basic_sinks = list(sinks.get(BASIC_HEAD, ()))
    if dependent and not needs_classes:
        basic_sinks += dependent_sinks  # no class information: those heads are the basic prediction
    counts = evidence = None
    if needs_classes:
        counts = ClassCountSink(num_classes, device)
        evidence = EvidenceSink(num_classes, tiles.height, tiles.width,
                                evidence_factor(tiles.height, tiles.width), device)
        basic_sinks += [counts, evidence]
    basic_rows = rows([BASIC_HEAD], None)
    stitch(grid, window, num_classes, basic_rows, {BASIC_HEAD: basic_sinks})
    if counts is None or evidence is None:
        return SlideResult(None, len(grid), 1, basic_rows.image_logits)
    present = source.classes(Evidence(evidence.log_probabilities[None], basic_rows.image_logits,
                                      pixel_counts=counts.counts[None]),
                             (tiles.height, tiles.width), names=list(facts.names) if facts.names is not None else None,
                             given=facts.given)
    if present is None:
        stitch(grid, window, num_classes, rows([BASIC_HEAD], None), {BASIC_HEAD: dependent_sinks})
        return SlideResult(None, len(grid), 2, basic_rows.image_logits)
    present = present.to(device=device, dtype=torch.bool)
    stitch(grid, window, num_classes, rows(dependent, present), {head: sinks[head] for head in dependent})
    return SlideResult(present, len(grid), 2, basic_rows.image_logits)
