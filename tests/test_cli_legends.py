"""Overlays (``predict --overlay``) and prediction grids (``plot``) carry a colour legend with the class
names of the classes they show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data import SYNTHETIC_CLASS_NAMES
from scribbleseg.engine.config.loading import load_config
from scribbleseg.engine.prediction.legend import legend_strip
from scribbleseg.engine.training.trainer import train
from test_cli_train import TINY
from tiny_models import write_tiny_run_config


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("legend")
    cfg = load_config(write_tiny_run_config(folder, TINY, num_val=2), ["train.max_iters=2"])
    return train(cfg, folder / "run").run_dir


def colours_in(pixels: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(c) for c in colour) for colour in np.unique(pixels.reshape(-1, 3), axis=0)}


def test_overlays_get_a_legend_strip_with_the_shown_classes(trained: Path, tmp_path: Path) -> None:
    image = next((trained.parent / "data" / "images" / "val").iterdir())
    result = run("predict", trained / "checkpoints" / "last.safetensors", image, "--out", tmp_path / "out",
                 "--overlay")
    assert result.exit_code == 0, result.output
    with Image.open(image) as original:
        width, height = original.size
    overlay = np.asarray(Image.open(tmp_path / "out" / "overlays" / f"{image.stem}.png"))
    label = np.asarray(Image.open(tmp_path / "out" / f"{image.stem}.png"))
    palette = np.asarray(Image.open(tmp_path / "out" / f"{image.stem}.png").getpalette()[:768]).reshape(-1, 3)
    assert overlay.shape[1] == width and overlay.shape[0] > height, overlay.shape
    strip = overlay[height:]
    shown = {tuple(int(c) for c in palette[index]) for index in np.unique(label)}
    assert shown <= colours_in(strip), (shown, "swatches of every predicted class in the legend")
    expected = legend_strip(width, sorted(int(i) for i in np.unique(label)), SYNTHETIC_CLASS_NAMES, palette)
    np.testing.assert_array_equal(strip, expected)  # the class names are drawn (the strip is the legend)


def test_plot_grid_has_a_legend_with_the_class_names(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    drawn: list[list[str]] = []
    original = Figure.legend

    def recording(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append([handle.get_label() for handle in kwargs.get("handles", [])])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "legend", recording)
    result = run("plot", trained)
    assert result.exit_code == 0, result.output
    assert (trained / "figures" / "predictions.png").is_file()
    assert len(drawn) == 1 and drawn[0] and set(drawn[0]) <= set(SYNTHETIC_CLASS_NAMES), drawn
