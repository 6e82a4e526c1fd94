"""``export`` and ``predict`` say so when the chosen head never trained (a run stopped inside PFA's warm-up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.config.loading import load_config
from scribbleseg.engine.training.trainer import train
from scribbleseg.errors import ConfigError
from test_cli_train import TINY
from tiny_models import write_tiny_run_config


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def inside_warmup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint saved at step 2 of a run whose PFA warm-up is 3 steps (stopped as if killed)."""
    folder = tmp_path_factory.mktemp("untrained")
    cfg = load_config(write_tiny_run_config(folder, TINY), ["train.max_iters=6", "pfa.warmup_iters=3"])
    train(cfg, folder / "run", stop_after=2)
    return folder / "run" / "checkpoints" / "last.safetensors"


def test_export_of_a_head_that_never_trained_warns(inside_warmup: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # the trace itself (tested in test_engine_onnx_*) takes half a minute: stop the command where it starts
    import scribbleseg.deploy.onnx.export as onnx_export

    def no_trace(*_args, **_kwargs):
        raise ConfigError("export reached")

    monkeypatch.setattr(onnx_export, "export_onnx", no_trace)
    result = run("export", inside_warmup, "--out", tmp_path / "m.onnx", "--head", "local", "--classes", "threshold")
    assert "export reached" in result.output, result.output
    text = result.output.replace("\n", " ")
    assert "warning: head 'local'" in text and "untrained" in text and "pfa.warmup_iters=3" in text, text
    assert "step 2" in text
    basic = run("export", inside_warmup, "--out", tmp_path / "b.onnx")
    assert "export reached" in basic.output and "untrained" not in basic.output, basic.output


def test_predict_with_a_head_that_never_trained_warns(inside_warmup: Path, tmp_path: Path) -> None:
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    result = run("predict", inside_warmup, tmp_path / "x.png", "--out", tmp_path / "out", "--head", "local",
                 "--classes", "threshold")
    assert result.exit_code == 0, result.output
    assert "untrained" in result.output and "pfa.warmup_iters=3" in result.output.replace("\n", " ")
    basic = run("predict", inside_warmup, tmp_path / "x.png", "--out", tmp_path / "out2")
    assert basic.exit_code == 0 and "untrained" not in basic.output, basic.output
