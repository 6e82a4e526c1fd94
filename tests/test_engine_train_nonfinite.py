"""Non-finite values in training: a skipped step leaves no trace (BatchNorm included), checkpoints never
hold NaN / inf (refused on save and on load), and a diverged run names a checkpoint that exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data import make_synthetic_dataset
from scribbleseg.engine.runs.checkpoint import load_model_checkpoint, save_model_checkpoint
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.engine.training.trainer import Trainer, TrainingForward, train

RESNET = {
    "name": "bn",
    "method": "pce",
    "data": {"root": "", "crop_size": 32, "scale_range": [1.0, 1.0], "batch_size": 2, "num_workers": 0},
    "model": {"backbone": {"type": "resnet", "name": None, "dims": {"depths": [1, 1, 1, 1], "base_width": 4},
                           "output_stride": 16},
              "decoder": {"type": "deeplabv3plus", "aspp_channels": 8, "low_level_channels": 4,
                          "decoder_channels": 8, "dropout": 0.0}},
    "optim": {"lr": 1e-3, "warmup_iters": 0, "poly_power": 0.0},  # constant lr: runs of 3 and 4 steps agree
    "train": {"max_iters": 4, "val_interval": 0, "log_interval": 1, "checkpoint_interval": 0,
              "progress": False, "device": "cpu"},
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("nonfinite"), seed=5, num_train=8, num_val=1, size=32)


def resnet_config(root: Path, **train_values):
    return config_from_mapping({**RESNET, "data": {**RESNET["data"], "root": str(root)},
                                "train": {**RESNET["train"], **train_values}})


def nan_images_at(monkeypatch: pytest.MonkeyPatch, bad_steps: set[int]) -> None:
    """Make the input images NaN at the given (0-based) iterations: every BatchNorm sees NaN."""
    original = TrainingForward.forward

    def forward(self, batch, iteration):  # type: ignore[no-untyped-def]
        if iteration in bad_steps:
            batch.images.mul_(float("nan"))
        return original(self, batch, iteration)

    monkeypatch.setattr(TrainingForward, "forward", forward)


def test_a_skipped_step_leaves_no_trace_in_batchnorm(data_root: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    reference = train(resnet_config(data_root, max_iters=3), tmp_path / "three_steps")
    nan_images_at(monkeypatch, {3})
    skipped = train(resnet_config(data_root), tmp_path / "nan_at_step_4")
    assert skipped.skipped_nonfinite == 1
    before, after = load_file(str(reference.last_checkpoint)), load_file(str(skipped.last_checkpoint))
    running = [name for name in after if name.endswith(("running_mean", "running_var"))]
    assert running, "the model must contain BatchNorm layers"
    for name in after:
        assert torch.equal(before[name], after[name]), name  # weights and every buffer as before the step
    model = load_model_checkpoint(skipped.last_checkpoint)[0]
    prediction = model.infer(torch.rand(1, 3, 32, 32), heads=("basic",))
    assert torch.isfinite(prediction.logits["basic"]).all()


def test_a_checkpoint_with_non_finite_weights_is_never_written(data_root: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    original = Trainer._train_step
    poisoned: list[str] = []

    def poisoning_step(self, batch):  # type: ignore[no-untyped-def]
        result = original(self, batch)
        if self.step == 2:  # weights turn NaN during the third step
            name, param = next(self.model.named_parameters())
            param.data.fill_(float("nan"))
            poisoned.append(name)
        return result

    monkeypatch.setattr(Trainer, "_train_step", poisoning_step)
    config = tmp_path / "bn.yaml"
    config.write_text(resnet_config(data_root, checkpoint_interval=2).to_yaml())
    result = CliRunner().invoke(app, ["train", str(config), "--work-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert "non-finite" in result.output and poisoned[0] in result.output.replace("\n", "")
    kept = load_model_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert kept[2]["step"] == 2, "the last good checkpoint stays in place"


def nan_checkpoint(data_root: Path, folder: Path) -> tuple[Path, Path, str]:
    """(config file, a checkpoint whose first weight is NaN, that weight's name), written past the save check."""
    cfg = resnet_config(data_root)
    config = folder / "bn.yaml"
    config.write_text(cfg.to_yaml())
    good = save_model_checkpoint(folder / "good.safetensors", build_method(cfg, 6, load_pretrained=False), cfg,
                                 {"step": 1})
    with safe_open(str(good), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(good))
    name = next(key for key, value in tensors.items() if value.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    bad = folder / "nan.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    return config, bad, name


def test_eval_and_predict_refuse_a_checkpoint_with_nan_weights(data_root: Path, tmp_path: Path) -> None:
    config, bad, name = nan_checkpoint(data_root, tmp_path)
    image = next((data_root / "images" / "val").iterdir())
    for args in (["eval", config, "--checkpoint", bad, "--device", "cpu"],
                 ["predict", bad, image, "--out", tmp_path / "pred", "--device", "cpu"]):
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 2, result.output
        text = result.output.replace("\n", "")
        assert "non-finite" in text and name in text and "nan.safetensors" in text, text
    assert not (tmp_path / "pred").exists() or not list((tmp_path / "pred").rglob("*.png"))


def nan_losses_from(monkeypatch: pytest.MonkeyPatch, first_bad: int) -> None:
    original = TrainingForward.forward

    def forward(self, batch, iteration):  # type: ignore[no-untyped-def]
        loss, parts, phase = original(self, batch, iteration)
        return (loss * float("nan") if iteration >= first_bad else loss), parts, phase

    monkeypatch.setattr(TrainingForward, "forward", forward)


@pytest.mark.parametrize("interval", [0, 2])
def test_a_diverged_run_names_a_good_checkpoint_or_says_there_is_none(data_root: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    interval: int) -> None:
    nan_losses_from(monkeypatch, 2)
    config = tmp_path / "bn.yaml"
    config.write_text(resnet_config(data_root, checkpoint_interval=interval, max_nonfinite_in_a_row=2).to_yaml())
    result = CliRunner().invoke(app, ["train", str(config), "--work-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", "")
    assert "diverged" in text
    last = tmp_path / "run" / "checkpoints" / "last.safetensors"
    if interval == 0:
        assert not last.exists() and "no checkpoint" in text.lower() and str(last) not in text, text
    else:
        assert f"{last} (step 2)" in text, text
        assert load_model_checkpoint(last)[2]["step"] == 2  # exists, and loads: every tensor finite
