"""Reading ``metrics.jsonl``: one JSON object per line, as the trainer appends them."""

from __future__ import annotations

import json
from pathlib import Path

from scribbleseg.errors import DataError


def read_metrics(path: str | Path, missing_ok: bool = False) -> list[dict]:
    """Parse a ``metrics.jsonl`` file into a list of dicts.

    A truncated last line (a run killed while writing) is skipped; any other malformed line raises
    :class:`DataError` naming the file and line number. A missing file is a DataError, or ``[]`` with
    ``missing_ok``.
    """
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return []
        raise DataError(f"metrics file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows: list[dict] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break
            raise DataError(f"{path}: line {number} is not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number} is not a JSON object")
        rows.append(row)
    return rows
