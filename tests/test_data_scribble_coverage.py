"""Training samples whose scribble has no labelled pixel (every pixel = ignore_index) are found quickly
(``find_unscribbled``) and reported by ``validate_dataset`` / ``scribbleseg data stats``: an all-255
data set used to train with loss 0 and exit 0."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data import find_unscribbled, make_synthetic_dataset, open_dataset, validate_dataset
from scribbleseg.data.image_io import write_png_atomic
from scribbleseg.errors import DataError

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("coverage") / "syn", seed=4, num_train=8, num_val=1,
                                  size=32)


def _blank_scribbles(src: Path, dst: Path, indices) -> tuple[Path, list[str]]:
    """Copy of ``src`` whose train scribbles at ``indices`` are all 255 (palette PNGs, like the originals)."""
    shutil.copytree(src, dst)
    folder = dst / "scribbles" / "train"
    paths = sorted(folder.iterdir())
    palette = Image.open(paths[0]).getpalette()
    for index in indices:
        write_png_atomic(paths[index], np.full((32, 32), 255, np.uint8), palette=palette)
    return dst, [paths[i].stem for i in indices]


@pytest.mark.parametrize("workers", [1, 3])
def test_find_unscribbled_returns_exactly_the_blank_scribbles(synth_root, tmp_path, workers):
    root, blank = _blank_scribbles(synth_root, tmp_path / "ds", [1, 4, 5])
    info, samples = open_dataset(root)
    found = find_unscribbled(samples, info, workers=workers)
    assert [s.name for s in found] == blank
    assert all(s in samples for s in found)


def test_find_unscribbled_on_an_all_blank_set_and_on_edge_values(synth_root, tmp_path):
    root, blank = _blank_scribbles(synth_root, tmp_path / "ds", range(8))
    info, samples = open_dataset(root)
    assert [s.name for s in find_unscribbled(samples, info)] == blank
    one_pixel = np.full((32, 32), 255, np.uint8)
    one_pixel[31, 31] = 0  # a single background pixel is a scribble
    Image.fromarray(one_pixel).save(samples[0].scribble)
    assert [s.name for s in find_unscribbled(samples, info)] == blank[1:]
    assert find_unscribbled([], info) == []


def test_find_unscribbled_skips_samples_without_scribble_and_names_a_corrupt_file(synth_root, tmp_path):
    root, _ = _blank_scribbles(synth_root, tmp_path / "ds", [])
    info, samples = open_dataset(root)
    without = [type(s)(name=s.name, image=s.image, scribble=None, mask=s.mask) for s in samples]
    assert find_unscribbled(without, info) == []
    samples[2].scribble.write_bytes(b"not a png")
    with pytest.raises(DataError, match=samples[2].scribble.name):
        find_unscribbled(samples, info, workers=2)


def test_data_stats_warns_about_some_blank_scribbles_with_count_and_names(synth_root, tmp_path):
    root, blank = _blank_scribbles(synth_root, tmp_path / "ds", [0, 6])
    result = RUNNER.invoke(app, ["data", "stats", str(root)])
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if line.startswith("warning:"))
    assert "no scribbled pixel in 2 of 8 scribbles" in warning and all(name in warning for name in blank)
    info, samples = open_dataset(root)
    assert validate_dataset(info, samples) == []


def test_data_stats_fails_when_no_scribble_has_a_labelled_pixel(synth_root, tmp_path):
    root, _ = _blank_scribbles(synth_root, tmp_path / "ds", range(8))
    result = RUNNER.invoke(app, ["data", "stats", str(root)])
    assert result.exit_code == 2, result.output
    assert "1 problem(s)" in result.output and "no scribbled pixel in 8 of 8 scribbles" in result.output
    info, samples = open_dataset(root)
    problems = validate_dataset(info, samples)
    assert len(problems) == 1 and problems[0].path == root / "scribbles" / "train"
