"""The own-data preset (configs/own_pfa_mit_b1.yaml, own_pce_mit_b1.yaml) and a warm-up that cannot outlast
training, through ``scribbleseg train``.

The pretrained route is tested with an NVlabs ``mit_b1.pth`` of a randomly initialised MiT-B1 that our own
code writes (:mod:`nvlabs_weights`): no download.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from nvlabs_weights import write_nvlabs_mit
from scribbleseg.cli.app import app
from test_cli_train import TINY
from tiny_models import write_tiny_run_config

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--set", "data.crop_size=32", "--set", "data.batch_size=2", "--set", "data.num_workers=0",
         "--set", "train.epochs=2", "--set", "train.progress=false", "--set", "train.device=cpu"]


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def make_folder_set(root: Path, with_val_masks: bool) -> Path:
    """4 train images with scribbles (+ 2 val images with dense masks): 3 classes."""
    rng = np.random.default_rng(0)
    (root / "dataset.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"class_names": ["background", "box", "disc"]}))
    splits = [("train", 4, "scribbles")] + ([("val", 2, "masks")] if with_val_masks else [])
    for split, count, labels in splits:
        (root / "images" / split).mkdir(parents=True)
        (root / labels / split).mkdir(parents=True)
        for index in range(count):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
                root / "images" / split / f"{split}{index}.png")
            label = np.full((40, 48), 255 if labels == "scribbles" else 0, dtype=np.uint8)
            label[2:6, 2:40] = 0
            label[20:24, 8:30] = 1 + index % 2
            Image.fromarray(label).save(root / labels / split / f"{split}{index}.png")
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_nvlabs_mit(tmp_path_factory.mktemp("weights") / "mit_b1.pth")


def test_own_preset_trains_a_pretrained_mit_b1_in_epochs_and_keeps_best_when_masks_val_exists(
        tmp_path: Path, weights: Path) -> None:
    root = make_folder_set(tmp_path / "my_data", with_val_masks=True)
    result = run("train", REPO / "configs" / "own_pfa_mit_b1.yaml", "--set", f"data.root={root}",
                 "--set", f"model.pretrained={weights}", "--work-dir", tmp_path / "run", *SMALL)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "checkpoints" / "best.safetensors").is_file()
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    # 4 images / batch 2 = 2 iterations per epoch: 2 epochs = 4 iterations, warm-up 15 % of them
    assert resolved["pfa"]["warmup_iters"] == 1 and resolved["train"]["epochs"] == 2
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(row["step"] for row in rows) == 4 and any("val/basic/miou" in row for row in rows)


def test_own_preset_without_masks_val_trains_without_validation_and_says_so(tmp_path: Path, weights: Path) -> None:
    root = make_folder_set(tmp_path / "my_data", with_val_masks=False)
    result = run("train", REPO / "configs" / "own_pce_mit_b1.yaml", "--set", f"data.root={root}",
                 "--set", f"model.pretrained={weights}", "--work-dir", tmp_path / "run", *SMALL)
    assert result.exit_code == 0, result.output
    assert "no validation" in result.output and "best.safetensors" in result.output
    assert not (tmp_path / "run" / "checkpoints" / "best.safetensors").exists()
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").is_file()


def test_own_preset_names_the_hub_id_when_it_cannot_be_downloaded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    root = make_folder_set(tmp_path / "my_data", with_val_masks=False)
    result = run("train", REPO / "configs" / "own_pfa_mit_b1.yaml", "--set", f"data.root={root}",
                 "--work-dir", tmp_path / "run", *SMALL)
    assert result.exit_code == 2, result.output
    assert "nvidia/mit-b1" in result.output and "weights fetch" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_a_warmup_as_long_as_the_run_is_an_error_naming_both_keys(tmp_path: Path) -> None:
    config = write_tiny_run_config(tmp_path, TINY)
    result = run("train", config, "--work-dir", tmp_path / "run", "--set", "train.max_iters=3",
                 "--set", "pfa.warmup_iters=3")
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", " ")
    assert "pfa.warmup_iters=3" in text and "train.max_iters=3" in text, result.output
    assert not (tmp_path / "run").exists()


def test_a_warmup_fraction_resolves_against_the_run_length(tmp_path: Path) -> None:
    config = write_tiny_run_config(tmp_path, TINY)
    result = run("train", config, "--work-dir", tmp_path / "run", "--set", "train.max_iters=4",
                 "--set", "pfa.warmup_fraction=0.5")
    assert result.exit_code == 0, result.output
    phases = [json.loads(line).get("phase") for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert phases[:2] == ["warmup", "warmup"] and phases[2] != "warmup"
