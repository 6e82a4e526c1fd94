"""``scribbleseg.atomic_files``: files respect the umask, failed writes leave nothing behind and raise
one clear error naming the file, stale temp files of a killed process can be cleaned up."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

import scribbleseg.atomic_files as atomic_files
from scribbleseg.atomic_files import (
    atomic_write_bytes,
    atomic_write_text,
    ensure_writable_dir,
    remove_stale_temp_files,
)
from scribbleseg.cli.app import app
from scribbleseg.errors import OutputDirError, OutputWriteError, ScribblesegError

RUNNER = CliRunner()


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_data_synth_files_respect_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    out = tmp_path / "syn"
    result = RUNNER.invoke(app, ["data", "synth", str(out), "--num-train", "1", "--num-val", "1", "--size", "32"])
    assert result.exit_code == 0, result.output
    modes = _modes(out)
    assert "dataset.yaml" in modes and len(modes) == 7  # yaml + 2 x (image, mask, scribble)
    assert set(modes.values()) == {expected}, {k: oct(v) for k, v in modes.items()}


def test_overwriting_keeps_the_umask_mode_and_the_content(tmp_path, umask):
    umask(0o027)
    target = atomic_write_text(tmp_path / "a" / "b.txt", "old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.txt"]


def _failing(name: str, code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    fail.__name__ = name
    return fail


@pytest.mark.parametrize("function, code", [("write", errno.ENOSPC), ("fsync", errno.EIO),
                                            ("replace", errno.EXDEV), ("open", errno.EACCES)])
def test_failed_write_keeps_the_old_file_removes_the_temp_and_names_target_and_reason(
        tmp_path, monkeypatch, function, code):
    target = tmp_path / "result.json"
    target.write_text("previous")
    monkeypatch.setattr(atomic_files.os, function, _failing(function, code))
    with pytest.raises(OutputWriteError) as caught:
        atomic_write_text(target, "new content")
    monkeypatch.undo()
    message = str(caught.value)
    assert str(target) in message and os.strerror(code) in message and errno.errorcode[code] in message
    assert isinstance(caught.value, ScribblesegError) and isinstance(caught.value.__cause__, OSError)
    assert isinstance(caught.value, OSError)  # callers that catch OSError around a write still do
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_interrupted_write_removes_the_temp_and_is_not_converted(tmp_path, monkeypatch):
    def interrupt(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(atomic_files.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "x.bin", b"abc")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_disk_full_during_data_synth_is_one_error_line_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_files.os, "write", _failing("write", errno.ENOSPC))
    result = RUNNER.invoke(app, ["data", "synth", str(tmp_path / "syn"), "--num-train", "1", "--num-val", "1",
                                 "--size", "32"])
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "train_00000.png" in lines[0] and "No space left on device" in lines[0]
    assert not [p for p in (tmp_path / "syn").rglob("*") if p.is_file()]


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)
    monkeypatch.setattr(atomic_files.os, "fsync", spy)
    atomic_write_bytes(tmp_path / "f.bin", b"data")
    assert synced == [False, True]  # the file's data, then the folder entry


def test_parent_that_is_a_file_is_an_output_dir_error(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(OutputDirError, match="blocker"):
        atomic_write_bytes(blocker / "f.bin", b"data")
    with pytest.raises(OutputDirError, match="not a folder"):
        ensure_writable_dir(blocker)
    assert issubclass(OutputDirError, OutputWriteError)


def test_remove_stale_temp_files_deletes_only_orphaned_temp_files(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    orphans = []

    def killed(fd):  # the process dies after creating its temp file: nothing cleans it up
        orphans.append(fd)
        raise SystemExit
    for name in ("last.safetensors", "metrics.json"):
        monkeypatch.setattr(atomic_files.os, "unlink", lambda path: None)
        monkeypatch.setattr(atomic_files.os, "fsync", killed)
        with pytest.raises(SystemExit):
            atomic_write_bytes(folder / name, b"partial")
        monkeypatch.undo()
    keep = [folder / "a.tmp", folder / ".hidden", folder / ".notes.txt.tmp", folder / "last.safetensors.x.tmp"]
    for path in keep:
        path.write_text("user file")
    (folder / ".dir.0123456789abcdef.tmp").mkdir()
    (folder / "sub").mkdir()
    nested = folder / "sub" / ".deep.png.0123456789abcdef.tmp"
    nested.write_text("orphan")
    stale = sorted(p for p in folder.iterdir() if p.is_file() and p not in keep)
    assert len(stale) == 2 and all(p.name.endswith(".tmp") for p in stale)

    assert remove_stale_temp_files(folder) == stale
    assert all(p.exists() for p in keep) and nested.exists() and (folder / ".dir.0123456789abcdef.tmp").is_dir()
    assert remove_stale_temp_files(folder, recursive=True) == [nested]
    assert remove_stale_temp_files(tmp_path / "missing") == []
