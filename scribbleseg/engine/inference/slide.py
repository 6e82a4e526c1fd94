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

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch
from torch import Tensor

from scribbleseg.engine.inference.band_sinks import ClassCountSink, EvidenceSink, evidence_factor
from scribbleseg.engine.inference.band_stitching import BandSink, stitch
from scribbleseg.engine.inference.probabilities import class_dependent, infer_probabilities, method_device
from scribbleseg.engine.inference.windows import SlideSettings, TileGrid, blend_window, tile_grid
from scribbleseg.engine.inference.tile_sources import TileSource
from scribbleseg.methods import BASIC_HEAD, ClassSource, Evidence, NoClassSource, SegmentationMethod

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
    """``predict_row(y)`` for :func:`stitch`: the heads of ``wanted`` on the tiles of row ``y``, yielded
    batch by batch (``tile_batch`` tiles per forward pass)."""

    def __init__(self, method: SegmentationMethod, tiles: TileSource, grid: TileGrid, wanted: Sequence[str],
                 classes: Tensor | None, scales: Sequence[float], flip: bool, amp: bool, tile_batch: int) -> None:
        self.method, self.tiles, self.grid, self.wanted = method, tiles, grid, list(wanted)
        self.classes, self.scales, self.flip, self.amp, self.tile_batch = classes, scales, flip, amp, tile_batch
        self.image_logits: Tensor | None = None  # [1, K] maximum over tiles

    def __call__(self, top: int) -> Iterator[tuple[int, dict[str, Tensor]]]:
        grid = self.grid
        for start in range(0, len(grid.xs), self.tile_batch):
            xs = grid.xs[start:start + self.tile_batch]
            batch = [self.tiles.read(top, top + grid.tile_height, x, x + grid.tile_width) for x in xs]
            classes = self.classes.expand(len(batch), -1) if self.classes is not None else None
            output = infer_probabilities(self.method, batch, heads=self.wanted, scales=self.scales,
                                         flip=self.flip, amp=self.amp, classes=classes)
            if output.image_logits is not None:
                best = output.image_logits.amax(dim=0, keepdim=True)
                self.image_logits = best if self.image_logits is None else torch.maximum(self.image_logits, best)
            for index, x in enumerate(xs):
                yield x, {head: output.probabilities[head][index] for head in self.wanted}


@torch.no_grad()
def slide_infer(
    method: SegmentationMethod,
    tiles: TileSource,
    sinks: Mapping[str, Sequence[BandSink]],
    *,
    settings: SlideSettings,
    class_source: ClassSource | None = None,
    name: str | None = None,
    given: Tensor | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    amp: bool = False,
    tile_batch: int = 1,
) -> SlideResult:
    """Stream the blended probabilities of every head of ``sinks`` for one image (see the module docstring).

    Args:
        method: the model, in eval mode; its heads in ``sinks`` must be runnable.
        tiles: the image (``tiles.height x tiles.width``), normalised per window.
        sinks: head -> band sinks receiving its final rows (labels, probability file, ...).
        settings: tile size, stride and blending window (``settings.mode`` is not looked at).
        class_source: class source of the class-dependent heads (default: none).
        name: the image's name (file class source).
        given: ``[1, K]`` bool ground-truth classes (oracle class source).
        scales / flip / amp: test-time views of each tile, as in
            :func:`~scribbleseg.engine.inference.probabilities.infer_probabilities`.
        tile_batch: tiles per forward pass.
    """
    heads = list(sinks)
    device = method_device(method)
    grid = tile_grid(tiles.height, tiles.width, settings)
    window = blend_window(grid.tile_height, grid.tile_width, settings.blend, device)
    num_classes = method.num_classes
    source = class_source if class_source is not None else NoClassSource()
    dependent = class_dependent(method, heads)
    needs_classes = bool(dependent) and not isinstance(source, NoClassSource)
    dependent_sinks = [sink for head in dependent for sink in sinks[head]]

    def rows(wanted: Sequence[str], classes: Tensor | None) -> _TileRows:
        return _TileRows(method, tiles, grid, wanted, classes, scales, flip, amp, tile_batch)

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
                             (tiles.height, tiles.width), names=[name] if name is not None else None,
                             given=given)
    if present is None:
        stitch(grid, window, num_classes, rows([BASIC_HEAD], None), {BASIC_HEAD: dependent_sinks})
        return SlideResult(None, len(grid), 2, basic_rows.image_logits)
    present = present.to(device=device, dtype=torch.bool)
    stitch(grid, window, num_classes, rows(dependent, present), {head: sinks[head] for head in dependent})
    return SlideResult(present, len(grid), 2, basic_rows.image_logits)
