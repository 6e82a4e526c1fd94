"""Blending tile probabilities into an image, one band of rows at a time (bounded memory).

A full ``[K, H, W]`` float32 canvas of an 8000 x 8000 image with ``K = 21`` is 5.4 GB. The tiles of one
row of the :class:`~scribbleseg.engine.inference.windows.TileGrid` all span the same rows ``[y, y + t)``, and
no later tile row reaches above its own start ``y'``; so after tile row ``y`` is added, rows ``[y, y')``
are final. :func:`stitch` keeps only a ``[K, t, W]`` band per head (plus one ``[t, W]`` weight band):

1. add each tile's ``window * probabilities`` and ``window`` into the band (tiles in row-major order);
2. hand the final rows ``[y, y')`` (``sum w p / sum w``: probabilities ``[K, b, W]`` and their arg-max
   ``[b, W]``) to the head's :class:`BandSink` s in chunks of at most ``emit_rows`` rows;
3. move the unfinished rows ``[y', y + t)`` to the top of the band and zero the rest.

Every pixel receives exactly the additions, in the same order, as a full-canvas accumulation would, so
the result is bit-identical to it (tests/test_engine_slide_inference.py checks this); only ``O(K t W)``
floats are held.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Protocol, Sequence

import torch
from torch import Tensor

from scribbleseg.engine.inference.windows import TileGrid

__all__ = ["BandSink", "RowPredictor", "stitch", "DEFAULT_EMIT_ROWS"]

DEFAULT_EMIT_ROWS = 64


class BandSink(Protocol):
    """Receives the final blended rows of one head, top to bottom, each row exactly once."""

    def write(self, top: int, probabilities: Tensor, labels: Tensor) -> None:
        """Rows ``[top, top + b)``: ``probabilities [K, b, W]`` float32 and ``labels [b, W]`` int64 (arg-max)."""


# (tile row start y) -> (x, head -> [K, tile_height, tile_width] probabilities) for every tile start x of the
# row, left to right; produced lazily, so only the tiles of one forward pass are alive at a time
RowPredictor = Callable[[int], Iterable[tuple[int, Mapping[str, Tensor]]]]


def _shift_up(band: Tensor, rows: int) -> None:
    """Move band rows ``[rows, t)`` to ``[0, t - rows)`` and zero the freed bottom rows (in place).

    Copied in chunks of ``rows`` rows, top first: a chunk's source lies below its destination and does
    not overlap it, so no temporary copy of the band is needed.
    """
    keep = band.shape[-2] - rows
    for start in range(0, max(keep, 0), rows):
        stop = min(start + rows, keep)
        band[..., start:stop, :] = band[..., start + rows:stop + rows, :]
    band[..., max(keep, 0):, :] = 0


@torch.no_grad()
def stitch(grid: TileGrid, window: Tensor, num_classes: int, predict_row: RowPredictor,
           sinks: Mapping[str, Sequence[BandSink]], emit_rows: int = DEFAULT_EMIT_ROWS) -> None:
    """Blend the tiles of ``grid`` for every head of ``sinks`` and stream the final rows to its sinks.

    Args:
        grid: the tiles (row starts ``grid.ys``, column starts ``grid.xs``).
        window: ``[tile_height, tile_width]`` float32 weights of a tile, on the device of the tile maps.
        num_classes: ``K``.
        predict_row: ``predict_row(y)`` yields ``(x, {head: probabilities})`` for the tiles ``(y, x)``,
            ``x`` in ``grid.xs`` order.
        sinks: head -> sinks receiving its rows (a head with no sink is not stitched).
        emit_rows: rows per :meth:`BandSink.write` call (bounds the temporary ``[K, b, W]`` maps).
    """
    tile_h, tile_w = grid.tile_height, grid.tile_width
    if tuple(window.shape) != (tile_h, tile_w):
        raise ValueError(f"window is {tuple(window.shape)}, the tiles are {(tile_h, tile_w)}")
    heads = [head for head, head_sinks in sinks.items() if head_sinks]
    if not heads:
        return
    bands = {head: window.new_zeros((num_classes, tile_h, grid.width)) for head in heads}
    weight = window.new_zeros((tile_h, grid.width))
    previous: int | None = None
    for index, top in enumerate(grid.ys):
        if previous is not None:
            for band in (*bands.values(), weight):
                _shift_up(band, top - previous)
        seen = []
        for x, tile in predict_row(top):
            for head in heads:
                bands[head][:, :, x:x + tile_w] += tile[head].float() * window
            weight[:, x:x + tile_w] += window
            seen.append(x)
        if tuple(seen) != grid.xs:
            raise ValueError(f"tile row {top}: got tiles at x = {seen}, expected {list(grid.xs)}")
        final = (grid.ys[index + 1] if index + 1 < len(grid.ys) else top + tile_h) - top
        for start in range(0, final, emit_rows):
            stop = min(start + emit_rows, final)
            for head in heads:
                probabilities = bands[head][:, start:stop] / weight[start:stop]
                labels = probabilities.argmax(dim=0)
                for sink in sinks[head]:
                    sink.write(top + start, probabilities, labels)
        previous = top
