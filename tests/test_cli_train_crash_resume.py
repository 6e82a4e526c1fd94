"""A SIGKILL between the two renames of a checkpoint save: ``--resume`` still continues bit-exactly.

The children (``tests/train_child.py``) die right after ``os.replace`` put one file of the ``last`` pair
in place on the second save (step 4 of 6), once after ``last.safetensors`` and once after
``last.state.pt``, so whichever file is renamed first, the other one is from the previous save. The
resumed runs must end with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from tiny_models import write_tiny_run_config

CHILD = Path(__file__).with_name("train_child.py")
TINY = {
    "name": "crash",
    "data": {"root": "", "crop_size": 32, "scale_range": [0.75, 1.25], "batch_size": 2, "num_workers": 0},
    "model": {"backbone": {"name": None, "drop_path": 0.1,
                           "dims": {"embed_dims": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "num_heads": [1, 2, 4, 8]}},
              "decoder": {"embed_dim": 16, "dropout": 0.1}},
    "pfa": {"warmup_iters": 2, "slots": 2},
    "optim": {"lr": 1e-3, "warmup_iters": 1},
    "train": {"max_iters": 6, "val_interval": 0, "log_interval": 1, "checkpoint_interval": 2,
              "progress": False, "device": "cpu"},
}
KILL_POINTS = ("last.safetensors:2", "last.state.pt:2")


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / "last.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("crash")
    config = write_tiny_run_config(folder, TINY, data_seed=4, num_train=6)
    children = {point: subprocess.Popen(
        [sys.executable, str(CHILD), "--kill-after-rename", point, "--", "train", str(config), "--work-dir",
         str(folder / point.replace(":", "_"))], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for point in KILL_POINTS}
    straight = cli("train", config, "--work-dir", folder / "straight")
    assert straight.exit_code == 0, straight.output
    for child in children.values():
        child.communicate(timeout=300)
    return {"folder": folder, "config": config, "children": children}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_resume_after_a_kill_between_the_two_renames_is_bit_exact(runs: dict, point: str) -> None:
    child = runs["children"][point]
    assert child.returncode == -signal.SIGKILL, "the child must have been killed mid-save"
    run_dir = runs["folder"] / point.replace(":", "_")
    resumed = cli("train", runs["config"], "--work-dir", run_dir, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "6 steps" in resumed.output
    expected, got = final_weights(runs["folder"] / "straight"), final_weights(run_dir)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
