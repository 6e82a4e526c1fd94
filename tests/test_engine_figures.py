"""Training curves from metrics.jsonl and the Fig. 4 style overlay grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from scribbleseg.engine.runs.metrics_file import read_metrics
from scribbleseg.engine.figures.prediction_figures import overlay_grid
from scribbleseg.engine.figures.run_figures import plot_run
from scribbleseg.errors import DataError


def _write_metrics(run_dir, with_validation: bool = True, truncated_tail: bool = False) -> None:
    lines = []
    for step in range(1, 31):
        phase = "warmup" if step <= 10 else ("local" if step <= 20 else "global")
        lines.append(json.dumps({
            "step": step, "epoch": step // 10, "phase": phase, "lr": 1e-3 * (1 - step / 40),
            "loss": 2.0 / step, "loss_pce": 1.8 / step,
            "loss_con_local": 0.1 / step if step > 10 else 0.0, "loss_con_global": 0.05 / step if step > 20 else 0.0,
        }))
        if with_validation and step % 10 == 0:
            lines.append(json.dumps({"step": step, "val/basic/miou": 0.1 * step / 10,
                                     "val/local/miou": 0.12 * step / 10}))
    text = "\n".join(lines) + "\n"
    if truncated_tail:
        text += '{"step": 31, "lo'
    (run_dir / "metrics.jsonl").write_text(text)


def test_plot_run_writes_loss_miou_and_lr_pngs(tmp_path) -> None:
    _write_metrics(tmp_path)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "keep.txt").write_text("untouched")
    paths = plot_run(tmp_path)
    assert sorted(p.name for p in paths) == ["loss.png", "lr.png", "miou.png"]
    for path in paths:
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.size[0] > 100
    assert (tmp_path / "figures" / "keep.txt").read_text() == "untouched"
    assert not list((tmp_path / "figures").glob("*.tmp"))


def test_plot_run_without_validation_skips_miou(tmp_path) -> None:
    _write_metrics(tmp_path, with_validation=False, truncated_tail=True)
    names = sorted(p.name for p in plot_run(tmp_path))
    assert names == ["loss.png", "lr.png"]


def test_truncated_last_line_is_skipped_but_corrupt_middle_line_is_an_error(tmp_path) -> None:
    _write_metrics(tmp_path, truncated_tail=True)
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 33
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\nnot json\n{"step": 2, "loss": 0.5}\n')
    with pytest.raises(DataError, match="line 2"):
        read_metrics(tmp_path / "metrics.jsonl")


def test_missing_run_or_metrics_is_a_data_error(tmp_path) -> None:
    with pytest.raises(DataError, match="run folder not found"):
        plot_run(tmp_path / "nope")
    with pytest.raises(DataError, match="metrics.jsonl"):
        plot_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(DataError, match="nothing|no loss"):
        plot_run(tmp_path)


def test_overlay_grid_has_one_row_per_image_and_a_column_per_map(tmp_path) -> None:
    rng = np.random.default_rng(0)
    palette = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
    images = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(2)]
    labels = [rng.integers(0, 3, (40, 48)) for _ in range(2)]
    scribbles = [np.full((40, 48), 255) for _ in range(2)]
    scribbles[0][10, 5:30] = 1
    gt = [label.copy() for label in labels]
    gt[0][0, :] = 255
    out = overlay_grid(images, {"baseline": labels, "PFA": labels, "ground truth": gt}, palette,
                       tmp_path / "grid.png", scribbles=scribbles, row_names=["a", "b"])
    small = overlay_grid(images[:1], {"PFA": labels[:1]}, palette, tmp_path / "small.png")
    with Image.open(out) as grid, Image.open(small) as one:
        assert grid.size[0] > one.size[0] and grid.size[1] > one.size[1]
    with pytest.raises(ValueError, match="baseline"):
        overlay_grid(images, {"baseline": labels[:1]}, palette, tmp_path / "bad.png")
