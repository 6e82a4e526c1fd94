"""``scribbleseg config show``: the resolved config (``_base_`` merged, ``--set`` applied, defaults filled)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.config.loading import config_from_mapping, load_config


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_show_prints_the_merged_overridden_config_as_yaml(tmp_path: Path) -> None:
    _write(tmp_path / "base.yaml", "name: base\noptim: {lr: 0.25, weight_decay: 0.5}\ntrain: {seed: 3, max_iters: 5}\n")
    child = _write(tmp_path / "child.yaml", "_base_: base.yaml\nname: child\noptim: {lr: 0.125}\n")
    result = CliRunner().invoke(app, ["config", "show", str(child), "--set", "train.seed=9",
                                      "--set", "pfa.slots=7"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert "_base_" not in shown
    assert shown["name"] == "child"
    assert shown["optim"]["lr"] == 0.125 and shown["optim"]["weight_decay"] == 0.5  # child over base
    assert shown["train"]["seed"] == 9 and shown["pfa"]["slots"] == 7  # --set over both
    assert shown["train"]["max_iters"] == 5 and "log_interval" in shown["train"] and "backbone" in shown["model"]  # defaults are filled in
    expected = load_config(child, ["train.seed=9", "pfa.slots=7"])
    assert config_from_mapping(shown) == expected  # what is printed is exactly what train would run


def test_shipped_config_round_trips() -> None:
    path = Path(__file__).resolve().parents[1] / "configs" / "voc_pfa_deeplabv2_r101.yaml"
    result = CliRunner().invoke(app, ["config", "show", str(path)])
    assert result.exit_code == 0, result.output
    assert config_from_mapping(yaml.safe_load(result.output)) == load_config(path)


def test_bad_override_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.yaml", "name: c\n")
    result = CliRunner().invoke(app, ["config", "show", str(config), "--set", "optim.lrr=1"])
    assert result.exit_code == 2
    assert "error:" in result.output and "did you mean 'optim.lr'" in result.output
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(app, ["config", "show", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "nope.yaml" in missing.output
    bad_value = CliRunner().invoke(app, ["config", "show", str(config), "--set", "pfa.slots=many"])
    assert bad_value.exit_code == 2 and "pfa.slots" in bad_value.output
