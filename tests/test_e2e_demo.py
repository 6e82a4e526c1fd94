"""``scribbleseg demo`` end to end with a few iterations: table, results JSON and overlay grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app

pytestmark = pytest.mark.slow


def test_demo_writes_table_results_and_grid(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--iters", "12", "--no-progress",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for text in ("pCE baseline", "PFA", "global", "mIoU"):
        assert text in result.output
    report = json.loads((tmp_path / "results.json").read_text())
    rows = {(row["model"], row["head"], row["classes"]) for row in report["rows"]}
    assert {("pCE baseline", "basic", "-"), ("PFA", "basic", "-"), ("PFA", "global", "oracle"),
            ("PFA", "global", "head"), ("PFA", "global", "threshold")} <= rows
    assert not any(model == "pCE baseline" and head != "basic" for model, head, _ in rows)
    assert all(set(row) >= {"model", "head", "classes", "miou"} and 0.0 <= row["miou"] <= 1.0
               for row in report["rows"])
    assert 0.0 <= report["classifier"]["map"] <= 1.0 and "mAP" in result.output
    assert report["configs"]["baseline"]["classifier"] is None
    grid = Image.open(tmp_path / "overlay_grid.png")
    assert grid.width > 200 and grid.height > 200
    for run in ("baseline", "pfa"):
        assert (tmp_path / run / "checkpoints" / "last.safetensors").is_file()
