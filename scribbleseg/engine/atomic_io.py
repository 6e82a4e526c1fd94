"""Atomic file writes for the engine: :mod:`scribbleseg.atomic_files` plus a writable-folder check.

A reader therefore sees either the old file or the complete new one, never a half-written file (e.g. a
``last.safetensors`` cut short by a crash or a kill during saving). Every engine file goes through here.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from scribbleseg.atomic_files import atomic_write_bytes as write_bytes_atomically
from scribbleseg.atomic_files import ensure_writable_dir  # noqa: F401  re-exported until folded in
from scribbleseg.errors import OutputDirError  # noqa: F401  re-exported until folded in


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (``scribbleseg.atomic_files``), after checking that the
    folder can be written (:class:`OutputDirError` naming it otherwise)."""
    target = Path(path)
    ensure_writable_dir(target.parent)
    return write_bytes_atomically(target, data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically.

    Only plain containers of tensors / numbers / strings should be saved here, so that the file can be
    read back with ``torch.load(..., weights_only=True)``.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())
