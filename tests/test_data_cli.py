"""``scribbleseg data`` commands through typer's CliRunner: stats validates, converters and generators work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "syn"
    result = RUNNER.invoke(app, ["data", "synth", str(root), "--seed", "1", "--num-train", "6", "--num-val", "2",
                                 "--size", "64"])
    assert result.exit_code == 0, result.output
    return root


def test_stats_on_clean_set(synth_root):
    result = RUNNER.invoke(app, ["data", "stats", str(synth_root), "--split", "train"])
    assert result.exit_code == 0, result.output
    assert "6 readable images" in result.output and "background" in result.output
    assert "all files OK" in result.output


def _copy_set(src: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_stats_lists_every_bad_file_and_exits_non_zero(synth_root, tmp_path):
    root = _copy_set(synth_root, tmp_path / "bad")
    scribbles, images = root / "scribbles" / "train", root / "images" / "train"
    names = sorted(p.stem for p in images.iterdir())
    (images / f"{names[0]}.png").write_bytes(b"garbage")                                   # corrupt image
    Image.fromarray(np.full((64, 64), 9, np.uint8)).save(scribbles / f"{names[1]}.png")    # ids out of range
    Image.fromarray(np.full((64, 64, 3), (128, 0, 0), np.uint8)).save(scribbles / f"{names[2]}.png")  # RGB
    Image.fromarray(np.full((32, 64), 255, np.uint8)).save(scribbles / f"{names[3]}.png")  # wrong size
    (scribbles / f"{names[4]}.png").unlink()                                               # missing
    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(scribbles / f"{names[5]}.png")  # empty: allowed
    result = RUNNER.invoke(app, ["data", "stats", str(root)])
    assert result.exit_code == 2
    output = result.output
    assert "5 problem(s)" in output
    assert f"{names[0]}.png" in output and "corrupt" in output
    assert f"{names[1]}.png" in output and "9 (4096 px)" in output
    assert f"{names[2]}.png" in output and "convert-palette" in output
    assert f"{names[3]}.png" in output and "64x32" in output
    assert f"{names[4]}.png" in output and "missing" in output
    assert "1 image(s) without any scribbled pixel" in output


def test_stats_error_for_bad_root(tmp_path):
    result = RUNNER.invoke(app, ["data", "stats", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "nothing" in result.output


def test_simulate_scribbles_command(synth_root, tmp_path):
    masks = synth_root / "masks" / "train"
    out = tmp_path / "sim"
    result = RUNNER.invoke(app, ["data", "simulate-scribbles", str(masks), str(out), "--shrink", "1.0",
                                 "--thickness", "1", "--seed", "3"])
    assert result.exit_code == 0, result.output
    written = sorted(out.iterdir())
    assert [p.name for p in written] == sorted(p.name for p in masks.iterdir())
    points = np.asarray(Image.open(written[0]))
    assert 0 < (points != 255).sum() < 40  # single points per stroke
    bad = RUNNER.invoke(app, ["data", "simulate-scribbles", str(masks), str(out), "--drop", "2"])
    assert bad.exit_code == 2 and "drop ratio" in bad.output


def test_convert_palette_command(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0, 0] = (128, 0, 0)        # VOC aeroplane = 1
    rgb[1, 1] = (224, 224, 192)    # VOC boundary -> 255
    rgb[2, 2] = (192, 128, 128)    # person = 15
    (tmp_path / "rgb").mkdir()
    Image.fromarray(rgb).save(tmp_path / "rgb" / "a.png")
    result = RUNNER.invoke(app, ["data", "convert-palette", str(tmp_path / "rgb"), str(tmp_path / "ids")])
    assert result.exit_code == 0, result.output
    ids = np.asarray(Image.open(tmp_path / "ids" / "a.png"))
    assert ids[0, 0] == 1 and ids[1, 1] == 255 and ids[2, 2] == 15 and ids[3, 3] == 0
    rgb[3, 4] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "rgb" / "a.png")
    failed = RUNNER.invoke(app, ["data", "convert-palette", str(tmp_path / "rgb"), str(tmp_path / "ids")])
    assert failed.exit_code == 2 and "a.png" in failed.output and "(1, 2, 3)" in failed.output
    lenient = RUNNER.invoke(app, ["data", "convert-palette", str(tmp_path / "rgb"), str(tmp_path / "ids"),
                                  "--unknown-as-ignore"])
    assert lenient.exit_code == 0 and np.asarray(Image.open(tmp_path / "ids" / "a.png"))[3, 4] == 255


def _split_rows(output: str, split: str) -> list[str]:
    """The table rows (class lines) printed for ``split``."""
    block = output.split(f"'{split}': scribbled pixels per class", 1)[1]
    return [line for line in block.splitlines() if "background" in line][:1]


def test_stats_checks_every_split_by_default(synth_root, tmp_path):
    root = _copy_set(synth_root, tmp_path / "bad_val")
    bad = sorted((root / "masks" / "val").iterdir())[0]
    bad.write_bytes(bad.read_bytes()[:20])  # truncated dense mask in the validation split
    result = RUNNER.invoke(app, ["data", "stats", str(root)])
    assert result.exit_code == 2, result.output
    assert "split=train" in result.output and "split=val" in result.output
    assert "1 problem(s)" in result.output and bad.name in result.output


def test_stats_shows_a_dash_where_a_split_has_no_masks_or_no_scribbles(synth_root, tmp_path):
    import shutil

    root = _copy_set(synth_root, tmp_path / "dash")
    shutil.rmtree(root / "masks" / "train")      # train: scribbles only
    shutil.rmtree(root / "scribbles" / "val")    # val: dense masks only
    result = RUNNER.invoke(app, ["data", "stats", str(root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    train_row, val_row = _split_rows(result.output, "train")[0], _split_rows(result.output, "val")[0]
    cells = lambda row: [cell.strip() for cell in row.split("│")[1:-1]]  # noqa: E731
    assert cells(train_row)[-1] == "\u2013" and cells(train_row)[3] != "\u2013", train_row
    assert cells(val_row)[2:6] == ["\u2013"] * 4 and cells(val_row)[-1] != "\u2013", val_row
