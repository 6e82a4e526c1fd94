"""End to end through the CLI on CPU: synthetic data -> train through warm-up / local / global -> interrupt
and resume (identical losses to an uninterrupted run) -> eval -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from tiny_models import tiny_run_model

pytestmark = pytest.mark.slow

CONFIG = {
    "name": "e2e",
    "data": {"root": "", "crop_size": 32, "scale_range": [0.75, 1.25], "batch_size": 2, "num_workers": 0,
             "synthetic": {"seed": 3, "num_train": 8, "num_val": 2, "size": 32, "generate": True}},
    "model": tiny_run_model(),
    "pfa": {"warmup_iters": 3, "slots": 2},
    # constant learning rate: a run stopped at max_iters=k and resumed with max_iters=2k follows the same
    # schedule as a run of 2k iterations
    "optim": {"lr": 1e-3, "warmup_iters": 0, "poly_power": 0.0},
    "train": {"max_iters": 12, "val_interval": 4, "log_interval": 1, "checkpoint_interval": 0,
              "progress": False, "device": "cpu", "best_metric": "val/basic/miou"},
    "eval": {"heads": ["basic", "local", "global"], "class_source": "oracle"},
}


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def losses(run_dir: Path) -> list[tuple[int, str, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(row["step"], row["phase"], row["loss"]) for row in rows if "loss" in row]


def test_train_resume_eval_predict(tmp_path: Path) -> None:
    raw = {**CONFIG, "data": {**CONFIG["data"], "root": str(tmp_path / "data")}}
    config = tmp_path / "e2e.yaml"
    config.write_text(yaml.safe_dump(raw))

    cli("train", config, "--work-dir", tmp_path / "straight")
    assert (tmp_path / "data" / "dataset.yaml").is_file(), "data.synthetic.generate makes the set on first use"
    cli("train", config, "--work-dir", tmp_path / "killed", "--set", "train.max_iters=6")
    cli("train", config, "--work-dir", tmp_path / "killed", "--resume")

    straight, resumed = losses(tmp_path / "straight"), losses(tmp_path / "killed")
    assert [phase for _, phase, _ in straight][:3] == ["warmup"] * 3
    assert {"local", "global"} <= {phase for _, phase, _ in straight}
    assert [(s, p) for s, p, _ in resumed] == [(s, p) for s, p, _ in straight]
    assert max(abs(a - b) for (_, _, a), (_, _, b) in zip(straight, resumed)) <= 1e-6

    checkpoint = tmp_path / "killed" / "checkpoints" / "last.safetensors"
    out = cli("eval", config, "--checkpoint", checkpoint, "--head", "basic", "--head", "global",
              "--classes", "oracle", "--out", tmp_path / "eval.json")
    assert "mean" in out
    report = json.loads((tmp_path / "eval.json").read_text())
    assert {"basic", "global"} <= set(report["results"])

    cli("predict", checkpoint, tmp_path / "data" / "images" / "val", "--out", tmp_path / "pred")
    written = sorted(p.name for p in (tmp_path / "pred").rglob("*.png"))
    assert len(written) >= 2, written
