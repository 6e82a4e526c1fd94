"""Rasterise scribble shapes into ``[H, W]`` bool masks and paint them into one scribble.

Coordinates are ``(x, y)`` = (column, row). Two conventions meet here:

* integer **pixel indices** (ScribbleSup): a stroke vertex ``(x, y)`` is pixel ``[y, x]``;
* continuous **image coordinates** (CVAT, Label Studio): pixel ``[j, i]`` covers
  ``[i, i + 1) x [j, j + 1)``; a vertex lies in pixel ``(floor x, floor y)``
  (:func:`pixel_indices`), a polygon or disc covers the pixels whose *centre* ``(i + 0.5, j + 0.5)``
  is inside it.

Strokes are a 1-pixel polyline dilated by a ``thickness`` x ``thickness`` square, so they are
exactly ``thickness`` pixels wide (cv2's own thick lines are wider than asked for). Drawing clips at
the image border: the part of a shape inside the image is kept.

:func:`paint_layers` composes shapes in order: later over earlier, except that a pixel covered by
*strokes* of two different classes becomes ``ignore_index`` (ambiguous), unless a later filled
area covers it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.draw import polygon as polygon_indices

_COORDINATE_LIMIT = float(1 << 30)  # keeps absurd coordinates inside int32 for cv2 (clipping is done there)


def stroke_mask(points: np.ndarray, thickness: int, height: int, width: int, connect: bool = True) -> np.ndarray:
    """``[H, W]`` bool: the polyline through ``points`` ``[M, 2]`` int (x, y) ``thickness`` px wide.

    With ``connect=False`` the points are separate dots (``thickness`` x ``thickness`` squares).
    """
    line = np.zeros((height, width), dtype=np.uint8)
    points = np.asarray(points, dtype=np.int32).reshape(-1, 2)
    if connect and points.shape[0] > 1:
        cv2.polylines(line, [points.reshape(-1, 1, 2)], isClosed=False, color=1, thickness=1)
    else:  # a single vertex draws nothing in cv2: set the in-image points directly
        inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
        line[points[inside, 1], points[inside, 0]] = 1
    return cv2.dilate(line, np.ones((thickness, thickness), dtype=np.uint8)) > 0


def pixel_indices(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[M, 2]`` float image coordinates (x, y) -> int32 pixel indices: floor, border points kept.

    A point exactly on the right / bottom border (``x == W`` or ``y == H``) belongs to the last pixel.
    """
    points = np.clip(np.asarray(points, dtype=np.float64).reshape(-1, 2), -_COORDINATE_LIMIT, _COORDINATE_LIMIT)
    index = np.floor(points)
    index[:, 0][points[:, 0] == width] = width - 1
    index[:, 1][points[:, 1] == height] = height - 1
    return index.astype(np.int32)


def count_outside(points: np.ndarray, height: int, width: int) -> int:
    """Number of ``[M, 2]`` (x, y) image coordinates outside ``[0, W] x [0, H]``."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return int(((points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0) | (points[:, 1] > height)).sum())


def polygon_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[H, W]`` bool: pixels whose centre lies inside the polygon ``points`` ``[M, 2]`` (x, y)."""
    points = np.clip(np.asarray(points, dtype=np.float64).reshape(-1, 2), -_COORDINATE_LIMIT, _COORDINATE_LIMIT)
    mask = np.zeros((height, width), dtype=bool)
    if points.shape[0] >= 3:
        # skimage tests integer positions; shifting by half a pixel tests the pixel centres
        rows, cols = polygon_indices(points[:, 1] - 0.5, points[:, 0] - 0.5, shape=(height, width))
        mask[rows, cols] = True
    return mask


def disc_mask(center: tuple[float, float], radius: float, height: int, width: int) -> np.ndarray:
    """``[H, W]`` bool: pixels whose centre is closer than ``radius`` to ``center`` (x, y)."""
    cx, cy = float(center[0]), float(center[1])
    mask = np.zeros((height, width), dtype=bool)
    left, right = max(int(np.floor(cx - radius)), 0), min(int(np.ceil(cx + radius)) + 1, width)
    top, bottom = max(int(np.floor(cy - radius)), 0), min(int(np.ceil(cy + radius)) + 1, height)
    if left < right and top < bottom:
        cols = np.arange(left, right) + 0.5 - cx
        rows = np.arange(top, bottom) + 0.5 - cy
        mask[top:bottom, left:right] = rows[:, None] ** 2 + cols[None, :] ** 2 < radius ** 2
    return mask


@dataclass
class Layer:
    """One shape to paint: its class id, ``[H, W]`` bool mask and whether it is a stroke or a filled area."""

    class_id: int
    mask: np.ndarray
    is_stroke: bool


def paint_layers(layers: Iterable[Layer], height: int, width: int, ignore_index: int = 255) -> tuple[np.ndarray, int]:
    """Paint ``layers`` in order -> (``[H, W]`` uint8 scribble, number of ambiguous pixels set to ignore).

    Later layers draw over earlier ones. A pixel covered by strokes of two different classes is
    ambiguous and becomes ``ignore_index``; a later *area* (filled polygon) covering it wins again.
    """
    canvas = np.full((height, width), ignore_index, dtype=np.uint8)
    stroke_class = np.full((height, width), -1, dtype=np.int16)  # class of the strokes on a pixel, -1 = none
    ambiguous = np.zeros((height, width), dtype=bool)
    for layer in layers:
        if layer.is_stroke:
            ambiguous |= layer.mask & (stroke_class >= 0) & (stroke_class != layer.class_id)
            stroke_class[layer.mask] = layer.class_id
        else:
            ambiguous &= ~layer.mask
            stroke_class[layer.mask] = -1
        canvas[layer.mask] = layer.class_id
    canvas[ambiguous] = ignore_index
    return canvas, int(ambiguous.sum())
