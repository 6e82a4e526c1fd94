"""What a run reports: ``metrics.jsonl`` rows, TensorBoard scalars and a progress bar.

Rows of ``metrics.jsonl`` (one JSON object per line, read by :func:`scribbleseg.engine.figures.run_figures.plot_run`):

* training, every ``train.log_interval`` iterations: ``{"step", "epoch", "phase", "lr", "loss",
  "loss_<part>", ..., <method summary>, "skipped_nonfinite", "it_per_s"}`` (the loss parts are the
  method's, averaged over the interval and over ranks; ``phase`` only for methods that have phases);
* validation: ``{"step", "val/<head>/miou", ...}``.

``step`` counts completed iterations. On ``--resume`` rows after the resumed step are dropped, so the
file matches the run that continues. Only rank 0 creates a :class:`RunLogger` that writes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from scribbleseg.atomic_files import atomic_write_text, describe_os_error
from scribbleseg.engine.runs.metrics_file import read_metrics
from scribbleseg.engine.runs.layout import RunLayout
from scribbleseg.engine.runtime.progress import progress_bar
from scribbleseg.errors import OutputWriteError


def _json_safe(value: Any) -> Any:
    """Floats that JSON can hold (NaN / inf become strings)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _tensorboard_error(folder: Path, err: OSError) -> OutputWriteError:
    return OutputWriteError(f"cannot write the TensorBoard log in {folder}: {describe_os_error(err)}")


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
        layout = RunLayout(self.run_dir)
        self.metrics_path = layout.metrics
        kept = [row for row in read_metrics(self.metrics_path, missing_ok=True)
                if int(row.get("step", 0)) <= start_step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(row) + "\n" for row in kept))
        from torch.utils.tensorboard import SummaryWriter  # heavy import, rank 0 only

        try:
            self._writer = SummaryWriter(log_dir=str(layout.tensorboard), purge_step=start_step + 1)
        except OSError as err:
            raise _tensorboard_error(layout.tensorboard, err) from err
        if progress:
            self._bar = progress_bar(total=total_steps, initial=start_step, unit="it", desc="train", leave=True)

    def _append(self, row: dict[str, Any]) -> None:
        """One line onto ``metrics.jsonl`` (OutputWriteError naming it on a full disk, ...)."""
        try:
            with self.metrics_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({k: _json_safe(v) for k, v in row.items()}) + "\n")
        except OSError as err:
            raise OutputWriteError(f"cannot write {self.metrics_path}: {describe_os_error(err)}") from err

    def _scalars(self, values: dict[str, float], step: int) -> None:
        """TensorBoard scalars (its writer thread's I/O errors surface here as OutputWriteError)."""
        try:
            for key, value in values.items():
                self._writer.add_scalar(key, value, step)
        except OSError as err:
            raise _tensorboard_error(self.run_dir, err) from err

    def log_train(self, row: dict[str, Any]) -> None:
        """One training row (see module docstring); also updates the progress bar's text."""
        if not self.enabled:
            return
        self._append(row)
        self._scalars({f"train/{key}": value for key, value in row.items()
                       if key not in ("step", "epoch", "phase") and isinstance(value, (int, float))}, int(row["step"]))
        if self._bar is not None:
            shown = {"loss": f"{row['loss']:.4f}", "lr": f"{row['lr']:.2e}"}
            if "phase" in row:
                shown["phase"] = row["phase"]
            self._bar.set_postfix(shown, refresh=False)

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        """One validation row ``{"step", "val/<head>/miou", ...}``."""
        if not self.enabled:
            return
        self._append({"step": step, **metrics})
        self._scalars(metrics, step)
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

    def close(self, quiet: bool = False) -> None:
        """Flush and close the TensorBoard writer and the progress bar (idempotent). ``quiet``: a write
        error while flushing is dropped (the run is failing already), else it is an OutputWriteError."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError as err:
                if not quiet:
                    raise _tensorboard_error(self.run_dir, err) from err
