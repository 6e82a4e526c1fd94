"""The shapes an annotation tool exports, in image coordinates, each able to rasterise itself.

All coordinates are continuous image coordinates ``(x, y)`` (see :mod:`scribbleseg.data.imports.scribble_drawing`):
pixel ``[j, i]`` covers ``[i, i + 1) x [j, j + 1)``. ``mask(height, width)`` returns the ``[H, W]``
bool pixels the shape covers inside the image (clipped at the border); ``outside(height, width)``
counts the vertices (or mask pixels) that lie outside it, for the report. Strokes (polylines, dots,
discs, brush masks) and filled areas (polygons) differ in how overlaps are resolved
(:func:`~scribbleseg.data.imports.scribble_drawing.paint_layers`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scribbleseg.data.imports.scribble_drawing import count_outside, disc_mask, pixel_indices, polygon_mask, stroke_mask


@dataclass(frozen=True)
class Polyline:
    """An open polyline through ``points`` ``[M, 2]`` (x, y), ``thickness`` pixels wide."""

    points: np.ndarray
    thickness: int
    is_stroke = True

    def mask(self, height: int, width: int) -> np.ndarray:
        return stroke_mask(pixel_indices(self.points, height, width), self.thickness, height, width)

    def outside(self, height: int, width: int) -> int:
        return count_outside(self.points, height, width)


@dataclass(frozen=True)
class Dots:
    """Separate points ``[M, 2]`` (x, y), each a ``thickness`` x ``thickness`` square."""

    points: np.ndarray
    thickness: int
    is_stroke = True

    def mask(self, height: int, width: int) -> np.ndarray:
        return stroke_mask(pixel_indices(self.points, height, width), self.thickness, height, width, connect=False)

    def outside(self, height: int, width: int) -> int:
        return count_outside(self.points, height, width)


@dataclass(frozen=True)
class Disc:
    """A keypoint: the pixels whose centre is closer than ``radius`` to ``center`` (x, y)."""

    center: tuple[float, float]
    radius: float
    is_stroke = True

    def mask(self, height: int, width: int) -> np.ndarray:
        return disc_mask(self.center, self.radius, height, width)

    def outside(self, height: int, width: int) -> int:
        return count_outside(np.asarray(self.center), height, width)


@dataclass(frozen=True)
class FilledPolygon:
    """A closed polygon ``[M, 2]`` (x, y), filled: the pixels whose centre lies inside."""

    points: np.ndarray
    is_stroke = False

    def mask(self, height: int, width: int) -> np.ndarray:
        return polygon_mask(self.points, height, width)

    def outside(self, height: int, width: int) -> int:
        return count_outside(self.points, height, width)


@dataclass(frozen=True)
class BitMask:
    """A brush mask ``[h, w]`` bool whose top-left pixel is image pixel ``(left, top)``."""

    pixels: np.ndarray
    left: int = 0
    top: int = 0
    is_stroke = True

    def _window(self, height: int, width: int) -> tuple[slice, slice, slice, slice]:
        """(rows, cols) of the image and (rows, cols) of ``pixels`` where the two overlap."""
        h, w = self.pixels.shape
        top, left = min(max(self.top, 0), height), min(max(self.left, 0), width)
        bottom, right = max(min(self.top + h, height), top), max(min(self.left + w, width), left)
        return (slice(top, bottom), slice(left, right),
                slice(top - self.top, bottom - self.top), slice(left - self.left, right - self.left))

    def mask(self, height: int, width: int) -> np.ndarray:
        image_rows, image_cols, rows, cols = self._window(height, width)
        mask = np.zeros((height, width), dtype=bool)
        mask[image_rows, image_cols] = self.pixels[rows, cols]
        return mask

    def outside(self, height: int, width: int) -> int:
        _, _, rows, cols = self._window(height, width)
        return int(self.pixels.sum()) - int(self.pixels[rows, cols].sum())


Geometry = Polyline | Dots | Disc | FilledPolygon | BitMask


@dataclass(frozen=True)
class LabelledShape:
    """One exported shape: the label the annotator chose, its geometry and a name for messages."""

    label: str
    geometry: Geometry
    name: str
