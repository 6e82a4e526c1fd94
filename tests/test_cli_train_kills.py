"""Killed and signalled ``train`` processes (real child processes, ``tests/train_child.py``).

* SIGKILL right after one file of the ``last`` pair was renamed into place on the second save (step 4
  of 6), once after ``last.safetensors`` and once after ``last.state.pt``, so whichever is renamed first
  the other is from the previous save: ``--resume`` must still end exactly where an uninterrupted run
  ends (before the pair had a save id, the first case resumed silently from the older state).
* Ctrl-C (SIGINT to the whole process group, a DataLoader worker included) and SIGTERM at step 3 with
  ``checkpoint_interval: 0``: the step finishes, ``last`` is written, the exact ``--resume`` command is
  printed, the exit code is 130 / 143, and that command ends exactly where the uninterrupted run ends.

All four children run at once, beside the uninterrupted reference run.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.runs.checkpoint import read_checkpoint_header
from tiny_models import tiny_run_model, write_tiny_run_config

CHILD = Path(__file__).with_name("train_child.py")
TINY = {
    "name": "kills",
    "data": {"root": "", "crop_size": 32, "scale_range": [0.75, 1.25], "batch_size": 2, "num_workers": 0},
    "model": tiny_run_model(),
    "pfa": {"warmup_iters": 2, "slots": 2},
    "optim": {"lr": 1e-3, "warmup_iters": 1},
    "train": {"max_iters": 6, "val_interval": 0, "log_interval": 1, "checkpoint_interval": 2,
              "progress": False, "device": "cpu"},
}
KILLS = ("last.safetensors:2", "last.state.pt:2")
SIGNALS = {"SIGINT": (130, ["--set", "data.num_workers=1"]), "SIGTERM": (143, [])}  # exit code, extra args
NO_PERIODIC_SAVES = ["--set", "train.checkpoint_interval=0"]  # the presets' setting


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / "last.safetensors"))


def assert_same_weights(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("kills")
    config = write_tiny_run_config(folder, TINY, data_seed=4, num_train=6)
    commands = {point: ["--kill-after-rename", point, "--", "train", str(config), "--work-dir",
                        str(folder / point.replace(":", "_"))] for point in KILLS}
    commands.update({name: ["--signal-at-step", f"{name}:3", "--", "train", str(config), "--work-dir",
                            str(folder / name), *NO_PERIODIC_SAVES, *extra] for name, (_, extra) in SIGNALS.items()})
    children = {key: subprocess.Popen([sys.executable, str(CHILD), *args], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True)
                for key, args in commands.items()}
    straight = cli("train", config, "--work-dir", folder / "straight")
    assert straight.exit_code == 0, straight.output
    outputs = {key: child.communicate(timeout=600)[0] for key, child in children.items()}
    return {"folder": folder, "config": config, "children": children, "outputs": outputs,
            "expected": weights(folder / "straight")}


@pytest.mark.parametrize("point", KILLS)
def test_resume_after_a_kill_between_the_two_renames_is_bit_exact(runs: dict, point: str) -> None:
    assert runs["children"][point].returncode == -signal.SIGKILL, runs["outputs"][point]
    run_dir = runs["folder"] / point.replace(":", "_")
    resumed = cli("train", runs["config"], "--work-dir", run_dir, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "6 steps" in resumed.output
    assert_same_weights(runs["expected"], weights(run_dir))


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_a_signal_saves_last_and_prints_the_resume_command(runs: dict, name: str) -> None:
    child, output = runs["children"][name], runs["outputs"][name]
    run_dir = runs["folder"] / name
    assert child.returncode == SIGNALS[name][0], output
    assert "Traceback" not in output, output
    last = run_dir / "checkpoints" / "last.safetensors"
    assert read_checkpoint_header(last)[1]["step"] == 3, output
    assert str(last) in output.replace("\n", "")
    command = [line for line in output.splitlines() if "--resume" in line]
    assert len(command) == 1, output
    resumed = cli(*shlex.split(command[0].split("scribbleseg", 1)[1]))
    assert resumed.exit_code == 0, resumed.output
    assert_same_weights(runs["expected"], weights(run_dir))
