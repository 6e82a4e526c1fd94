"""An exclusive lock on a run folder: at most one ``train`` process writes into a run folder.

:meth:`RunLock.acquire` takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on the lock file (``<run>/train.lock``)
and writes the holder's pid into it; a second process gets :class:`RunFolderBusyError` naming the
folder and the holder's pid. :meth:`RunLock.release` deletes the file and closes it. The kernel drops
the lock when the process dies (SIGKILL included), so a lock file left behind by a killed run never
blocks a later one. A process that locked a file which was deleted meanwhile sees that it is no longer
the file at the path and locks the new one instead, so two processes never hold "the" lock at once.
Where ``fcntl`` does not exist (Windows) no lock is taken.
"""

from __future__ import annotations

import os
from pathlib import Path

from scribbleseg.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class RunFolderBusyError(ConfigError):
    """Another process holds the run folder's lock."""


def _holder_pid(fd: int) -> str:
    """The pid the holder wrote into the lock file, or ``"unknown"``."""
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


class RunLock:
    """``flock`` on ``path``: :meth:`acquire` (non-blocking), :meth:`release`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock; RunFolderBusyError naming the folder and the holder's pid when it is taken."""
        if fcntl is None or self._fd is not None:
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _holder_pid(fd)
                os.close(fd)
                raise RunFolderBusyError(
                    f"run folder {self.path.parent} is in use by another scribbleseg train process (pid {pid}, "
                    f"lock file {self.path.name}); wait for it to finish or stop it, or choose another "
                    "--work-dir") from None
            if self._is_current_file(fd):
                break
            os.close(fd)  # the file was deleted and made anew between open and flock: lock the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def _is_current_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        """Delete the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            if self._is_current_file(self._fd):
                self.path.unlink()
        except OSError:
            pass  # the folder was deleted or became read-only: closing still drops the lock
        finally:
            os.close(self._fd)
            self._fd = None
