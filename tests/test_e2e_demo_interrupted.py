"""Ctrl-C / SIGTERM during ``scribbleseg demo``: one line naming the signal and the command that continues
the demo, no traceback, the shell's exit code; the hint works (the stopped model resumes exactly, as
``train --resume`` does, tests/test_cli_train_kills.py; the finished one is reused)."""

from __future__ import annotations

import json
import os
import shlex
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.training.trainer import Trainer

pytestmark = pytest.mark.slow
ITERS = ["--iters", "12", "--no-progress", "--device", "cpu"]


def test_sigterm_while_pfa_trains_prints_a_hint_that_continues_the_demo(tmp_path: Path, monkeypatch) -> None:
    original = Trainer._train_step
    calls = {"n": 0}

    def signalled_step(self, batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 12 + 5:  # the PFA run's fifth step (the baseline ran 12): a real SIGTERM
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", signalled_step)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo"), *ITERS])
    assert result.exit_code == 143, result.output
    assert "Traceback" not in result.output
    hint = [line for line in result.output.splitlines() if line.startswith("demo stopped by SIGTERM")]
    assert len(hint) == 1, result.output
    command = shlex.split(hint[0].split("continue it with: ", 1)[1])
    assert command[:2] == ["scribbleseg", "demo"] and command[-1] == "--resume", command
    monkeypatch.setattr(Trainer, "_train_step", original)
    resumed = CliRunner().invoke(app, command[1:])
    assert resumed.exit_code == 0, resumed.output
    assert "already finished" in resumed.output  # the baseline is reused, PFA continues from step 5
    rows = json.loads((tmp_path / "demo" / "results.json").read_text())["rows"]
    assert any(row["model"] == "PFA" and row["head"] == "global" for row in rows)
