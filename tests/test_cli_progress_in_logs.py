"""Progress bars written to a log file or CI (stderr not a terminal) print a line now and then, not one
carriage-return update per batch (one 233-image eval wrote 117 of them into its log line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.config.loading import load_config
from scribbleseg.engine.training.trainer import train
from test_cli_train import TINY
from tiny_models import write_tiny_run_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("progress")
    cfg = load_config(write_tiny_run_config(folder, TINY), ["train.max_iters=2"])
    return train(cfg, folder / "run").last_checkpoint


def test_predict_into_a_log_updates_its_bar_only_a_few_times(checkpoint: Path, tmp_path: Path) -> None:
    images = tmp_path / "photos"
    images.mkdir()
    for index in range(120):
        Image.fromarray(np.full((48, 48, 3), index, dtype=np.uint8)).save(images / f"p{index:03d}.png")
    result = CliRunner().invoke(app, ["predict", str(checkpoint), str(images), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    bar_updates = [part for part in result.output.split("\r") if "predicting" in part]
    assert 1 <= len(bar_updates) <= 3, bar_updates
