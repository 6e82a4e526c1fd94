"""A split with images + dense masks but no scribbles (a typical val / test split) is an evaluation split.

``open_dataset`` lists it with ``scribble=None``, ``EvalDataset`` reads it, ``data stats`` accepts it with
a warning, and training on it (``ScribbleDataset``, ``scribbleseg train``) is refused with one clear error.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data import EvalDataset, ScribbleDataset, make_synthetic_dataset, open_dataset, validate_dataset
from scribbleseg.errors import DataError
from tiny_models import tiny_run_model

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("evalsplit") / "syn", seed=3, num_train=2, num_val=3,
                                  size=32)


def _without_scribbles(src: Path, dst: Path, split: str, keep_folder: bool) -> Path:
    """A copy of ``src`` whose ``scribbles/<split>/`` is empty (``keep_folder``) or absent."""
    shutil.copytree(src, dst)
    folder = dst / "scribbles" / split
    shutil.rmtree(folder)
    if keep_folder:
        folder.mkdir()
    return dst


@pytest.mark.parametrize("keep_folder", [True, False], ids=["empty-scribble-folder", "no-scribble-folder"])
def test_folder_val_split_without_scribbles_opens_and_evaluates(synth_root, tmp_path, keep_folder):
    root = _without_scribbles(synth_root, tmp_path / "ds", "val", keep_folder)
    info, samples = open_dataset(root, split="val")
    assert len(samples) == 3 and all(s.scribble is None and s.mask.is_file() for s in samples)
    assert validate_dataset(info, samples) == []
    items = list(EvalDataset(samples, info))
    assert [item["name"] for item in items] == [s.name for s in samples]
    expected = np.asarray(Image.open(samples[0].mask))
    assert items[0]["has_dense_gt"] and np.array_equal(items[0]["mask"].numpy(), expected)


@pytest.mark.parametrize("keep_folder", [True, False], ids=["empty-scribble-folder", "no-scribble-folder"])
def test_data_stats_accepts_an_evaluation_split_with_a_warning(synth_root, tmp_path, keep_folder):
    root = _without_scribbles(synth_root, tmp_path / "ds", "val", keep_folder)
    result = RUNNER.invoke(app, ["data", "stats", str(root), "--split", "val"])
    assert result.exit_code == 0, result.output
    assert "3 readable images of 3" in result.output and "all files OK" in result.output
    assert "warning:" in result.output and "no scribbles" in result.output and "evaluated" in result.output


def test_training_split_without_scribbles_is_refused_clearly(synth_root, tmp_path):
    root = _without_scribbles(synth_root, tmp_path / "ds", "train", keep_folder=True)
    info, samples = open_dataset(root, split="train")
    with pytest.raises(DataError, match=r"split 'train' .* has no scribbles .*scribbles/train"):
        ScribbleDataset(samples, info)


def _tiny_config(path: Path, data_root: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "data": {"root": str(data_root), "crop_size": 32, "scale_range": [1.0, 1.0], "batch_size": 2,
                 "num_workers": 0},
        "model": {**tiny_run_model(), "pretrained": None},
        "pfa": {"slots": 2},
        "train": {"max_iters": 1, "val_interval": 0, "progress": False, "device": "cpu"},
    }))
    return path


def test_train_command_on_a_split_without_scribbles_exits_2(synth_root, tmp_path):
    root = _without_scribbles(synth_root, tmp_path / "ds", "train", keep_folder=True)
    config = _tiny_config(tmp_path / "tiny.yaml", root)
    result = RUNNER.invoke(app, ["train", str(config), "--work-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "has no scribbles" in error_lines[0], result.output


def _write_voc_with_train_scribbles_only(root: Path) -> Path:
    """VOC root: 4 images, scribbles for the 2 train images only, dense GT for the 2 val images."""
    for folder in ("JPEGImages", "pascal_2012_scribble", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    for index, stem in enumerate(("2007_000001", "2007_000002", "2007_000003", "2007_000004")):
        Image.fromarray(np.zeros((6, 7, 3), np.uint8)).save(root / "JPEGImages" / f"{stem}.jpg")
        if index < 2:
            Image.fromarray(np.full((6, 7), 255, np.uint8)).save(root / "pascal_2012_scribble" / f"{stem}.png")
        else:
            Image.fromarray(np.full((6, 7), index, np.uint8)).save(root / "SegmentationClass" / f"{stem}.png")
    (root / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n2007_000002\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("2007_000003\n2007_000004\n")
    return root


def test_voc_val_split_without_scribbles_opens_and_evaluates(tmp_path):
    voc = _write_voc_with_train_scribbles_only(tmp_path / "VOC2012")
    info, samples = open_dataset(voc, layout="voc", split="val")
    assert [s.name for s in samples] == ["2007_000003", "2007_000004"]
    assert all(s.scribble is None for s in samples)
    assert [int(item["mask"][0, 0]) for item in EvalDataset(samples, info)] == [2, 3]
    result = RUNNER.invoke(app, ["data", "stats", str(voc), "--split", "val"])
    assert result.exit_code == 0, result.output
    assert "no scribbles" in result.output


def test_voc_split_with_some_scribbles_still_reports_the_missing_ones(tmp_path):
    voc = _write_voc_with_train_scribbles_only(tmp_path / "VOC2012")
    (voc / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n2007_000003\n")
    with pytest.raises(DataError, match=r"scribble of '2007_000003' not found"):
        open_dataset(voc, layout="voc", split="train")


def test_eval_command_scores_a_val_split_without_scribbles(synth_root, tmp_path):
    from scribbleseg.engine.runs.checkpoint import save_model_checkpoint
    from scribbleseg.engine.config.loading import load_config
    from scribbleseg.engine.build.method_factory import build_method

    root = _without_scribbles(synth_root, tmp_path / "ds", "val", keep_folder=True)
    config = _tiny_config(tmp_path / "tiny.yaml", root)
    cfg = load_config(config)
    info, _ = open_dataset(root, split="val")
    segmentor = build_method(cfg, info.num_classes, load_pretrained=False)
    checkpoint = save_model_checkpoint(tmp_path / "best.safetensors", segmentor, cfg,
                                       {"step": 1, "class_names": list(info.class_names)})
    out = tmp_path / "eval.json"
    result = RUNNER.invoke(app, ["eval", str(config), "--checkpoint", str(checkpoint), "--head", "basic",
                                 "--classes", "none", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["results"]["basic"]["num_images"] == 3
