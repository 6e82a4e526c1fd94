"""What ``train`` checks in the data before the first step: every file of the splits it uses (decodes,
sizes match, label values in range; cached by path + size + mtime), and scribbles that label nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
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


def truncate(path: Path) -> None:
    """Cut a file to half its bytes (a copy that stopped half way)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def train_images(root: Path) -> list[Path]:
    return sorted((root / "images" / "train").iterdir())


@pytest.mark.parametrize("steps", [2, 8])
def test_a_truncated_image_stops_train_before_step_0_and_writes_nothing(tmp_path: Path, steps: int) -> None:
    config = write_tiny_run_config(tmp_path, TINY, num_train=4)
    bad = train_images(tmp_path / "data")[2]
    truncate(bad)
    result = run("train", config, "--work-dir", tmp_path / "run", "--set", f"train.max_iters={steps}")
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", "")
    assert "1 bad file(s)" in text and bad.name in text and "--skip-bad" in text, text
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists(), "nothing is written"


def test_every_bad_file_is_counted_and_the_first_ten_named(tmp_path: Path) -> None:
    config = write_tiny_run_config(tmp_path, TINY, num_train=14)
    for path in train_images(tmp_path / "data")[:12]:
        truncate(path)
    result = run("train", config, "--work-dir", tmp_path / "run")
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", "")
    assert "12 bad file(s)" in text and "and 2 more" in text, text


def test_label_values_out_of_range_and_bad_validation_masks_are_found(tmp_path: Path) -> None:
    config = write_tiny_run_config(tmp_path, TINY, num_train=4, num_val=2)
    scribble = sorted((tmp_path / "data" / "scribbles" / "train").iterdir())[0]
    with Image.open(scribble) as image:
        size = image.size
    Image.fromarray(np.full(size[::-1], 77, dtype=np.uint8)).save(scribble)  # 77: no such class
    mask = sorted((tmp_path / "data" / "masks" / "val").iterdir())[0]
    truncate(mask)
    result = run("train", config, "--work-dir", tmp_path / "run", "--set", "train.val_interval=2")
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", "")
    assert "2 bad file(s)" in text and scribble.name in text and "masks" in text, text


def test_skip_bad_trains_without_them_and_names_them_in_a_warning_and_run_json(tmp_path: Path) -> None:
    config = write_tiny_run_config(tmp_path, TINY, num_train=5)
    bad = train_images(tmp_path / "data")[1]
    truncate(bad)
    result = run("train", config, "--work-dir", tmp_path / "run", "--skip-bad")
    assert result.exit_code == 0, result.output
    text = result.output.replace("\n", "")
    assert "warning:" in text and "--skip-bad" in text and f"train/{bad.stem}" in text, text
    marker = json.loads((tmp_path / "run" / "run.json").read_text())
    assert len(marker["skipped_bad_files"]) == 1 and str(bad) in marker["skipped_bad_files"][0]


def test_the_check_is_cached_by_path_size_and_mtime_for_a_rerun_and_resume(tmp_path: Path, monkeypatch) -> None:
    import scribbleseg.engine.build.data_check as data_check

    checked: list[str] = []
    real = data_check.scan_sample

    def counting(sample, info, problems):  # type: ignore[no-untyped-def]
        checked.append(sample.name)
        return real(sample, info, problems)

    monkeypatch.setattr(data_check, "scan_sample", counting)
    config = write_tiny_run_config(tmp_path, TINY, num_train=4)
    assert run("train", config, "--work-dir", tmp_path / "run").exit_code == 0
    assert len(checked) == 4 and (tmp_path / "run" / "data_check.json").is_file()
    assert not list((tmp_path / "data").rglob("*.json")), "nothing is written into the data folder"
    checked.clear()
    result = run("train", config, "--work-dir", tmp_path / "run", "--resume", "--set", "train.max_iters=3")
    assert result.exit_code == 0, result.output
    assert checked == [], "--resume reads the cache"
    touched = train_images(tmp_path / "data")[0]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    result = run("train", config, "--work-dir", tmp_path / "run", "--overwrite")
    assert result.exit_code == 0, result.output
    assert checked == [touched.stem], "a rerun rechecks only the changed file"
