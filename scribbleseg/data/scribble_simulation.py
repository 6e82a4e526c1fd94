"""Simulated scribbles from dense masks, with the robustness variants of PFA's appendix B.1 (Fig. 8).

Strokes: each labelled region (ignore pixels excluded) is shrunk away from every label boundary and
from the image border so that a ``thickness``-wide stroke stays inside it, then skeletonised
(``skimage.morphology.skeletonize``); each 8-connected piece of skeleton is one stroke, with the
class of its region. Regions of at least ``min_region_area`` pixels too thin to keep a skeleton get a
one-point stroke at their most interior pixel. Strokes are drawn ``thickness`` pixels wide (a square
of side ``thickness``); every other pixel is ``ignore_index`` (255 = unlabeled).

Variants (deterministic given the seed):

* **scribble-drop** (``drop`` = r): ``round(r * S)`` of an image's ``S`` strokes are removed at random,
  but one randomly chosen stroke of every class present is protected, so every class of the image
  keeps at least one stroke (at r = 1 exactly one stroke per class remains).
* **scribble-shrink** (``shrink`` = r): each stroke of ``n`` skeleton pixels is cut to the
  ``max(1, round((1 - r) * n))`` pixels nearest (geodesically, along the stroke) to its most interior
  pixel; the kept part is connected, and at r = 1 the stroke is a single point.
* **class removal** (:func:`simulate_scribble_folder` with ``remove_class`` = c, ``remove_fraction`` = f):
  every stroke of class c is removed from a deterministic share f of the files, so the class becomes rare
  (f < 1) or is never scribbled (f = 1) while its pixels stay in the dense masks (a rare-class data set).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from skimage.measure import label as label_regions
from skimage.morphology import skeletonize

from scribbleseg.data.image_io import list_label_pngs, read_label_array, write_png_atomic
from scribbleseg.data.voc_classes import full_palette_bytes, voc_color
from scribbleseg.errors import DataError


@dataclass
class Strokes:
    """Skeleton strokes of one mask.

    Attributes:
        shape: ``(H, W)`` of the mask.
        pixels: ``[P, 2]`` int64 ``(y, x)`` of every stroke pixel.
        stroke_of_pixel: ``[P]`` int64 stroke index of each pixel.
        stroke_class: ``[S]`` int64 class id of each stroke.
        geodesic: ``[P]`` float64 distance along the stroke from the stroke's centre pixel.
    """

    shape: tuple[int, int]
    pixels: np.ndarray
    stroke_of_pixel: np.ndarray
    stroke_class: np.ndarray
    geodesic: np.ndarray

    @property
    def num_strokes(self) -> int:
        return int(self.stroke_class.shape[0])

    def lengths(self) -> np.ndarray:
        """``[S]`` number of skeleton pixels per stroke."""
        return np.bincount(self.stroke_of_pixel, minlength=self.num_strokes)


def _boundary_distance(mask: np.ndarray) -> np.ndarray:
    """``[H, W]`` Euclidean distance to the nearest label boundary or image border pixel."""
    values = mask.astype(np.int32)
    boundary = ndimage.maximum_filter(values, size=3, mode="nearest") != ndimage.minimum_filter(values, size=3, mode="nearest")
    boundary[0, :] = boundary[-1, :] = boundary[:, 0] = boundary[:, -1] = True
    return ndimage.distance_transform_edt(~boundary)


def _geodesic_from_centres(pixels: np.ndarray, stroke_of_pixel: np.ndarray, depth: np.ndarray,
                           shape: tuple[int, int]) -> np.ndarray:
    """``[P]`` distance along each stroke (8-neighbour graph) from its deepest pixel."""
    count = pixels.shape[0]
    index_map = np.full(shape, -1, dtype=np.int64)
    index_map[pixels[:, 0], pixels[:, 1]] = np.arange(count)
    rows, cols, weights = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        y2, x2 = pixels[:, 0] + dy, pixels[:, 1] + dx
        inside = (y2 < shape[0]) & (x2 >= 0) & (x2 < shape[1])
        neighbour = np.full(count, -1, dtype=np.int64)
        neighbour[inside] = index_map[y2[inside], x2[inside]]
        linked = neighbour >= 0
        rows.append(np.flatnonzero(linked))
        cols.append(neighbour[linked])
        weights.append(np.full(int(linked.sum()), np.hypot(dy, dx)))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(count, count)).tocsr()
    order = np.lexsort((-depth, stroke_of_pixel))  # per stroke, deepest first
    first = np.ones(count, dtype=bool)
    first[1:] = stroke_of_pixel[order][1:] != stroke_of_pixel[order][:-1]
    return dijkstra(graph, directed=False, indices=order[first], min_only=True)


def extract_strokes(mask: np.ndarray, ignore_index: int = 255, thickness: int = 3,
                    min_region_area: int = 16) -> Strokes:
    """Skeleton strokes of every labelled region of ``mask`` ``[H, W]`` (see module docstring)."""
    if mask.ndim != 2:
        raise DataError(f"expected a [H, W] label mask, got shape {mask.shape}")
    shape = (int(mask.shape[0]), int(mask.shape[1]))
    depth = _boundary_distance(mask)
    labelled = mask != ignore_index
    interior = labelled & (depth > thickness // 2 + 0.5)
    skeleton = skeletonize(interior) if interior.any() else interior
    regions = label_regions(np.where(labelled, mask.astype(np.int64), -1), background=-1, connectivity=1)
    region_ids, areas = np.unique(regions[regions > 0], return_counts=True)
    covered = np.zeros(int(regions.max()) + 1, dtype=bool)
    covered[regions[skeleton]] = True
    uncovered = region_ids[(~covered[region_ids]) & (areas >= min_region_area)]
    if uncovered.size:
        inner = ndimage.distance_transform_edt(labelled & (ndimage.maximum_filter(regions, 3) == ndimage.minimum_filter(regions, 3)))
        positions = ndimage.maximum_position(inner, regions, index=uncovered)
        points = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
        skeleton = skeleton.copy()
        skeleton[points[:, 0], points[:, 1]] = True
    components, num_strokes = ndimage.label(skeleton, structure=np.ones((3, 3), dtype=bool))
    ys, xs = np.nonzero(components)
    pixels = np.stack([ys, xs], axis=1).astype(np.int64)
    stroke_of_pixel = components[ys, xs].astype(np.int64) - 1
    stroke_class = np.zeros(num_strokes, dtype=np.int64)
    stroke_class[stroke_of_pixel] = mask[ys, xs]
    geodesic = (_geodesic_from_centres(pixels, stroke_of_pixel, depth[ys, xs], shape)
                if num_strokes else np.zeros(0))
    return Strokes(shape, pixels, stroke_of_pixel, stroke_class, geodesic)


def drop_strokes(strokes: Strokes, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """``[S]`` bool strokes kept after dropping ``round(ratio * S)``; one stroke per class is protected."""
    if not 0.0 <= ratio <= 1.0:
        raise DataError(f"drop ratio must be in [0, 1], got {ratio}")
    count = strokes.num_strokes
    keep = np.ones(count, dtype=bool)
    if ratio == 0.0 or count == 0:
        return keep
    order = rng.permutation(count)
    _, first_of_class = np.unique(strokes.stroke_class[order], return_index=True)
    protected = np.zeros(count, dtype=bool)
    protected[order[first_of_class]] = True
    candidates = order[~protected[order]]
    num_drop = min(int(round(ratio * count)), candidates.shape[0])
    keep[candidates[:num_drop]] = False
    return keep


def shrink_strokes(strokes: Strokes, ratio: float) -> np.ndarray:
    """``[P]`` bool stroke pixels kept when each stroke keeps ``max(1, round((1 - ratio) * n))`` pixels."""
    if not 0.0 <= ratio <= 1.0:
        raise DataError(f"shrink ratio must be in [0, 1], got {ratio}")
    lengths = strokes.lengths()
    keep_count = np.maximum(1, np.round((1.0 - ratio) * lengths)).astype(np.int64)
    order = np.lexsort((strokes.geodesic, strokes.stroke_of_pixel))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0]) - starts[strokes.stroke_of_pixel[order]]
    return rank < keep_count[strokes.stroke_of_pixel]


def render_strokes(strokes: Strokes, mask: np.ndarray, keep_pixel: np.ndarray, thickness: int = 3,
                   ignore_index: int = 255) -> np.ndarray:
    """``[H, W]`` uint8 scribble: kept pixels dilated to ``thickness``, clipped to their class's region."""
    ids = np.zeros(strokes.shape, dtype=np.int32)
    kept = strokes.pixels[keep_pixel]
    ids[kept[:, 0], kept[:, 1]] = mask[kept[:, 0], kept[:, 1]].astype(np.int32) + 1
    if thickness > 1:
        ids = ndimage.maximum_filter(ids, size=thickness, mode="constant", cval=0)
    scribble = np.full(strokes.shape, ignore_index, dtype=np.uint8)
    valid = (ids > 0) & (ids - 1 == mask)
    scribble[valid] = (ids[valid] - 1).astype(np.uint8)
    return scribble


