"""``train --work-dir``: which folders a run may use, the run-folder lock, and no half-made folders."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from test_cli_train import TINY
from tiny_models import write_tiny_run_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_run_config(tmp_path_factory.mktemp("run_folder"), TINY, data_seed=2)


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result) -> str:
    return result.output.replace("\n", "")


def test_a_non_run_folder_is_refused_unless_overwrite_and_then_holds_a_run(config_file: Path, tmp_path: Path) -> None:
    mine = tmp_path / "my_project"
    (mine / "figures").mkdir(parents=True)
    for name, text in (("config.yaml", "my own config\n"), ("metrics.jsonl", "{\"mine\": 1}\n"),
                       ("figures/loss.png", "my figure")):
        (mine / name).write_text(text)
    result = run("train", config_file, "--work-dir", mine)
    assert result.exit_code == 2, result.output
    assert "not a scribbleseg run folder" in one_line(result) and "--overwrite" in result.output
    assert (mine / "config.yaml").read_text() == "my own config\n"
    assert (mine / "metrics.jsonl").read_text() == "{\"mine\": 1}\n"
    assert (mine / "figures" / "loss.png").read_text() == "my figure"
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml", "figures", "metrics.jsonl"]

    result = run("train", config_file, "--work-dir", mine, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (mine / "checkpoints" / "last.safetensors").is_file() and (mine / "run.json").is_file()

    # now it is a run folder: a plain start names both ways on, --overwrite deletes the old run's files
    result = run("train", config_file, "--work-dir", mine)
    assert result.exit_code == 2, result.output
    assert "already holds a run" in one_line(result) and "step 2" in one_line(result)
    assert "--resume" in result.output and "--overwrite" in result.output
    (mine / "checkpoints" / "best.safetensors").write_bytes(b"from the previous run")
    result = run("train", config_file, "--work-dir", mine, "--overwrite", "--set", "train.max_iters=2")
    assert result.exit_code == 0, result.output
    assert not (mine / "checkpoints" / "best.safetensors").exists(), "the old run's files go"
    assert not (mine / "train.lock").exists(), "the lock file goes with the process"


def test_a_train_that_fails_before_its_first_step_leaves_no_folder(config_file: Path, tmp_path: Path) -> None:
    work_dir = tmp_path / "runs" / "new"
    result = run("train", config_file, "--work-dir", work_dir, "--set", f"data.root={tmp_path / 'no_data'}")
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "runs").exists(), "nor the runs/ folder it made for it"
    result = run("train", config_file, "--work-dir", work_dir, "--resume")
    assert result.exit_code == 2 and "nothing to resume" in result.output
    assert not work_dir.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("train", config_file, "--work-dir", empty, "--set", "data.batch_size=100")
    assert result.exit_code == 2, result.output
    assert empty.is_dir() and not list(empty.iterdir()), "a folder that was empty is empty again"


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from scribbleseg.engine.runs.lock import RunLock
    lock = RunLock({lock!r})
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def test_a_second_train_into_a_locked_folder_names_the_holder(config_file: Path, tmp_path: Path) -> None:
    work_dir = tmp_path / "busy"
    work_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=str(REPO),
                                                                   lock=str(work_dir / "train.lock"))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = run("train", config_file, "--work-dir", work_dir)
        assert result.exit_code == 2, result.output
        text = one_line(result)
        assert "in use" in text and str(holder.pid) in text and "busy" in text, text
        assert not (work_dir / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    result = run("train", config_file, "--work-dir", work_dir)
    assert result.exit_code == 0, "the kernel drops the lock of a dead process: " + result.output
