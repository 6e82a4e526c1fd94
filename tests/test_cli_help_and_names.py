"""Small CLI surfaces: ``--version``, usage lines without ``{placeholders}``, eval result names that keep
two data sets apart, and the hint for evaluating a split without dense masks."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scribbleseg import __version__
from scribbleseg.cli.app import app
from scribbleseg.data import SYNTHETIC_CLASS_NAMES, make_synthetic_dataset
from scribbleseg.engine.runs.checkpoint import save_model_checkpoint
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.build.method_factory import build_method
from tiny_models import tiny_model_mapping


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_version_prints_the_package_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"scribbleseg {__version__}"


def command_paths(commands, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in commands.items():
        paths.append(prefix + (name,))
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            paths += command_paths(command.commands, prefix + (name,))
    return paths


def test_usage_lines_name_arguments_in_capitals_without_braces() -> None:
    from scribbleseg.cli.app import COMMANDS, load_command

    paths = command_paths({name: load_command(name) for name in COMMANDS})
    assert ("train",) in paths and ("data", "synth") in paths
    for path in paths:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        usage = next(line for line in result.output.splitlines() if "Usage:" in line)
        assert "{" not in usage and "}" not in usage, (path, usage)
    usage = next(line for line in invoke("train", "--help").output.splitlines() if "Usage:" in line)
    assert re.search(r"train \[OPTIONS\] CONFIG\b", usage), usage


@pytest.fixture(scope="module")
def checkpoint_and_config(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("eval_names")
    data = make_synthetic_dataset(folder / "a" / "data", seed=0, num_train=1, num_val=1, size=32)
    shutil.copytree(data, folder / "b" / "data")
    cfg = config_from_mapping({"model": tiny_model_mapping(), "method": "pce",
                               "data": {"root": str(data), "num_workers": 0}})
    config = folder / "config.yaml"
    config.write_text(cfg.to_yaml())
    model = build_method(cfg, len(SYNTHETIC_CLASS_NAMES), load_pretrained=False)
    checkpoint = save_model_checkpoint(folder / "run" / "checkpoints" / "last.safetensors", model, cfg, {"step": 1})
    return folder, config, checkpoint


def test_evals_on_two_data_sets_write_two_result_files(checkpoint_and_config) -> None:
    folder, config, checkpoint = checkpoint_and_config
    for data in ("a", "b"):
        result = invoke("eval", config, "-c", checkpoint, "--device", "cpu",
                        "--set", f"data.root={folder / data / 'data'}")
        assert result.exit_code == 0, result.output
    written = sorted((folder / "run" / "eval").glob("*.json"))
    assert len(written) == 2, written
    roots = {json.loads(path.read_text())["meta"].get("data_root") for path in written}
    assert roots == {str(folder / "a" / "data"), str(folder / "b" / "data")}


def test_a_split_without_masks_names_the_cli_option(checkpoint_and_config, tmp_path: Path) -> None:
    folder, config, checkpoint = checkpoint_and_config
    data = shutil.copytree(folder / "a" / "data", tmp_path / "data")
    shutil.rmtree(data / "masks" / "val")
    args = ["eval", config, "-c", checkpoint, "--device", "cpu", "--set", f"data.root={data}",
            "--out", tmp_path / "r.json"]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", "")
    assert "--set eval.require_dense_gt=false" in text and "require_dense_gt=False" not in text, text
    result = invoke(*args, "--set", "eval.require_dense_gt=false")
    assert result.exit_code == 0, result.output
    assert "scribble" in result.output.lower()
