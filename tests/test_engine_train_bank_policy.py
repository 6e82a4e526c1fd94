"""Training on a data set where one class is never scribbled: with ``pfa.global_start=seen_full`` the run
still reaches the global phase; with the paper's ``all_full`` it stays local, logs the bank's fill state and
warns once. Also the image classifier's loss and mAP in a real training run with extra validation sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scribbleseg.data import make_synthetic_dataset, simulate_scribble_folder
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.training.trainer import train
from tiny_models import tiny_run_model

pytestmark = pytest.mark.slow
NEVER = 3  # "dots": never scribbled in the copy


@pytest.fixture(scope="module")
def rare_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_synthetic_dataset(tmp_path_factory.mktemp("syn") / "data", seed=1, num_train=8, num_val=2,
                                  size=32)
    simulate_scribble_folder(root / "masks" / "train", root / "scribbles" / "train", shrink=0.5,
                             remove_class=NEVER, remove_fraction=1.0)
    return root


def config(root: Path, policy: str, **sections):
    raw = {
        "name": f"never_{policy}",
        "data": {"root": str(root), "crop_size": 32, "scale_range": [1.0, 1.0], "batch_size": 4,
                 "num_workers": 0},
        "model": tiny_run_model(drop=0.0),
        "pfa": {"warmup_iters": 2, "slots": 1, "global_start": policy},
        "optim": {"lr": 1e-3},
        "train": {"max_iters": 10, "val_interval": 0, "log_interval": 1, "checkpoint_interval": 0,
                  "progress": False, "device": "cpu"},
        **sections,
    }
    return config_from_mapping(raw)


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_the_copy_never_scribbles_the_class(rare_root: Path) -> None:
    for path in (rare_root / "scribbles" / "train").iterdir():
        assert not (np.array(Image.open(path)) == NEVER).any()
    assert any((np.array(Image.open(path)) == NEVER).any() for path in (rare_root / "masks" / "train").iterdir())


def test_seen_full_reaches_the_global_phase_all_full_stalls_and_warns_once(rare_root, tmp_path, capsys) -> None:
    train(config(rare_root, "all_full"), tmp_path / "all_full")
    printed = capsys.readouterr().out
    stalled = [row for row in rows(tmp_path / "all_full") if "loss" in row]
    assert {row["phase"] for row in stalled[2:]} == {"local"}
    assert stalled[-1]["bank_classes"] == 6 and stalled[-1]["bank_seen_classes"] == 5
    assert stalled[-1]["bank_full_classes"] == 5
    assert printed.count("PFA's global phase has not started") == 1 and "seen_full" in printed

    train(config(rare_root, "seen_full"), tmp_path / "seen_full")
    printed = capsys.readouterr().out
    running = [row for row in rows(tmp_path / "seen_full") if "loss" in row]
    assert running[-1]["phase"] == "global" and running[-1]["loss_con_global"] > 0
    assert "has not started" not in printed


def test_classifier_loss_and_validation_map_with_an_extra_class_source(rare_root, tmp_path) -> None:
    cfg = config(rare_root, "seen_full", classifier={"lambda_cls": 0.5},
                 eval={"heads": None, "class_source": "head", "extra_class_sources": ["oracle", "none"]})
    cfg.train.val_interval = 5
    train(cfg, tmp_path / "run")
    logged = rows(tmp_path / "run")
    assert all(row["loss_cls"] > 0 for row in logged if "loss" in row)
    validation = [row for row in logged if "val/basic/miou" in row]
    assert len(validation) == 2
    last = validation[-1]
    assert 0.0 <= last["val/classifier/map"] <= 1.0
    assert {"val/global/miou", "val/global@oracle/miou", "val/local@oracle/miou", "val/global@none/miou"} <= set(last)
    assert last["val/global@none/miou"] == last["val/basic/miou"]
    shutil.rmtree(tmp_path / "run")
