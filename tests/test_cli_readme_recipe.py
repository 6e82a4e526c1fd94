"""The README's own-data recipe, run verbatim on a tiny data set laid out exactly as the README shows.

The commands are read from README.md between the ``<!-- own-data-recipe -->`` markers (like CI reads the
test command), run through the CLI in a fresh folder, with only size overrides appended to ``train`` (one
epoch of 2 iterations on 32x32 crops) and the preset's Hub id replaced by an NVlabs ``mit_b1.pth`` that our
own code writes (no download), so the README cannot drift from what works.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from nvlabs_weights import write_nvlabs_mit
from scribbleseg.cli.app import app

REPO = Path(__file__).resolve().parents[1]
MARKERS = ("<!-- own-data-recipe -->", "<!-- /own-data-recipe -->")
TRAIN_SIZE = ["--set", "train.epochs=1", "--set", "data.crop_size=32", "--set", "data.batch_size=2",
              "--set", "train.progress=false", "--set", "train.device=cpu", "--set", "data.num_workers=0"]


def recipe_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(MARKERS[0], 1)[1].split(MARKERS[1], 1)[0]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("scribbleseg ")]


def deploy_checkpoints() -> list[str]:
    """The checkpoints the README's Deploy section exports (``scribbleseg export CKPT ...``)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("### Deploy", 1)[1].split("```", 2)[1]
    return [shlex.split(line)[2] for line in block.splitlines() if line.startswith("scribbleseg export ")]


def make_my_data(root: Path, rng: np.random.Generator) -> None:
    """The README's tree: dataset.yaml, images/train/*.jpg, scribbles/train/*.png (and no val split)."""
    (root / "images" / "train").mkdir(parents=True)
    (root / "scribbles" / "train").mkdir(parents=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"class_names": ["background", "cat", "dog"],
                                                       "ignore_index": 255}))
    for index in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            root / "images" / "train" / f"img{index}.jpg")
        scribble = np.full((40, 48), 255, dtype=np.uint8)
        scribble[5:8, 4:40] = 0
        scribble[20:23, 10:30] = 1 + index % 2
        Image.fromarray(scribble).save(root / "scribbles" / "train" / f"img{index}.png")


def test_the_own_data_recipe_works_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = recipe_commands()
    assert [command[0] for command in commands] == ["data", "train", "predict"]
    rng = np.random.default_rng(0)
    make_my_data(tmp_path / "my_data", rng)
    (tmp_path / "photos").mkdir()
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"p{index}.jpg")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    weights = write_nvlabs_mit(tmp_path / "mit_b1.pth")
    monkeypatch.chdir(tmp_path)
    for command in commands:
        pretrained = ["--set", f"model.pretrained={weights}"]
        args = command + TRAIN_SIZE + pretrained if command[0] == "train" else command
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (shlex.join(command), result.output)
    assert sorted(p.name for p in (tmp_path / "predictions").glob("*.png")) == ["p0.png", "p1.png"]
    assert sorted(p.name for p in (tmp_path / "predictions" / "overlays").glob("*.png")) == ["p0.png", "p1.png"]
    exported = deploy_checkpoints()
    assert exported and all((tmp_path / path).is_file() for path in exported), \
        f"the Deploy section exports {exported}, which the recipe must have written"
