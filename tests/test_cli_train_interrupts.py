"""Ctrl-C (SIGINT to the whole process group, DataLoader workers included) and SIGTERM during ``train``:
the step finishes, ``last`` is written although ``checkpoint_interval`` is 0, the exact ``--resume``
command is printed, the exit code is 130 / 143, and running that command ends bit-exactly where an
uninterrupted run ends."""

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
from scribbleseg.engine.checkpoint import read_checkpoint_header
from test_cli_train_crash_resume import TINY
from tiny_models import write_tiny_run_config

CHILD = Path(__file__).with_name("train_child.py")
RAW = {**TINY, "train": {**TINY["train"], "checkpoint_interval": 0}}  # the presets' setting: no periodic saves
CASES = {  # signal -> (exit code, extra --set for the child)
    "SIGINT": (130, ["--set", "data.num_workers=1"]),
    "SIGTERM": (143, []),
}


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("interrupts")
    config = write_tiny_run_config(folder, RAW, data_seed=4, num_train=6)
    children = {name: subprocess.Popen(
        [sys.executable, str(CHILD), "--signal-at-step", f"{name}:3", "--", "train", str(config),
         "--work-dir", str(folder / name), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        for name, (_, extra) in CASES.items()}
    straight = cli("train", config, "--work-dir", folder / "straight")
    assert straight.exit_code == 0, straight.output
    outputs = {name: child.communicate(timeout=300)[0] for name, child in children.items()}
    return {"folder": folder, "children": children, "outputs": outputs}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_signal_saves_last_and_prints_the_resume_command(runs: dict, name: str) -> None:
    child, output = runs["children"][name], runs["outputs"][name]
    run_dir = runs["folder"] / name
    assert child.returncode == CASES[name][0], output
    assert "Traceback" not in output, output
    last = run_dir / "checkpoints" / "last.safetensors"
    assert read_checkpoint_header(last)[1]["step"] == 3, output
    assert str(last) in output.replace("\n", "")
    command = [line for line in output.splitlines() if "--resume" in line]
    assert len(command) == 1, output
    args = shlex.split(command[0].split("scribbleseg", 1)[1])
    resumed = cli(*args)
    assert resumed.exit_code == 0, resumed.output
    expected, got = load_file(str(runs["folder"] / "straight" / "checkpoints" / "last.safetensors")), load_file(str(last))
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
