"""Folder and VOC layouts: listing, dataset.yaml validation, missing files named in errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from scribbleseg.data import VOC_CLASS_NAMES, detect_layout, open_dataset
from scribbleseg.errors import DataError


def _write_folder_set(root: Path, stems=("a", "b"), split="train", masks=True, yaml_extra=None) -> Path:
    spec = {"class_names": ["background", "cat", "dog"], "ignore_index": 255, **(yaml_extra or {})}
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump(spec))
    for stem in stems:
        for kind, array in (("images", np.zeros((8, 8, 3), np.uint8)), ("scribbles", np.full((8, 8), 255, np.uint8)),
                            ("masks", np.zeros((8, 8), np.uint8))):
            if kind == "masks" and not masks:
                continue
            (root / kind / split).mkdir(parents=True, exist_ok=True)
            ext = ".jpg" if kind == "images" else ".png"
            Image.fromarray(array).save(root / kind / split / f"{stem}{ext}")
    return root


def test_folder_layout_lists_samples_with_palette_default(tmp_path):
    root = _write_folder_set(tmp_path / "ds")
    info, samples = open_dataset(root, layout="folder", split="train")
    assert info.class_names == ("background", "cat", "dog") and info.num_classes == 3
    assert info.ignore_index == 255 and len(info.palette) == 3
    assert [s.name for s in samples] == ["a", "b"]
    assert samples[0].image.name == "a.jpg" and samples[0].scribble.name == "a.png"
    assert samples[0].mask == root / "masks" / "train" / "a.png"
    assert detect_layout(root) == "folder"
    _, auto = open_dataset(root, layout="auto")
    assert auto == samples


def test_folder_layout_without_masks_has_none(tmp_path):
    root = _write_folder_set(tmp_path / "ds", masks=False)
    _, samples = open_dataset(root)
    assert all(s.mask is None for s in samples)


def test_unknown_yaml_key_is_named(tmp_path):
    root = _write_folder_set(tmp_path / "ds", yaml_extra={"clas_names": ["x"]})
    with pytest.raises(DataError, match=r"dataset\.yaml.*unknown key 'clas_names'"):
        open_dataset(root)


@pytest.mark.parametrize("extra, pattern", [
    ({"palette": [[0, 0, 0]]}, "palette has 1 colours for 3 classes"),
    ({"ignore_index": 1}, "ignore_index 1 is a class id"),
    ({"class_names": ["a", "a"]}, "duplicate class names"),
    ({"palette": [[0, 0, 0], [1, 2, 3], [300, 0, 0]]}, "0..255"),
])
def test_invalid_yaml_values_are_reported(tmp_path, extra, pattern):
    root = _write_folder_set(tmp_path / "ds", yaml_extra=extra)
    with pytest.raises(DataError, match=pattern):
        open_dataset(root)


def test_missing_scribble_and_missing_image_are_named(tmp_path):
    root = _write_folder_set(tmp_path / "ds", stems=("a", "b", "c"))
    (root / "scribbles" / "train" / "b.png").unlink()
    (root / "images" / "train" / "c.jpg").unlink()
    with pytest.raises(DataError) as caught:
        open_dataset(root)
    message = str(caught.value)
    assert "scribble of 'b' not found" in message and "b.png" in message
    assert "image of 'c' not found" in message
    _, samples = open_dataset(root, check_files=False)
    assert len(samples) == 3


def test_missing_split_lists_available_ones(tmp_path):
    root = _write_folder_set(tmp_path / "ds")
    with pytest.raises(DataError, match=r"images/val.*train"):
        open_dataset(root, split="val")
    with pytest.raises(DataError, match="unknown data set layout"):
        open_dataset(root, layout="coco")


def _write_voc(root: Path) -> Path:
    voc = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "pascal_2012_scribble", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True)
    for stem in ("2007_000001", "2007_000002", "2008_000003"):
        Image.fromarray(np.zeros((6, 7, 3), np.uint8)).save(voc / "JPEGImages" / f"{stem}.jpg")
        Image.fromarray(np.full((6, 7), 255, np.uint8)).save(voc / "pascal_2012_scribble" / f"{stem}.png")
    gt = Image.fromarray(np.full((6, 7), 15, np.uint8))
    gt.putpalette([0] * 768)
    gt.save(voc / "SegmentationClass" / "2007_000001.png")
    (voc / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n2007_000002\n")
    (voc / "ImageSets/Segmentation/train_aug.txt").write_text(
        "/JPEGImages/2007_000001.jpg /SegmentationClassAug/2007_000001.png\n"
        "/JPEGImages/2008_000003.jpg /SegmentationClassAug/2008_000003.png\n")
    return voc


def test_voc_layout_split_lists_and_optional_dense_gt(tmp_path):
    voc = _write_voc(tmp_path)
    info, samples = open_dataset(tmp_path, layout="voc", split="train")  # finds VOCdevkit/VOC2012
    assert info.class_names == VOC_CLASS_NAMES and info.num_classes == 21 and info.root == voc
    assert [s.name for s in samples] == ["2007_000001", "2007_000002"]
    assert samples[0].mask == voc / "SegmentationClass" / "2007_000001.png"
    assert samples[1].mask is None  # not in the segmentation subset
    assert samples[1].scribble == voc / "pascal_2012_scribble" / "2007_000002.png"
    _, aug = open_dataset(voc, layout="voc", split="train_aug")
    assert [s.name for s in aug] == ["2007_000001", "2008_000003"]
    assert detect_layout(voc) == "voc"


def test_voc_layout_errors_name_the_missing_pieces(tmp_path):
    voc = _write_voc(tmp_path)
    with pytest.raises(DataError, match="split list for 'val' not found"):
        open_dataset(voc, layout="voc", split="val")
    with pytest.raises(DataError, match="scribble folder .*my_scribbles not found"):
        open_dataset(voc, layout="voc", scribble_dir="my_scribbles")
    (voc / "JPEGImages" / "2007_000002.jpg").unlink()
    with pytest.raises(DataError, match=r"image of '2007_000002' not found.*2007_000002\.jpg"):
        open_dataset(voc, layout="voc")
    with pytest.raises(DataError, match="not a VOC2012 root"):
        open_dataset(tmp_path / "VOCdevkit" / "VOC2012" / "ImageSets", layout="voc")
