"""Palette PNG, overlay and probability-map writers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from scribbleseg.engine.prediction.palette_io import (
    blend_overlay,
    colorize,
    denormalize_image,
    save_label_png,
    save_probabilities,
)
from scribbleseg.errors import DataError

PALETTE = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]


def test_label_png_is_palette_mode_with_ids_as_indices(tmp_path) -> None:
    label = torch.randint(0, 4, (21, 34))
    path = save_label_png(label, PALETTE, tmp_path / "x.png")
    with Image.open(path) as picture:
        assert picture.mode == "P"
        np.testing.assert_array_equal(np.array(picture), label.numpy())
        assert picture.getpalette()[:12] == [c for rgb in PALETTE for c in rgb]
        np.testing.assert_array_equal(np.array(picture.convert("RGB")), colorize(label, PALETTE))
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_overlay_blends_and_skips_unlabeled() -> None:
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    label = np.array([[1, 0], [255, 2]])
    out = blend_overlay(image, label, PALETTE, alpha=0.5, skip_index=255)
    assert tuple(out[0, 0]) == (114, 50, 50)
    assert tuple(out[0, 1]) == (50, 50, 50)
    assert tuple(out[1, 0]) == (100, 100, 100)


def test_probability_map_is_float16_npy(tmp_path) -> None:
    probabilities = torch.softmax(torch.randn(4, 9, 11), dim=0)
    path = save_probabilities(probabilities, tmp_path / "p.npy")
    loaded = np.load(path)
    assert loaded.dtype == np.float16 and loaded.shape == (4, 9, 11)
    np.testing.assert_allclose(loaded.astype(np.float32), probabilities.numpy(), atol=1e-3)


def test_bad_palette_is_a_data_error() -> None:
    with pytest.raises(DataError):
        colorize(np.zeros((2, 2), dtype=np.int64), [(0, 0)])
    with pytest.raises(DataError):
        colorize(np.zeros((2, 2), dtype=np.int64), [(0, 0, 0)] * 257)


def test_denormalize_inverts_imagenet_normalisation() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    normalised = (torch.from_numpy(rgb).permute(2, 0, 1).float() / 255 - mean) / std
    np.testing.assert_array_equal(denormalize_image(normalised), rgb)
