"""A full disk during ``train``: one ``error:`` line (exit 2), the previous checkpoint pair intact and
consistent, no temporary file left; orphaned temporary files of a killed run go on the next start."""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.runs import last_checkpoint
from scribbleseg.engine.runs.checkpoint import read_checkpoint_header
from scribbleseg.engine.runs.last_checkpoint import load_resume_point
from scribbleseg.engine.training.trainer import Trainer
from test_cli_train_kills import TINY
from tiny_models import write_tiny_run_config


class FullDisk:
    """Once :attr:`full` is set, ``os.write`` (atomic writes) and opening a file to write or append
    (``metrics.jsonl`` rows) fail with ENOSPC."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        real_write, real_open = os.write, builtins.open

        def write(fd: int, data) -> int:  # type: ignore[no-untyped-def]
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        def open_(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.full and any(flag in mode for flag in "wax+"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)  # what Path.open calls


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_run_config(tmp_path_factory.mktemp("disk_full"), TINY, data_seed=4, num_train=6)


def fill_disk_at(moment: str, disk: FullDisk, monkeypatch: pytest.MonkeyPatch) -> None:
    """``metrics``: right after the 4th step (its metrics row is the first write that fails);
    ``checkpoint``: when the 2nd save of the last pair starts writing."""
    if moment == "metrics":
        original_step = Trainer._train_step

        def step(self, batch):  # type: ignore[no-untyped-def]
            result = original_step(self, batch)
            disk.full = disk.full or self.step == 3
            return result

        monkeypatch.setattr(Trainer, "_train_step", step)
        return
    original_save = last_checkpoint.atomic_write_files
    saves = []

    def save(files):  # type: ignore[no-untyped-def]
        saves.append(files)
        disk.full = disk.full or len(saves) == 2
        return original_save(files)

    monkeypatch.setattr(last_checkpoint, "atomic_write_files", save)


@pytest.mark.parametrize("moment", ["metrics", "checkpoint"])
def test_a_full_disk_is_one_error_and_keeps_the_previous_checkpoint(config_file: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    moment: str) -> None:
    disk = FullDisk(monkeypatch)
    fill_disk_at(moment, disk, monkeypatch)
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config_file), "--work-dir", str(run_dir)])
    disk.full = False
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in result.output.replace("\n", ""), result.output
    last = run_dir / "checkpoints" / "last.safetensors"
    assert read_checkpoint_header(last)[1]["step"] == 2
    point = load_resume_point(last, repair=False)
    assert point.step == 2 and point.repaired is None
    assert not list(run_dir.rglob("*.tmp")), "temporary files are removed"


def test_orphaned_temporary_files_are_removed_by_the_next_start(config_file: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert CliRunner().invoke(app, ["train", str(config_file), "--work-dir", str(run_dir),
                                    "--set", "train.max_iters=3"]).exit_code == 0
    orphans = [run_dir / "checkpoints" / ".last.safetensors.0123456789abcdef.tmp",
               run_dir / ".config.yaml.fedcba9876543210.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a file from a killed writer")
    result = CliRunner().invoke(app, ["train", str(config_file), "--work-dir", str(run_dir), "--resume",
                                      "--set", "train.max_iters=3"])  # finished already: only the start runs
    assert result.exit_code == 0, result.output
    assert not any(orphan.exists() for orphan in orphans)
