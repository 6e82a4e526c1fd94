"""``scribbleseg train`` through the real typer app: bad input -> one clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data import make_synthetic_dataset
from tiny_models import tiny_run_model

TINY = {
    "name": "tiny",
    "data": {"root": "", "crop_size": 32, "scale_range": [1.0, 1.0], "batch_size": 2, "num_workers": 0},
    "model": tiny_run_model(),
    "pfa": {"warmup_iters": 1, "slots": 2},
    "optim": {"lr": 1e-3},
    "train": {"max_iters": 2, "val_interval": 0, "log_interval": 1, "checkpoint_interval": 0,
              "progress": False, "device": "cpu"},
}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli_train")
    root = make_synthetic_dataset(folder / "data", seed=2, num_train=4, num_val=1, size=32)
    raw = {**TINY, "data": {**TINY["data"], "root": str(root)}}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


def test_train_runs_and_reports_the_checkpoint(config_file: Path, tmp_path: Path) -> None:
    result = run("train", str(config_file), "--work-dir", str(tmp_path / "run"), "--set", "train.max_iters=2")
    assert result.exit_code == 0, result.output
    assert "last checkpoint" in result.output
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").is_file()
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["max_iters"] == 2


def test_unknown_config_key_names_the_nearest_key(config_file: Path, tmp_path: Path) -> None:
    assert_user_error(run("train", str(config_file), "--work-dir", str(tmp_path), "--set", "optim.lrr=1"),
                      "optim.lrr", "optim.lr")


def test_bad_override_value_names_key_and_type(config_file: Path, tmp_path: Path) -> None:
    assert_user_error(run("train", str(config_file), "--work-dir", str(tmp_path), "--set", "pfa.slots=many"),
                      "pfa.slots", "integer")


def test_missing_config_file(tmp_path: Path) -> None:
    assert_user_error(run("train", str(tmp_path / "nope.yaml")), "config file not found", "nope.yaml")


def test_missing_data_root(config_file: Path, tmp_path: Path) -> None:
    result = run("train", str(config_file), "--work-dir", str(tmp_path / "run"),
                 "--set", f"data.root={tmp_path / 'no_data_here'}")
    assert_user_error(result, "no_data_here")


def test_output_folder_not_writable(config_file: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert_user_error(run("train", str(config_file), "--work-dir", str(blocker / "run")), "a_file")


def test_resume_without_a_run(config_file: Path, tmp_path: Path) -> None:
    assert_user_error(run("train", str(config_file), "--work-dir", str(tmp_path / "empty"), "--resume"),
                      "nothing to resume")


def test_demo_rejects_an_unknown_device(tmp_path: Path) -> None:
    assert_user_error(run("demo", "--out", str(tmp_path), "--device", "tpu"), "--device")


@pytest.mark.parametrize("name", ["/abs/path", "../../x", "a/b"])
def test_a_run_name_must_be_a_plain_folder_name(config_file: Path, tmp_path: Path, monkeypatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("train", str(config_file), "--set", f"name={name}")
    assert_user_error(result, f"--set name={name}", "plain folder name", "--work-dir")
    assert not (tmp_path / "runs").exists() and not Path("/abs/path").exists()


def test_a_bad_override_value_blames_the_override_not_the_file(config_file: Path, tmp_path: Path) -> None:
    result = run("train", str(config_file), "--work-dir", str(tmp_path), "--set", "pfa.slots=many")
    assert_user_error(result, "--set pfa.slots=many")
    assert config_file.name not in result.output
