"""Training curves of a run from its ``metrics.jsonl``: ``figures/{loss,miou,lr}.png``.

Figures are drawn with matplotlib's object API on an Agg canvas (no global backend switch, no display
needed), encoded to PNG in memory and written atomically. Rows, as written by the trainer:

* training rows ``{"step", "epoch", "phase", "lr", "loss", "loss_<part>", ...}``: every ``loss*`` key is
  plotted, whatever parts the method reports;
* validation rows ``{"step", "val/<head>/miou", ...}`` (one key per evaluated head).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scribbleseg.atomic_files import atomic_write_bytes
from scribbleseg.engine.runs.metrics_file import read_metrics
from scribbleseg.engine.runs.layout import RunLayout
from scribbleseg.errors import DataError

__all__ = ["plot_run", "plot_loss_curves", "plot_miou_curves", "plot_lr_curve", "save_figure"]

LOSS_PREFIX = "loss"
VAL_PREFIX = "val/"
VAL_SUFFIX = "/miou"


def _series(rows: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the rows having a finite numeric ``key`` and a ``step``."""
    points = [(row["step"], row[key]) for row in rows
              if isinstance(row.get(key), (int, float)) and isinstance(row.get("step"), (int, float))
              and math.isfinite(row[key])]
    if not points:
        return np.empty(0), np.empty(0)
    steps, values = zip(*points)
    return np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)


def _phase_starts(rows: Sequence[dict]) -> list[tuple[float, str]]:
    """(step, phase name) where the training phase changes (warm-up -> local -> global)."""
    starts: list[tuple[float, str]] = []
    previous = None
    for row in rows:
        phase = row.get("phase")
        if isinstance(phase, str) and phase != previous and isinstance(row.get("step"), (int, float)):
            if previous is not None:
                starts.append((float(row["step"]), phase))
            previous = phase
    return starts


def save_figure(figure: Figure, path: Path) -> Path:
    """Encode ``figure`` as PNG in memory and write it to ``path`` atomically."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _finish_step_plot(figure: Figure, axes, ylabel: str, out_path: str | Path, *, title: str | None = None,
                      legend: bool = False) -> Path:
    """Label a curve-against-step plot the same way for every run curve, then save it atomically."""
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if legend:
        axes.legend(fontsize=8)
    return save_figure(figure, Path(out_path))


def _loss_keys(rows: Sequence[dict]) -> list[str]:
    """``loss`` first, then every ``loss_<part>`` key that occurs, in order of appearance."""
    keys: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key == LOSS_PREFIX or key.startswith(LOSS_PREFIX + "_"):
                keys[key] = None
    return sorted(keys, key=lambda key: key != LOSS_PREFIX)


def plot_loss_curves(rows: Sequence[dict], out_path: str | Path) -> Path | None:
    """Training loss and its parts against the step (log y axis when all positive); None if no data."""
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot(1, 1, 1)
    minima = []
    for key in _loss_keys(rows):
        steps, values = _series(rows, key)
        if steps.size:
            axes.plot(steps, values, label=key, linewidth=1.2 if key == LOSS_PREFIX else 0.9)
            minima.append(values.min())
    if not minima:
        return None
    for step, phase in _phase_starts(rows):
        axes.axvline(step, color="grey", linestyle=":", linewidth=0.8)
        axes.annotate(phase, (step, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                      rotation=90, va="top", ha="right", color="grey")
    if min(minima) > 0:
        axes.set_yscale("log")
    return _finish_step_plot(figure, axes, "loss", out_path, title="training loss", legend=True)


def _validation_keys(rows: Sequence[dict]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key.startswith(VAL_PREFIX) and key.endswith(VAL_SUFFIX):
                keys[key] = None
    return list(keys)


def plot_miou_curves(rows: Sequence[dict], out_path: str | Path) -> Path | None:
    """Validation mIoU (in %) of every head against the step; None if the run has no validation row."""
    keys = _validation_keys(rows)
    if not keys:
        return None
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot(1, 1, 1)
    for key in keys:
        steps, values = _series(rows, key)
        if steps.size:
            head = key[len(VAL_PREFIX): -len(VAL_SUFFIX)]
            scale = 100.0 if values.max() <= 1.0 else 1.0
            axes.plot(steps, values * scale, marker="o", markersize=3, label=head)
    return _finish_step_plot(figure, axes, "mIoU (%)", out_path, title="validation mIoU", legend=True)


def plot_lr_curve(rows: Sequence[dict], out_path: str | Path) -> Path | None:
    """Learning rate against the step; None if no row has ``lr``."""
    steps, values = _series(rows, "lr")
    if not steps.size:
        return None
    figure = Figure(figsize=(7, 3))
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(steps, values)
    return _finish_step_plot(figure, axes, "learning rate", out_path)


def plot_run(run_dir: str | Path) -> list[Path]:
    """Draw ``figures/{loss,miou,lr}.png`` of a run folder from its ``metrics.jsonl``.

    Returns the written paths (a figure without data is skipped). Raises :class:`DataError` when the
    run folder or its ``metrics.jsonl`` is missing or holds no usable row.
    """
    layout = RunLayout(Path(run_dir))
    if not layout.root.is_dir():
        raise DataError(f"run folder not found: {layout.root}")
    rows = read_metrics(layout.metrics)
    written = [path for path in (
        plot_loss_curves(rows, layout.figures / "loss.png"),
        plot_miou_curves(rows, layout.figures / "miou.png"),
        plot_lr_curve(rows, layout.figures / "lr.png"),
    ) if path is not None]
    if not written:
        raise DataError(f"{layout.metrics} has no loss, lr or validation mIoU values to plot")
    return written
