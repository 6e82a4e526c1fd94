"""Opening a run folder for ``train``: create, lock, decide whether the start is allowed, clean up after it.

:func:`open_run_folder` (rank 0, before the data or the model is built):

1. creates ``--work-dir`` if needed (remembering whether it did) and checks that it is writable;
2. takes its lock (:class:`~scribbleseg.engine.runs.lock.RunLock` on ``train.lock``): a second ``train``
   into the same folder is an error naming the holder's pid;
3. checks what the folder holds (a *run folder* has ``run.json``, or a ``last`` checkpoint for runs made
   before the marker; the lock file alone counts as empty):

   =========================  =============  =========================  ==============================
   folder                     plain start    ``--overwrite``            ``--resume``
   =========================  =============  =========================  ==============================
   missing or empty           start          start                      error: nothing to resume
   a run folder               error          start; the previous run's  continue (error when it has
                                             files are deleted          no ``last`` checkpoint)
   anything else              error          start; files of the same   error: nothing to resume
                                             names are replaced
   =========================  =============  =========================  ==============================

4. removes orphaned temporary files of killed writers (``.<name>.<hex>.tmp`` in the folder, in
   ``checkpoints/`` and in ``figures/``).

:meth:`RunFolder.begin` (once the setup succeeded) deletes the previous run's files on ``--overwrite`` and
writes ``run.json``; :meth:`RunFolder.abandon` (a start that failed before its first step) deletes the
folder when this start created it (and the empty parents it created, e.g. ``runs/``), or empties it again
when it was empty, so that a failed command leaves
no half-made run folder; :meth:`RunFolder.close` releases the lock.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from scribbleseg import __version__
from scribbleseg.atomic_files import atomic_write_text, describe_os_error, ensure_writable_dir, remove_stale_temp_files
from scribbleseg.engine.runs.checkpoint import read_checkpoint_header
from scribbleseg.engine.runs.layout import RunLayout
from scribbleseg.engine.runs.lock import RunLock
from scribbleseg.errors import CheckpointError, ConfigError, OutputWriteError

MARKER_FORMAT = 1


class RunFolderError(ConfigError):
    """``--work-dir`` cannot be used as asked (holds another run, is not a run folder, ...)."""


def _remove(path: Path) -> None:
    """Delete a file or a folder tree (OutputWriteError naming it when that fails)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as err:
        raise OutputWriteError(f"cannot delete {path}: {describe_os_error(err)}") from err


def describe_last_checkpoint(layout: RunLayout) -> str:
    """``"checkpoints/last.safetensors at step 120"`` (or why there is none) for messages."""
    if not layout.last.is_file():
        return "no checkpoint saved yet"
    try:
        step = read_checkpoint_header(layout.last)[1].get("step")
    except CheckpointError:
        step = None
    return f"{layout.last}" + (f" at step {step}" if step is not None else "")


@dataclass
class RunFolder:
    """A locked run folder of one ``train`` start (see the module docstring)."""

    layout: RunLayout
    lock: RunLock
    created: bool
    was_empty: bool
    replaces_run: bool
    created_parents: tuple[Path, ...] = ()  # folders above the run folder this start created, innermost first

    def begin(self, run_name: str, details: dict[str, object] | None = None) -> None:
        """Delete the previous run's files (``--overwrite`` of a run folder) and write ``run.json``
        (``details``, e.g. the files ``--skip-bad`` left out, join it; on ``--resume`` they replace the
        keys of the same names)."""
        if self.replaces_run:
            for path in self.layout.previous_run_files():
                _remove(path)
            self.replaces_run = False
        if not self.layout.marker.is_file():
            atomic_write_text(self.layout.marker, json.dumps({
                "scribbleseg_run": MARKER_FORMAT, "name": run_name, "scribbleseg_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(details or {})}, indent=2) + "\n")
        elif details:
            try:
                marker = json.loads(self.layout.marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                marker = {"scribbleseg_run": MARKER_FORMAT, "name": run_name}
            atomic_write_text(self.layout.marker, json.dumps({**marker, **details}, indent=2) + "\n")

    def abandon(self) -> None:
        """Undo a start that failed before its first step: delete the folder if this start created it,
        empty it if it was empty; then release the lock."""
        try:
            if self.created:
                shutil.rmtree(self.layout.root, ignore_errors=True)
                for parent in self.created_parents:  # e.g. runs/ made for runs/<name>, if still empty
                    try:
                        parent.rmdir()
                    except OSError:
                        break
            elif self.was_empty:
                for entry in list(self.layout.root.iterdir()):
                    _remove(entry)
        finally:
            self.close()

    def close(self) -> None:
        """Release the lock."""
        self.lock.release()


def _holds_nothing(layout: RunLayout) -> bool:
    return all(entry.name == layout.lock.name for entry in layout.root.iterdir())


def _check_start(layout: RunLayout, resume: bool, overwrite: bool) -> bool:
    """Whether this start replaces an earlier run (RunFolderError / CheckpointError when not allowed)."""
    is_run = layout.is_run_folder()
    if resume:
        if not (layout.last_state.is_file() or layout.last.is_file()):
            raise CheckpointError(f"nothing to resume in {layout.root}: {layout.last} does not exist")
        return False
    if _holds_nothing(layout):
        return False
    if is_run:
        if not overwrite:
            raise RunFolderError(
                f"{layout.root} already holds a run ({describe_last_checkpoint(layout)}); pass --resume to continue it, "
                "--overwrite to start afresh (its checkpoints, metrics, TensorBoard logs and figures are "
                "deleted), or choose another --work-dir")
        return True
    if not overwrite:
        raise RunFolderError(
            f"{layout.root} is not empty and is not a scribbleseg run folder (it has no {layout.marker.name}); "
            "choose a new or empty --work-dir, or pass --overwrite to train into it anyway (its config.yaml, "
            "metrics.jsonl, checkpoints/, tensorboard/ and figures/ are then replaced)")
    return False


def open_run_folder(root: str | Path, resume: bool = False, overwrite: bool = False) -> RunFolder:
    """Create, lock and check the run folder ``root`` (see the module docstring)."""
    layout = RunLayout(Path(root))
    created = not layout.root.exists()
    missing_parents = tuple(parent for parent in layout.root.absolute().parents if not parent.exists())
    ensure_writable_dir(layout.root)
    lock = RunLock(layout.lock)
    try:
        lock.acquire()
        was_empty = _holds_nothing(layout)
        replaces_run = _check_start(layout, resume, overwrite)
        for folder in (layout.root, layout.checkpoints, layout.figures):
            remove_stale_temp_files(folder)
    except BaseException:
        if lock.held:  # never delete a folder whose lock another process holds
            RunFolder(layout, lock, created, False, False, missing_parents).abandon()
        raise
    return RunFolder(layout, lock, created, was_empty, replaces_run, missing_parents)
