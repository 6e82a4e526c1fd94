"""What a run reports: ``metrics.jsonl`` rows, TensorBoard scalars and a progress bar.

Rows of ``metrics.jsonl`` (one JSON object per line, read by :func:`scribbleseg.engine.figures.plot_run`):

* training, every ``train.log_interval`` iterations:
  ``{"step", "epoch", "phase", "lr", "loss", "loss_pce", "loss_con_local", "loss_con_global", ...}``
  (loss values are averages over the interval and over ranks; ``skipped_nonfinite`` counts skipped steps);
* validation: ``{"step", "val/<head>/miou", ...}``.

``step`` counts completed iterations. On ``--resume`` rows after the resumed step are dropped, so the
file matches the run that continues. Only rank 0 creates a :class:`RunLogger` that writes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tqdm import tqdm

from scribbleseg.engine.atomic_io import atomic_write_text

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All rows of ``<run_dir>/metrics.jsonl`` (an empty list when the file does not exist)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line after a crash: everything before it is intact
    return rows


def _json_safe(value: Any) -> Any:
    """Floats that JSON can hold (NaN / inf become strings)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class RunLogger:
    """Appends metric rows to ``metrics.jsonl`` and TensorBoard; shows a tqdm progress bar.

    Args:
        run_dir: the run folder.
        total_steps: iterations of the whole run (progress bar length).
        start_step: completed iterations before this session (``--resume``); later rows are dropped.
        enabled: False on ranks other than 0 (nothing is written or shown).
        progress: show the progress bar.
    """

    def __init__(self, run_dir: str | Path, total_steps: int, start_step: int = 0, enabled: bool = True,
                 progress: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._writer = None
        self._bar = None
        if not enabled:
            return
        self.metrics_path = self.run_dir / METRICS_FILE
        kept = [row for row in read_metrics(self.run_dir) if int(row.get("step", 0)) <= start_step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(row) + "\n" for row in kept))
        from torch.utils.tensorboard import SummaryWriter  # heavy import, rank 0 only

        self._writer = SummaryWriter(log_dir=str(self.run_dir / TENSORBOARD_DIR), purge_step=start_step + 1)
        if progress:
            self._bar = tqdm(total=total_steps, initial=start_step, unit="it", dynamic_ncols=True,
                             desc="train", leave=True)

    def _append(self, row: dict[str, Any]) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({k: _json_safe(v) for k, v in row.items()}) + "\n")

    def log_train(self, row: dict[str, Any]) -> None:
        """One training row (see module docstring); also updates the progress bar's text."""
        if not self.enabled:
            return
        self._append(row)
        step = int(row["step"])
        for key, value in row.items():
            if key not in ("step", "epoch", "phase") and isinstance(value, (int, float)):
                self._writer.add_scalar(f"train/{key}", value, step)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{row['loss']:.4f}", phase=row["phase"], lr=f"{row['lr']:.2e}",
                                  refresh=False)

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        """One validation row ``{"step", "val/<head>/miou", ...}``."""
        if not self.enabled:
            return
        self._append({"step": step, **metrics})
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)
        if self._bar is not None:
            self._bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))

    def advance(self, steps: int = 1) -> None:
        """Move the progress bar on."""
        if self._bar is not None:
            self._bar.update(steps)

    def message(self, text: str) -> None:
        """Print a line without breaking the progress bar (rank 0 only)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        """Flush and close the TensorBoard writer and the progress bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
