"""Trainer, optimiser, schedule, checkpoints and resume on a tiny synthetic set (CPU, seconds)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from scribbleseg.data import make_synthetic_dataset
from scribbleseg.atomic_files import atomic_write_text
from scribbleseg.engine.runs.checkpoint import load_model_checkpoint, load_training_state, save_model_checkpoint
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.build.data_factory import ResumableBatchSampler
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.engine.runs.layout import state_path_for
from scribbleseg.engine.training.optim import WarmupPolySchedule, build_optimizer, build_param_groups
from scribbleseg.engine.runtime.seeding import capture_rng_state, restore_rng_state
from scribbleseg.engine.training.trainer import TrainingDivergedError, TrainingForward, train
from scribbleseg.errors import CheckpointError, ConfigError
from tiny_models import tiny_run_model


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("syn"), seed=1, num_train=8, num_val=2, size=32)


def tiny_config(root: Path, **sections: dict) -> ExperimentConfig:
    """A MiT with 8-64 channels on 32x32 crops: ~0.05 s per step on CPU."""
    raw = {
        "name": "tiny",
        "data": {"root": str(root), "crop_size": 32, "scale_range": [0.75, 1.25], "batch_size": 2,
                 "num_workers": 0},
        "model": tiny_run_model(),
        "pfa": {"warmup_iters": 3, "slots": 2},
        "optim": {"lr": 1e-3, "warmup_iters": 2},
        "train": {"max_iters": 12, "val_interval": 0, "log_interval": 1, "checkpoint_interval": 0,
                  "progress": False, "device": "cpu"},
        "eval": {"heads": ["basic", "local", "global"]},
    }
    for section, values in sections.items():
        raw[section] = _merge(raw.get(section, {}), values) if isinstance(values, dict) else values
    return config_from_mapping(raw)


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def read_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train_rows(run_dir: Path) -> list[dict]:
    return [row for row in read_rows(run_dir) if "loss" in row]


# ---------------------------------------------------------------------------------------------- optimiser
def test_param_groups_scale_head_lr_and_skip_decay_on_norms_and_biases(data_root: Path) -> None:
    cfg = tiny_config(data_root, optim={"lr": 1e-4, "head_lr_mult": 10, "weight_decay": 0.05})
    model = build_method(cfg, 6)
    groups = {g["name"]: g for g in build_param_groups(model, cfg.optim)}
    assert set(groups) == {"encoder_decay", "encoder_no_decay", "head_decay", "head_no_decay"}
    assert groups["encoder_decay"]["lr"] == pytest.approx(1e-4)
    assert groups["head_decay"]["lr"] == pytest.approx(1e-3)
    assert groups["encoder_no_decay"]["weight_decay"] == groups["head_no_decay"]["weight_decay"] == 0.0
    assert groups["head_decay"]["weight_decay"] == 0.05
    assert all(p.ndim == 1 for g in ("encoder_no_decay", "head_no_decay") for p in groups[g]["params"])
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    assert all(id(p) in encoder_ids for p in groups["encoder_decay"]["params"])
    augmenter_ids = {id(p) for p in model.augmenters.parameters()}
    assert augmenter_ids <= {id(p) for g in ("head_decay", "head_no_decay") for p in groups[g]["params"]}
    count = sum(len(g["params"]) for g in groups.values())
    assert count == len([p for p in model.parameters() if p.requires_grad])


def test_freezing_encoder_norms_removes_them_from_the_optimiser(data_root: Path) -> None:
    cfg = tiny_config(data_root, model={"freeze_encoder_norms": True})
    model = build_method(cfg, 6)
    optimizer = build_optimizer(model, cfg.optim, cfg.model)
    norms = [m for m in model.encoder.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(not p.requires_grad for m in norms for p in m.parameters())
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not any(id(p) in optimised for m in norms for p in m.parameters())


def test_warmup_poly_schedule(data_root: Path) -> None:
    cfg = tiny_config(data_root, optim={"lr": 1.0, "warmup_iters": 10, "warmup_start_factor": 0.1,
                                        "poly_power": 2.0})
    schedule = WarmupPolySchedule(cfg.optim, total_iters=110)
    assert schedule.factor(0) == pytest.approx(0.1)
    assert schedule.factor(5) == pytest.approx(0.55)
    assert schedule.factor(10) == pytest.approx(1.0)
    assert schedule.factor(60) == pytest.approx(0.25)
    assert schedule.factor(110) == pytest.approx(0.0)
    model = build_method(cfg, 6)
    optimizer = build_optimizer(model, cfg.optim, cfg.model)
    schedule.apply(optimizer, 60)
    assert sorted({g["lr"] for g in optimizer.param_groups}) == pytest.approx([0.25, 2.5])


# ----------------------------------------------------------------------------------------------- seeding
def test_rng_state_round_trips_through_a_weights_only_file(tmp_path: Path) -> None:
    state = capture_rng_state()
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    torch.save(state, tmp_path / "rng.pt")
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first


def test_batch_sampler_is_resumable_and_shards_ranks() -> None:
    data = list(range(10))
    full = list(ResumableBatchSampler(data, 2, seed=5, epoch=3))
    assert list(ResumableBatchSampler(data, 2, seed=5, epoch=3, start_batch=2)) == full[2:]
    assert full != list(ResumableBatchSampler(data, 2, seed=5, epoch=4))
    rank0 = [i for b in ResumableBatchSampler(data, 2, 5, 3, rank=0, world_size=2) for i, _ in b]
    rank1 = [i for b in ResumableBatchSampler(data, 2, 5, 3, rank=1, world_size=2) for i, _ in b]
    assert not set(rank0) & set(rank1) and len(rank0) == len(rank1) == 4
    seeds = [s for b in full for _, s in b]
    assert len(set(seeds)) == len(seeds)


# ------------------------------------------------------------------------------------------------- train
def test_training_goes_through_the_three_phases_and_writes_the_run_folder(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(data_root, pfa={"warmup_iters": 3, "slots": 2},
                      train={"val_interval": 6, "checkpoint_interval": 5})
    result = train(cfg, tmp_path / "run")
    rows = train_rows(tmp_path / "run")
    phases = [row["phase"] for row in rows]
    assert phases[:3] == ["warmup"] * 3 and phases[-1] == "global"
    assert "local" in phases, "two images cannot hold every class twice: the bank fills after >1 step"
    assert all(row["loss_con_local"] == 0 for row in rows[:3])
    assert all(row["loss_con_global"] > 0 for row in rows if row["phase"] == "global")
    assert [row["step"] for row in rows] == list(range(1, 13))
    assert all(np.isfinite(row["loss"]) for row in rows)
    val_rows = [row for row in read_rows(tmp_path / "run") if "val/basic/miou" in row]
    assert [row["step"] for row in val_rows] == [6, 12]
    for name in ("config.yaml", "checkpoints/last.safetensors", "checkpoints/last.state.pt",
                 "checkpoints/best.safetensors", "figures/loss.png", "figures/miou.png"):
        assert (tmp_path / "run" / name).is_file(), name
    assert list((tmp_path / "run" / "tensorboard").iterdir())
    assert result.steps == 12 and result.best_checkpoint is not None
    assert not [p for p in (tmp_path / "run").rglob("*.tmp")]
    model, stored_cfg, meta = load_model_checkpoint(result.last_checkpoint)
    assert stored_cfg == cfg and meta["step"] == 12 and meta["num_classes"] == 6
    assert bool((model.bank.filled >= 2).all()), "the bank is saved with the weights"


def test_resume_continues_bit_exactly(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(data_root, train={"max_iters": 10})  # 8 images / batch 2: crosses an epoch boundary
    train(cfg, tmp_path / "straight")
    train(cfg, tmp_path / "resumed", stop_after=5)
    state = load_training_state(state_path_for(tmp_path / "resumed" / "checkpoints" / "last.safetensors"))
    assert state["step"] == 5
    train(cfg, tmp_path / "resumed", resume=True)
    straight, resumed = train_rows(tmp_path / "straight"), train_rows(tmp_path / "resumed")
    assert [r["step"] for r in resumed] == list(range(1, 11))
    for a, b in zip(straight, resumed):
        assert a["phase"] == b["phase"]
        assert abs(a["loss"] - b["loss"]) <= 1e-6, (a, b)
    w_straight = load_model_checkpoint(tmp_path / "straight" / "checkpoints" / "last.safetensors")[0]
    w_resumed = load_model_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.safetensors")[0]
    for (name, a), b in zip(w_straight.state_dict().items(), w_resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_refuses_to_overwrite_or_resume_nothing(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(data_root, train={"max_iters": 4})  # longer than the PFA warm-up (3)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(cfg, tmp_path / "run", resume=True)
    train(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg, tmp_path / "run")


def test_non_finite_losses_are_skipped_then_stop_training(data_root: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    original = TrainingForward.forward
    bad_steps = {2, 3}

    def sometimes_nan(self, batch, iteration):  # type: ignore[no-untyped-def]
        loss, parts, phase = original(self, batch, iteration)
        return (loss * float("nan") if iteration in bad_steps else loss), parts, phase

    monkeypatch.setattr(TrainingForward, "forward", sometimes_nan)
    cfg = tiny_config(data_root, train={"max_iters": 6, "max_nonfinite_in_a_row": 3})
    result = train(cfg, tmp_path / "skips")
    assert result.skipped_nonfinite == 2
    assert train_rows(tmp_path / "skips")[-1]["skipped_nonfinite"] == 2
    model = load_model_checkpoint(result.last_checkpoint)[0]
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())

    bad_steps.update(range(6))
    with pytest.raises(TrainingDivergedError, match="3 steps in a row"):
        train(cfg, tmp_path / "diverges")


# ------------------------------------------------------------------------------------------- checkpoints
def test_incompatible_and_corrupt_checkpoints_are_named(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(data_root)
    model = build_method(cfg, 6)
    path = save_model_checkpoint(tmp_path / "m.safetensors", model, cfg, {"step": 0})
    loaded, _, meta = load_model_checkpoint(path, expect=cfg, num_classes=6)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(CheckpointError, match=r"m\.safetensors.*6 classes, the data set has 21"):
        load_model_checkpoint(path, num_classes=21)
    other = tiny_config(data_root, model={"backbone": {"dims": {"embed_dims": [8, 16, 32, 32]}}})
    with pytest.raises(CheckpointError, match=r"its backbone\.dims\.embed_dims is \[8, 16, 32, 64\], the config asks for "
                                              r"\[8, 16, 32, 32\]"):
        load_model_checkpoint(path, expect=other)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_model_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="not found"):
        load_model_checkpoint(tmp_path / "absent.safetensors")
    atomic_write_text(tmp_path / "junk.safetensors", "not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_model_checkpoint(tmp_path / "junk.safetensors")
