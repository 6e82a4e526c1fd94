"""Atomic file writes shared by every layer: a temp file in the destination folder, fsynced, then
``os.replace``. A reader sees the old file or the complete new one, never a half-written file.

Like ``scribbleseg.errors`` this module imports nothing from the package, so ``data`` (label PNGs,
``dataset.yaml``) and ``engine`` (checkpoints, results, predictions) write through the same code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def _atomic_handle(target: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temp file beside ``target``, fsynced and renamed onto it on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating the parent folder if needed; returns the path."""
    target = Path(path)
    with _atomic_handle(target) as handle:
        handle.write(data)
    return target


def atomic_copy_file(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy the content of ``source`` (symlinks followed) to ``path`` atomically, streamed; returns the path.

    The result is a plain file with ``source``'s bytes, never a link (e.g. out of a Hugging Face cache).
    """
    target = Path(path)
    with open(source, "rb") as reader, _atomic_handle(target) as handle:
        shutil.copyfileobj(reader, handle, length=16 * 1024 * 1024)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))
