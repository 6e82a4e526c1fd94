"""albumentations transforms: image and label stay aligned, labels use nearest, padding gets 255."""

from __future__ import annotations

import numpy as np

from scribbleseg.data import IMAGENET_MEAN, IMAGENET_STD, build_eval_transform, build_train_transform

COLOURS = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.float64)


def _colour_coded_pair(rng: np.random.Generator, h: int = 60, w: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Label of large random rectangles (ids 0..4) and an image whose colour is the label's colour."""
    label = np.zeros((h, w), np.uint8)
    for class_id in range(1, 5):
        y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
        label[y:y + rng.integers(12, 20), x:x + rng.integers(12, 20)] = class_id
    return COLOURS[label].astype(np.uint8), label


def _denormalise(image: np.ndarray) -> np.ndarray:
    return (image * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)) * 255.0


def test_image_and_label_stay_aligned_under_random_transforms():
    rng = np.random.default_rng(0)
    transform = build_train_transform(crop_size=48, seed=3)
    agreements, shuffled_agreements = [], []
    for _ in range(30):
        image, label = _colour_coded_pair(rng)
        out = transform(image=image, mask=label)
        assert out["image"].shape == (48, 48, 3) and out["image"].dtype == np.float32
        assert out["mask"].shape == (48, 48)
        pixels = _denormalise(out["image"]).reshape(-1, 3)
        nearest = np.argmin(((pixels[:, None, :] - COLOURS[None]) ** 2).sum(-1), axis=1).reshape(48, 48)
        labelled = out["mask"] != 255
        agreements.append((nearest[labelled] == out["mask"][labelled]).mean())
        shuffled_agreements.append((np.fliplr(nearest)[labelled] == out["mask"][labelled]).mean())
    assert np.mean(agreements) > 0.97, np.mean(agreements)  # only blurred / resampled edges differ
    assert np.mean(shuffled_agreements) < 0.9  # the check would catch a misaligned label


def test_labels_keep_their_ids_and_outside_areas_get_ignore():
    rng = np.random.default_rng(1)
    transform = build_train_transform(crop_size=96, scale=(0.5, 0.6), seed=0)  # shrink: forces padding
    image, label = _colour_coded_pair(rng)
    out = transform(image=image, mask=label)
    assert set(np.unique(out["mask"])) <= set(np.unique(label)) | {255}
    padded = out["mask"] == 255
    assert padded.mean() > 0.3
    # padding and rotation corners are the mean colour, i.e. ~0 after normalisation
    assert np.median(np.abs(out["image"][padded])) < 0.05


def test_eval_transform_only_normalises_full_image():
    image = np.full((37, 53, 3), 128, np.uint8)
    label = np.arange(37 * 53).reshape(37, 53).astype(np.uint8)
    out = build_eval_transform()(image=image, mask=label)
    assert out["image"].shape == (37, 53, 3)
    np.testing.assert_allclose(out["image"][0, 0], (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD),
                               rtol=1e-5)
    assert np.array_equal(out["mask"], label)


def test_train_transform_seed_reproducible():
    rng = np.random.default_rng(2)
    image, label = _colour_coded_pair(rng)
    first = build_train_transform(crop_size=32, seed=7)(image=image, mask=label)
    second = build_train_transform(crop_size=32, seed=7)(image=image, mask=label)
    assert np.array_equal(first["image"], second["image"]) and np.array_equal(first["mask"], second["mask"])
