"""Messages a new user meets, through the CLI: a checkpoint whose settings differ names the differing keys
(not Python reprs), a ``.yml`` config that is not found suggests the ``.yaml`` that is, and the Hub
message reads right."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.config.loading import load_config
from scribbleseg.engine.training.trainer import train
from test_cli_train import TINY
from tiny_models import write_tiny_run_config

REPO = Path(__file__).resolve().parents[1]


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("messages")
    config = write_tiny_run_config(folder, TINY)
    return config, train(load_config(config), folder / "run").last_checkpoint


def test_a_checkpoint_whose_pfa_settings_differ_names_the_keys(trained, tmp_path: Path) -> None:
    config, checkpoint = trained
    result = run("eval", config, "--checkpoint", checkpoint, "--set", "pfa.slots=3", "--set", "pfa.share_augmenter=false",
                 "--out", tmp_path / "r.json")
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", " ")
    assert "its pfa.slots is 2, the config asks for 3" in text, text
    assert "its pfa.share_augmenter is true, the config asks for false" in text, text
    assert "{'" not in text and "True" not in text, text


def test_a_missing_yml_config_suggests_the_yaml_that_exists(tmp_path: Path) -> None:
    shutil.copy(REPO / "configs" / "own_pfa_mit_b1.yaml", tmp_path / "own_pfa_mit_b1.yaml")
    result = run("train", tmp_path / "own_pfa_mit_b1.yml")
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", "")
    assert "config file not found" in text and f"did you mean {tmp_path / 'own_pfa_mit_b1.yaml'}?" in text, text
    plain = run("train", tmp_path / "nothing.yml")
    assert plain.exit_code == 2 and "did you mean" not in plain.output


def test_the_hub_message_for_an_unknown_weights_spec_reads_right(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    result = run("weights", "fetch", "nvidia/mit-b1", "--to", tmp_path / "w")
    text = result.output.replace("\n", " ")
    assert result.exit_code == 2, text
    assert "neither" not in text and "is not a local file or folder, nor" in text, text
