"""Training every method and backbone kind through ``scribbleseg train`` for a few steps (tiny CPU models):
the tiny ResNet + DeepLabV3+ preset, pCE + Gated CRF, PFA + Gated CRF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data import make_synthetic_dataset
from scribbleseg.engine.runs.checkpoint import load_model_checkpoint

REPO = Path(__file__).resolve().parents[1]
FAST = ["--set", "data.crop_size=48", "--set", "data.batch_size=2", "--set", "train.max_iters=4",
        "--set", "train.log_interval=1", "--set", "train.progress=false", "--set", "train.device=cpu",
        "--set", "pfa.warmup_iters=1", "--set", "pfa.slots=1"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("methods") / "data", seed=3, num_train=4, num_val=2,
                                  size=48)


def train(config: str, work_dir: Path, data_root: Path, *extra: str):
    result = CliRunner().invoke(app, ["train", str(REPO / "configs" / config), "--work-dir", str(work_dir),
                                      "--set", f"data.root={data_root}", *FAST, *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]


def test_tiny_resnet_deeplabv3plus_preset_trains_and_reloads(data_root: Path, tmp_path: Path) -> None:
    rows = train("synthetic_resnet_deeplabv3plus.yaml", tmp_path / "run", data_root)
    assert [row["phase"] for row in rows if "loss" in row][-1] == "global"
    method, cfg, meta = load_model_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert type(method.encoder).__name__ == "ResNet" and type(method.head).__name__ == "DeepLabV3PlusHead"
    assert meta["model"]["backbone"] == {"type": "resnet", "dims": {"depths": [1, 1, 1, 1], "base_width": 8,
                                                                   "stem_channels": None}, "output_stride": 16}
    assert method.bank.prototypes.shape[-1] == 32  # PFA's feature map F is the V3+ decoder's output


def test_pce_with_gated_crf_logs_the_regulariser(data_root: Path, tmp_path: Path) -> None:
    rows = [row for row in train("synthetic_gated_crf.yaml", tmp_path / "run", data_root) if "loss" in row]
    assert all(row["loss_gated_crf"] > 0 for row in rows)
    assert all(abs(row["loss"] - row["loss_pce"] - row["loss_gated_crf"]) < 1e-5 for row in rows)
    assert "loss_con_local" not in rows[0] and "phase" not in rows[0]


def test_pfa_with_gated_crf_from_an_override(data_root: Path, tmp_path: Path) -> None:
    rows = [row for row in train("synthetic_pfa.yaml", tmp_path / "run", data_root,
                                 "--set", "gated_crf={weight: 0.5, start_iter: 2}") if "loss" in row]
    assert [row["loss_gated_crf"] == 0 for row in rows] == [True, True, False, False]
    assert rows[-1]["loss_con_local"] > 0 and rows[-1]["phase"] == "global"
