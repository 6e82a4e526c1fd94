"""Atomic file writes shared by every layer: THE one API for writing output files.

A file is written to a temporary file in the destination folder (``.<name>.<16 hex>.tmp``), fsynced,
moved into place with ``os.replace`` and the folder is fsynced (where the platform supports it), so a
reader sees the old file or the complete new one, never a half-written file, even after a crash.

* Permissions follow the umask like any ``open(path, "w")``: the temporary file is created with mode
  ``0o666`` and the kernel applies the umask (and a folder's default ACL) when it creates it, so the
  final file is ``0o666 & ~umask`` (0o644 under umask 022). Nothing reads or changes the process umask,
  so there is no race with other threads.
* A failed write (disk full, I/O error, no permission, ...) removes the temporary file, leaves any
  previous file untouched and raises :class:`~scribbleseg.errors.OutputWriteError` naming the file and
  the reason (:class:`~scribbleseg.errors.OutputDirError` when the folder cannot be created). An
  interrupt (``KeyboardInterrupt``) also removes the temporary file and propagates unchanged.
* A process killed mid-write leaves its temporary file behind: :func:`remove_stale_temp_files`
  deletes such orphans (call it on a folder no other live process is writing into, e.g. at the start
  of a run).
* Whole contents go through :func:`atomic_write_bytes` / :func:`atomic_write_text` /
  :func:`atomic_copy_file`; a file too large to hold in memory is written piecewise (``os.pwrite``) on
  the descriptor :func:`atomic_output` yields, with the same guarantees.

Like ``scribbleseg.errors`` this module imports nothing else from the package, so ``data`` (label
PNGs, ``dataset.yaml``) and ``engine`` (checkpoints, results, predictions) write through the same code.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

from scribbleseg.errors import OutputDirError, OutputWriteError

_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")
_MAX_NAME_IN_TEMP = 200  # keeps ".<name>.<16 hex>.tmp" under the usual 255-byte file-name limit
_COPY_CHUNK = 16 * 1024 * 1024
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
                 | getattr(os, "O_CLOEXEC", 0))


def describe_os_error(err: OSError) -> str:
    """``"No space left on device (ENOSPC)"``: the reason of ``err`` with its errno name."""
    name = errno.errorcode.get(err.errno) if err.errno is not None else None
    reason = err.strerror or str(err) or type(err).__name__
    return f"{reason} ({name})" if name else reason


def _create_folder(folder: Path, purpose: str) -> Path:
    """``mkdir -p folder``; OutputDirError naming it (and ``purpose``) when that is impossible."""
    if folder.exists() and not folder.is_dir():
        raise OutputDirError(f"output path {folder} exists and is not a folder{purpose}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputDirError(f"cannot create output folder {folder}{purpose}: {describe_os_error(err)}") from err
    return folder


def ensure_writable_dir(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and parents) if needed and check that files can be created in it.

    Raises :class:`OutputDirError` naming the folder when it cannot be created or is not writable.
    """
    path = _create_folder(Path(folder), "")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise OutputDirError(f"output folder {path} is not writable: {describe_os_error(err)}") from err
    return path


def temp_path_for(target: Path) -> Path:
    """A fresh temporary name next to ``target``: ``.<name>.<16 random hex>.tmp``."""
    return target.with_name(f".{target.name[:_MAX_NAME_IN_TEMP]}.{secrets.token_hex(8)}.tmp")


