"""ScribbleDataset / EvalDataset / InferenceImages: shapes, dtypes, classes, loader with workers, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch.utils.data import DataLoader

from scribbleseg.data import (
    EvalDataset,
    InferenceImages,
    ScribbleDataset,
    build_train_transform,
    make_synthetic_dataset,
    open_dataset,
)
from scribbleseg.errors import DataError


def _folder_set(root: Path, with_masks: bool = True, scribble_shape=(40, 60)) -> Path:
    (root / "dataset.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"class_names": ["bg", "a", "b"]}))
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    scribble = np.full(scribble_shape, 255, np.uint8)
    scribble[2:5, 2:20] = 0
    scribble[35:38, 50:58] = 2  # class 2 only in the bottom-right corner
    mask = np.zeros((40, 60), np.uint8)
    mask[20:, 30:] = 2
    mask[0:10, 40:50] = 1
    for kind, array, ext in (("images", image, ".png"), ("scribbles", scribble, ".png"), ("masks", mask, ".png")):
        if kind == "masks" and not with_masks:
            continue
        (root / kind / "train").mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / kind / "train" / f"x{ext}")
    return root


def test_scribble_dataset_item_types_and_classes_of_the_crop(tmp_path):
    info, samples = open_dataset(_folder_set(tmp_path / "ds"))
    plain = ScribbleDataset(samples, info)
    item = plain[0]
    image, scribble, classes, image_classes = (item[k] for k in ("image", "scribble", "crop_classes",
                                                                 "image_classes"))
    assert item["valid"].shape == (40, 60) and bool(item["valid"].all())
    assert image.shape == (3, 40, 60) and image.dtype == torch.float32
    assert scribble.shape == (40, 60) and scribble.dtype == torch.int64
    assert classes.dtype == torch.bool and classes.tolist() == [True, False, True]
    assert image_classes.tolist() == [True, False, True]
    cropping = ScribbleDataset(samples, info, transform=build_train_transform(
        crop_size=20, scale=(1.0, 1.0), rotate=0, hflip=False, blur=False, seed=0))
    seen = set()
    for _ in range(25):
        item = cropping[0]
        crop_scribble, crop_classes, whole_image_classes = item["scribble"], item["crop_classes"], item["image_classes"]
        assert crop_scribble.shape == (20, 20)
        expected = [(crop_scribble == c).any().item() for c in range(3)]
        assert crop_classes.tolist() == expected  # classes of the TRANSFORMED scribble
        assert whole_image_classes.tolist() == [True, False, True]  # ... and of the whole image
        seen.add(tuple(expected))
    assert any(not classes_in_crop[2] for classes_in_crop in seen)  # some crop cut class 2 away


def test_eval_dataset_with_dense_gt(tmp_path):
    info, samples = open_dataset(_folder_set(tmp_path / "ds"))
    item = EvalDataset(samples, info)[0]
    assert item["image"].shape == (3, 40, 60) and item["mask"].dtype == torch.int64
    assert item["has_dense_gt"] is True and item["name"] == "x"
    assert item["size"].tolist() == [40, 60]
    assert item["classes"].tolist() == [True, True, True]  # from the GT, not the scribble
    assert int(item["mask"][25, 40]) == 2


def test_eval_dataset_without_dense_gt(tmp_path):
    info, samples = open_dataset(_folder_set(tmp_path / "ds", with_masks=False))
    with pytest.raises(DataError, match="no dense ground truth.*'x'"):
        EvalDataset(samples, info)
    item = EvalDataset(samples, info, require_dense_gt=False)[0]
    assert item["has_dense_gt"] is False
    assert item["classes"].tolist() == [True, False, True]  # from the scribble
    assert int(item["mask"][0, 0]) == 255 and int(item["mask"][3, 5]) == 0


def test_size_mismatch_names_the_scribble(tmp_path):
    info, samples = open_dataset(_folder_set(tmp_path / "ds", scribble_shape=(40, 61)))
    with pytest.raises(DataError, match=r"scribbles/train/x\.png is 61x40.*image.*60x40"):
        ScribbleDataset(samples, info)[0]


def test_inference_images_from_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((9, 7), np.uint8)).save(folder / "gray.png")
    Image.fromarray(np.zeros((5, 4, 4), np.uint8)).save(folder / "alpha.png")
    images = InferenceImages(folder)
    items = [images[i] for i in range(len(images))]
    assert [i["name"] for i in items] == ["alpha", "gray"]
    assert items[1]["image"].shape == (3, 9, 7) and items[1]["size"].tolist() == [9, 7]
    with pytest.raises(DataError, match="missing.jpg"):
        InferenceImages([folder / "missing.jpg"])


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("syn"), seed=0, num_train=8, num_val=2, size=64)


def test_valid_marks_the_padding_of_a_crop_larger_than_the_image(tmp_path):
    info, samples = open_dataset(_folder_set(tmp_path / "ds"))
    padded = ScribbleDataset(samples, info, transform=build_train_transform(
        crop_size=80, scale=(1.0, 1.0), rotate=0, hflip=False, blur=False, seed=0))
    item = padded[0]
    assert item["valid"].dtype == torch.bool and item["valid"].shape == (80, 80)
    assert int(item["valid"].sum()) == 40 * 60  # the image is centred in the 80 x 80 crop
    assert bool((item["scribble"][~item["valid"]] == 255).all())


def test_loader_with_two_workers_over_synthetic_set(synthetic_root):
    info, samples = open_dataset(synthetic_root, split="train")
    dataset = ScribbleDataset(samples, info, transform=build_train_transform(crop_size=48))
    loader = DataLoader(dataset, batch_size=4, num_workers=2, shuffle=True)
    batches = list(loader)
    assert len(batches) == 2
    images, scribbles, classes, image_classes = (batches[0][k] for k in ("image", "scribble", "crop_classes",
                                                                         "image_classes"))
    assert image_classes.shape == classes.shape and bool((image_classes | ~classes).all())
    assert images.shape == (4, 3, 48, 48) and images.dtype == torch.float32
    assert scribbles.shape == (4, 48, 48) and scribbles.dtype == torch.int64
    assert classes.shape == (4, info.num_classes) and classes.dtype == torch.bool
    valid = scribbles[scribbles != 255]
    assert valid.numel() > 0 and int(valid.max()) < info.num_classes


def test_workers_do_not_repeat_each_others_augmentations(synthetic_root):
    info, samples = open_dataset(synthetic_root, split="train")
    dataset = ScribbleDataset([samples[0]] * 4, info, transform=build_train_transform(crop_size=32))
    crops = [batch["image"] for batch in DataLoader(dataset, batch_size=1, num_workers=2)]
    # batches 0 and 1 come from different workers, which forked with the same albumentations state
    assert not torch.equal(crops[0], crops[1])


def test_image_level_labels_from_scribbles_or_masks(tmp_path):
    from scribbleseg.data import image_level_labels

    info, samples = open_dataset(_folder_set(tmp_path / "ds"))
    assert image_level_labels(samples, info, source="scribble").tolist() == [[True, False, True]]
    assert image_level_labels(samples, info, source="mask").tolist() == [[True, True, True]]
    assert image_level_labels(samples, info).tolist() == [[True, True, True]]  # auto: mask when present
