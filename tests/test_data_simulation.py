"""Scribble simulation from dense masks: strokes inside their region, drop / shrink ratios, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from scribbleseg.data.scribble_simulation import (
    drop_strokes,
    extract_strokes,
    shrink_strokes,
    simulate_scribbles,
)
from scribbleseg.errors import DataError


def _mask_with_many_regions() -> np.ndarray:
    """[120, 160] mask: background, 12 blobs of classes 1..3, an ignore band."""
    mask = np.zeros((120, 160), np.uint8)
    for index in range(12):
        y, x = 8 + (index // 4) * 36, 8 + (index % 4) * 38
        mask[y:y + 26, x:x + 28] = 1 + index % 3
    mask[:, 150:] = 255
    return mask


def test_scribbles_lie_inside_their_region_and_never_on_ignore():
    mask = _mask_with_many_regions()
    scribble = simulate_scribbles(mask, thickness=3)
    labelled = scribble != 255
    assert labelled.any()
    assert np.array_equal(scribble[labelled], mask[labelled])  # every stroke pixel has its region's class
    assert not labelled[mask == 255].any()
    assert set(np.unique(scribble[labelled])) == {0, 1, 2, 3}
    assert labelled.mean() < 0.25  # scribbles, not dense labels


def test_thickness_widens_strokes():
    mask = _mask_with_many_regions()
    thin = (simulate_scribbles(mask, thickness=1) != 255).sum()
    thick = (simulate_scribbles(mask, thickness=3) != 255).sum()
    assert 2.0 * thin < thick < 3.5 * thin
    with pytest.raises(DataError, match="thickness"):
        simulate_scribbles(mask, thickness=0)


def test_drop_ratio_is_exact_and_keeps_one_stroke_per_class():
    strokes = extract_strokes(_mask_with_many_regions())
    count = strokes.num_strokes
    assert count >= 13  # 12 blobs + background
    for ratio in (0.25, 0.5):
        keep = drop_strokes(strokes, ratio, np.random.default_rng(0))
        assert count - keep.sum() == round(ratio * count)
    keep_all_dropped = drop_strokes(strokes, 1.0, np.random.default_rng(0))
    kept_classes = strokes.stroke_class[keep_all_dropped]
    assert sorted(kept_classes.tolist()) == [0, 1, 2, 3]  # exactly one stroke per class remains


def test_shrink_keeps_the_stated_share_of_each_stroke_connected():
    mask = _mask_with_many_regions()
    strokes = extract_strokes(mask, thickness=1)
    lengths = strokes.lengths()
    for ratio in (0.0, 0.3, 0.7):
        keep = shrink_strokes(strokes, ratio)
        kept = np.bincount(strokes.stroke_of_pixel[keep], minlength=strokes.num_strokes)
        assert np.array_equal(kept, np.maximum(1, np.round((1 - ratio) * lengths)))
        scribble = simulate_scribbles(mask, thickness=1, shrink=ratio)
        assert (scribble != 255).sum() == kept.sum()
        # each shrunk stroke stays one connected piece
        _, pieces = ndimage.label(scribble != 255, structure=np.ones((3, 3)))
        assert pieces == strokes.num_strokes
    points = simulate_scribbles(mask, thickness=1, shrink=1.0)
    assert (points != 255).sum() == strokes.num_strokes  # a single point per stroke


def test_deterministic_by_seed():
    mask = _mask_with_many_regions()
    first = simulate_scribbles(mask, drop=0.5, shrink=0.4, seed=11)
    assert np.array_equal(first, simulate_scribbles(mask, drop=0.5, shrink=0.4, seed=11))
    assert not np.array_equal(first, simulate_scribbles(mask, drop=0.5, shrink=0.4, seed=12))


def test_thin_region_gets_a_point_and_ratios_are_checked():
    mask = np.zeros((40, 40), np.uint8)
    mask[10:12, 5:35] = 1  # 2 px thick: no skeleton survives the margin
    scribble = simulate_scribbles(mask)
    assert (scribble == 1).any()
    with pytest.raises(DataError, match="drop ratio"):
        simulate_scribbles(mask, drop=1.5)
    with pytest.raises(DataError, match="shrink ratio"):
        simulate_scribbles(mask, shrink=-0.1)