def _create_temp_file(target: Path) -> tuple[int, Path]:
    """Open a new temporary file next to ``target`` with mode 0o666 (the kernel applies the umask)."""
    while True:
        temp = temp_path_for(target)
        try:
            return os.open(temp, _CREATE_FLAGS, 0o666), temp
        except FileExistsError:  # 2**64 names: only a collision with another writer, try another
            continue


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """``os.write`` until every byte is written (a write may be partial)."""
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "the file system accepted no more bytes")
        view = view[written:]


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable by fsyncing the folder; best effort (Windows and some file systems
    cannot, and the file's own data is already on disk by then)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # already gone, or the folder became unwritable: nothing more can be done


def _write_temp_file(target: Path, fill: Callable[[int], None]) -> Path:
    """A complete, fsynced temporary file beside ``target`` written by ``fill(fd)`` (removed on failure)."""
    fd, temp = _create_temp_file(target)
    try:
        try:
            fill(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _remove_quietly(temp)
        raise
    return temp


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[int]:
    """Write one file atomically through a raw file descriptor: ``with atomic_output(p) as fd: ...``.

    Yields the descriptor of a fresh temporary file beside ``path`` (parent folders created) for
    ``os.write`` / ``os.pwrite`` (random access, e.g. a large array written band by band without
    holding it in memory). When the block ends normally the file is fsynced and moved onto ``path``;
    when it raises, the temporary file is removed and ``path`` is untouched. An ``OSError`` (from the
    block or the commit) becomes :class:`OutputWriteError` naming ``path``; anything else propagates.
    """
    target = Path(path)
    _create_folder(target.parent, f" (for {target.name})")
    temp: Path | None = None
    try:
        fd, temp = _create_temp_file(target)
        try:
            yield fd
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
        temp = None
    except OutputWriteError:
        raise
    except OSError as err:
        raise OutputWriteError(f"cannot write {target}: {describe_os_error(err)}") from err
    finally:
        if temp is not None:
            _remove_quietly(temp)
    _fsync_folder(target.parent)


def _atomic_write(target: Path, fill: Callable[[int], None]) -> Path:
    """Create a temp file beside ``target``, let ``fill(fd)`` write it, fsync, rename onto ``target``."""
    return _atomic_write_group([(target, fill)])[0]


def _atomic_write_group(items: list[tuple[Path, Callable[[int], None]]]) -> list[Path]:
    """Write every temporary file, then rename them in order; on failure remove the ones not renamed."""
    for target, _ in items:
        _create_folder(target.parent, f" (for {target.name})")
    temps: list[Path | None] = []
    target = items[0][0]
    try:
        for target, fill in items:
            temps.append(_write_temp_file(target, fill))
        for index, (target, _) in enumerate(items):
            os.replace(temps[index], target)  # type: ignore[arg-type]
            temps[index] = None
    except OSError as err:
        raise OutputWriteError(f"cannot write {target}: {describe_os_error(err)}") from err
    finally:
        for temp in temps:
            if temp is not None:
                _remove_quietly(temp)
    for folder in dict.fromkeys(target.parent for target, _ in items):
        _fsync_folder(folder)
    return [target for target, _ in items]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically, creating the parent folder if needed; returns the path.

    Raises :class:`OutputWriteError` (the file and the reason) when the write fails and
    :class:`OutputDirError` when the parent folder cannot be created.
    """
    return _atomic_write(Path(path), lambda fd: _write_all(fd, data))


def atomic_copy_file(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy the content of ``source`` (symlinks followed) to ``path`` atomically, streamed; returns the path.

    The result is a plain file with ``source``'s bytes, never a link (e.g. out of a Hugging Face cache).
    """
    def fill(fd: int) -> None:
        with open(source, "rb") as reader:
            while chunk := reader.read(_COPY_CHUNK):
                _write_all(fd, chunk)

    return _atomic_write(Path(path), fill)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding))


def remove_stale_temp_files(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Delete the temporary files (``.<name>.<16 hex>.tmp``) that killed writers left in ``folder``.

    Only regular files with exactly that name pattern are removed; other files, folders and symlinks are
    left alone. Call it only when no other live process writes into ``folder`` (it would delete that
    process's file in progress). Returns the removed paths, sorted; ``[]`` when ``folder`` does not exist.
    Raises :class:`OutputWriteError` when an orphan cannot be removed.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    candidates = root.rglob(".*.tmp") if recursive else root.glob(".*.tmp")
    removed = []
    for path in sorted(candidates):
        if not _TEMP_NAME.match(path.name) or path.is_symlink() or not path.is_file():
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise OutputWriteError(f"cannot remove stale temporary file {path}: {describe_os_error(err)}") from err
        removed.append(path)
    return removed


def atomic_write_files(files: Sequence[tuple[str | os.PathLike[str], bytes | bytearray | memoryview]]) -> list[Path]:
    """Write several files as one step: a failed write replaces none of them.

    Every file is first written to its own temporary file and fsynced; only when all are complete are they
    renamed into place, in the order given (then their folders are fsynced). A failed write (disk full,
    ...) removes every temporary file, leaves every previous file untouched and raises
    :class:`OutputWriteError` naming the file. A process killed between two renames leaves the earlier
    files new and the later ones old (and the later ones' complete temporary files): list the files in an
    order the reader can repair from (the one that holds everything first). Returns the paths.
    """
    return _atomic_write_group([(Path(path), (lambda fd, data=data: _write_all(fd, data))) for path, data in files])
