"""What ``train`` checks in the data before the first step: scribbles that label nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from test_cli_train import TINY
from tiny_models import write_tiny_run_config


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def blank_scribbles(root: Path, count: int) -> None:
    """Make the first ``count`` training scribbles all 255 (nothing labelled)."""
    for path in sorted((root / "scribbles" / "train").iterdir())[:count]:
        with Image.open(path) as image:
            size = image.size
        Image.fromarray(np.full(size[::-1], 255, dtype=np.uint8)).save(path)


def test_a_set_without_any_scribbled_pixel_is_an_error_before_training(tmp_path: Path) -> None:
    config = write_tiny_run_config(tmp_path, TINY, num_train=4)
    blank_scribbles(tmp_path / "data", 4)
    result = run("train", config, "--work-dir", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert "no scribbled pixel in 4 of 4" in result.output.replace("\n", ""), result.output
    assert not (tmp_path / "run").exists()


def test_a_partly_unscribbled_set_trains_with_a_warning(tmp_path: Path) -> None:
    config = write_tiny_run_config(tmp_path, TINY, num_train=4)
    blank_scribbles(tmp_path / "data", 1)
    result = run("train", config, "--work-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    text = result.output.replace("\n", "")
    assert "warning:" in text and "no scribbled pixel in 1 of 4" in text, text


def test_the_saved_run_config_works_from_another_directory(tmp_path: Path, monkeypatch) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    config = write_tiny_run_config(project, TINY, num_train=4)
    monkeypatch.chdir(project)
    result = run("train", config, "--work-dir", "runs/x", "--set", "data.root=data")
    assert result.exit_code == 0, result.output
    saved = project / "runs" / "x" / "config.yaml"
    assert yaml.safe_load(saved.read_text())["data"]["root"] == str(project / "data")
    monkeypatch.chdir(elsewhere)
    result = run("eval", saved, "--checkpoint", project / "runs" / "x" / "checkpoints" / "last.safetensors",
                 "--head", "basic", "--device", "cpu", "--out", elsewhere / "r.json")
    assert result.exit_code == 0, result.output
    assert (elsewhere / "r.json").is_file()