def simulate_scribbles(mask: np.ndarray, ignore_index: int = 255, thickness: int = 3, drop: float = 0.0,
                       shrink: float = 0.0, seed: int = 0, min_region_area: int = 16) -> np.ndarray:
    """Scribble ``[H, W]`` uint8 simulated from the dense ``mask`` ``[H, W]`` (module docstring has the rules)."""
    if thickness < 1:
        raise DataError(f"scribble thickness must be >= 1, got {thickness}")
    strokes = extract_strokes(mask, ignore_index, thickness, min_region_area)
    keep_stroke = drop_strokes(strokes, drop, np.random.default_rng(seed))
    keep_pixel = shrink_strokes(strokes, shrink) & keep_stroke[strokes.stroke_of_pixel]
    return render_strokes(strokes, mask, keep_pixel, thickness, ignore_index)


def seed_for_name(seed: int, name: str) -> int:
    """A per-file seed that depends only on the global seed and the file's stem (order-independent)."""
    return (seed * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (2**32)


def label_palette() -> list[int]:
    """Flat 768-value palette (VOC colours for every id, VOC's boundary colour for 255)."""
    return full_palette_bytes(tuple(voc_color(i) for i in range(255)), ignore_index=255)


def removes_class(seed: int, name: str, fraction: float) -> bool:
    """Whether the file ``name`` is one of the ``fraction`` whose strokes of the removed class go."""
    return bool(np.random.default_rng([seed_for_name(seed, name), 1]).random() < fraction)


def simulate_scribble_folder(mask_dir: str | Path, out_dir: str | Path, thickness: int = 3, drop: float = 0.0,
                             shrink: float = 0.0, seed: int = 0, ignore_index: int = 255,
                             remove_class: int | None = None, remove_fraction: float = 1.0) -> int:
    """Simulate a scribble PNG (same stem) for every mask PNG in ``mask_dir``; returns the count.

    ``remove_class``: the class whose strokes are removed from the share ``remove_fraction`` of the files
    (see the module docstring).
    """
    if remove_class is not None and not (0 <= remove_class < 255 and remove_class != ignore_index):
        raise DataError(f"the class to remove must be a class id in [0, 255), got {remove_class}")
    if not 0.0 <= remove_fraction <= 1.0:
        raise DataError(f"the removal fraction must lie in [0, 1], got {remove_fraction}")
    mask_dir, out_dir = Path(mask_dir), Path(out_dir)
    paths = list_label_pngs(mask_dir, "mask")
    palette = label_palette()
    for path in paths:
        mask = read_label_array(path, "dense mask")
        if mask.max(initial=0) > 255:
            raise DataError(f"dense mask {path} has values above 255")
        scribble = simulate_scribbles(mask.astype(np.uint8), ignore_index, thickness, drop, shrink,
                                      seed_for_name(seed, path.stem))
        if remove_class is not None and removes_class(seed, path.stem, remove_fraction):
            scribble[scribble == remove_class] = ignore_index
        write_png_atomic(out_dir / f"{path.stem}.png", scribble, palette=palette)
    return len(paths)
