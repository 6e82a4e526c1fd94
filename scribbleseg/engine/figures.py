"""Figures of a run: training curves from ``metrics.jsonl`` and an overlay grid like the paper's Fig. 4.

Figures are drawn with matplotlib's object API on an Agg canvas (no global backend switch, no display
needed), encoded to PNG in memory and written atomically.

``metrics.jsonl`` rows (one JSON object per line), as written by the trainer:

* training rows ``{"step", "epoch", "phase", "lr", "loss", "loss_pce", "loss_con_local", "loss_con_global"}``
* validation rows ``{"step", "val/<head>/miou", ...}`` (one key per evaluated head)
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scribbleseg.engine.atomic_io import atomic_write_bytes
from scribbleseg.engine.palette_io import blend_overlay
from scribbleseg.errors import DataError

__all__ = ["read_metrics", "plot_run", "plot_loss_curves", "plot_miou_curves", "plot_lr_curve",
           "overlay_grid"]

LOSS_KEYS = ("loss", "loss_pce", "loss_con_local", "loss_con_global")
VAL_PREFIX = "val/"
VAL_SUFFIX = "/miou"


def read_metrics(path: str | Path) -> list[dict]:
    """Parse a ``metrics.jsonl`` file into a list of dicts.

    A truncated last line (a run killed while writing) is skipped; any other malformed line raises
    :class:`DataError` naming the file and line number.
    """
    path = Path(path)
    if not path.is_file():
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


def _save_figure(figure: Figure, path: Path) -> Path:
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
    return _save_figure(figure, Path(out_path))


def plot_loss_curves(rows: Sequence[dict], out_path: str | Path) -> Path | None:
    """Training loss and its parts against the step (log y axis when all positive); None if no data."""
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot(1, 1, 1)
    minima = []
    for key in LOSS_KEYS:
        steps, values = _series(rows, key)
        if steps.size:
            axes.plot(steps, values, label=key, linewidth=1.2 if key == "loss" else 0.9)
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
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run folder not found: {run_dir}")
    rows = read_metrics(run_dir / "metrics.jsonl")
    figures_dir = run_dir / "figures"
    written = [path for path in (
        plot_loss_curves(rows, figures_dir / "loss.png"),
        plot_miou_curves(rows, figures_dir / "miou.png"),
        plot_lr_curve(rows, figures_dir / "lr.png"),
    ) if path is not None]
    if not written:
        raise DataError(f"{run_dir / 'metrics.jsonl'} has no loss, lr or validation mIoU values to plot")
    return written


def _as_rgb(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """``[H, W, 3]`` uint8 from a uint8 HWC array or a ``[3, H, W]`` uint8 tensor."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.ndim == 3 and image.shape[0] == 3:
            image = image.permute(1, 2, 0)
        image = image.numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    return image


def overlay_grid(
    images: Sequence[np.ndarray | torch.Tensor],
    columns: Mapping[str, Sequence[np.ndarray | torch.Tensor]],
    palette,
    out_path: str | Path,
    *,
    scribbles: Sequence[np.ndarray | torch.Tensor] | None = None,
    row_names: Sequence[str] | None = None,
    ignore_index: int = 255,
    alpha: float = 0.6,
) -> Path:
    """Grid like the paper's Fig. 4: one row per image, columns image | scribbles | each label column.

    Args:
        images: ``R`` RGB images, uint8 ``[H_r, W_r, 3]``.
        columns: title -> ``R`` label maps ``[H_r, W_r]`` (e.g. baseline, PFA, ground truth), drawn as
            the palette colour blended over the image (``ignore_index`` pixels drawn white).
        palette: RGB triples, one per class.
        out_path: PNG written atomically.
        scribbles: optional ``R`` scribble maps ``[H_r, W_r]`` (``ignore_index`` = unlabeled), drawn
            opaque over a dimmed image.
        row_names: optional label per row (e.g. the image name).
    """
    count = len(images)
    if count == 0:
        raise ValueError("overlay_grid needs at least one image")
    for title, maps in columns.items():
        if len(maps) != count:
            raise ValueError(f"column {title!r} has {len(maps)} maps for {count} images")
    if scribbles is not None and len(scribbles) != count:
        raise ValueError(f"{len(scribbles)} scribble maps for {count} images")
    titles = ["image"] + (["scribbles"] if scribbles is not None else []) + list(columns)
    figure = Figure(figsize=(2.4 * len(titles), 2.2 * count))
    grid = figure.subplots(count, len(titles), squeeze=False)
    colour_table = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    for row in range(count):
        rgb = _as_rgb(images[row])
        panels = [rgb]
        if scribbles is not None:
            dimmed = (rgb.astype(np.float32) * 0.55).astype(np.uint8)
            panels.append(blend_overlay(dimmed, scribbles[row], colour_table, alpha=1.0,
                                        skip_index=ignore_index))
        for maps in columns.values():
            panels.append(_label_panel(rgb, maps[row], colour_table, ignore_index, alpha))
        for column, panel in enumerate(panels):
            axes = grid[row][column]
            axes.imshow(panel, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(titles[column], fontsize=9)
            if column == 0 and row_names is not None:
                axes.set_ylabel(str(row_names[row]), fontsize=7)
    figure.tight_layout()
    return _save_figure(figure, Path(out_path))


def _label_panel(rgb: np.ndarray, label, palette, ignore_index: int, alpha: float) -> np.ndarray:
    """Label colours blended over ``rgb``; ``ignore_index`` pixels white (as VOC's void border)."""
    if isinstance(label, torch.Tensor):
        label = label.detach().cpu().numpy()
    label = np.asarray(label)
    void = label == ignore_index
    safe = np.where(void, 0, label)
    panel = blend_overlay(rgb, safe, palette, alpha=alpha)
    panel[void] = 255
    return panel



def _run_checkpoint(run_dir: Path) -> Path | None:
    for name in ("best.safetensors", "last.safetensors"):
        candidate = run_dir / "checkpoints" / name
        if candidate.is_file():
            return candidate
    return None


@torch.no_grad()
def plot_run_predictions(
    run_dir: str | Path,
    *,
    class_source: str = "threshold:500",
    num_images: int = 4,
    device: str | torch.device = "cpu",
) -> tuple[Path | None, str]:
    """Overlay grid of a run's checkpoint on its first validation images: ``figures/predictions.png``.

    Columns: image | scribbles (when the data set has them) | baseline (the basic head, no prototype
    augmentation) | PFA (the global head when the bank is full, else local, classes from
    ``class_source``) | ground truth. Returns ``(path, what was drawn)`` or ``(None, why not)`` when the
    run has no checkpoint or its validation data cannot be opened.
    """
    from scribbleseg.data import read_label_map
    from scribbleseg.engine.checkpoint import load_model_checkpoint
    from scribbleseg.engine.data_factory import build_eval_dataset
    from scribbleseg.engine.inference import infer_probabilities, resolve_heads
    from scribbleseg.engine.palette_io import denormalize_image
    from scribbleseg.pfa import parse_class_source

    run_dir = Path(run_dir)
    checkpoint = _run_checkpoint(run_dir)
    if checkpoint is None:
        return None, f"no checkpoint in {run_dir / 'checkpoints'}"
    segmentor, cfg, _ = load_model_checkpoint(checkpoint, map_location=device)
    try:
        info, dataset = build_eval_dataset(cfg)
    except DataError as err:
        return None, f"validation data not available ({err})"
    source = parse_class_source(class_source, info.class_names)
    runnable, _ = resolve_heads(segmentor, None)
    pfa_head = "global" if "global" in runnable else ("local" if "local" in runnable else None)
    heads = ("basic",) + ((pfa_head,) if pfa_head else ())
    count = min(num_images, len(dataset))
    if count == 0:
        return None, "the validation split is empty"
    items = [dataset[index] for index in range(count)]
    output = infer_probabilities(segmentor, [item["image"] for item in items], heads=heads, class_source=source,
                                 names=[item["name"] for item in items],
                                 given=torch.stack([item["classes"] for item in items]))
    columns: dict[str, list] = {"baseline": [label.cpu() for label in output.labels("basic")]}
    if pfa_head:
        columns[f"PFA ({pfa_head}, {class_source})"] = [label.cpu() for label in output.labels(pfa_head)]
    columns["ground truth"] = [item["mask"] for item in items]
    samples = dataset.samples[:count]
    scribbles = None
    if all(sample.scribble is not None and Path(sample.scribble).is_file() for sample in samples):
        scribbles = [read_label_map(sample.scribble, info.num_classes, info.ignore_index) for sample in samples]
    path = overlay_grid([denormalize_image(item["image"]) for item in items], columns, info.palette,
                        run_dir / "figures" / "predictions.png", scribbles=scribbles,
                        row_names=[item["name"] for item in items], ignore_index=info.ignore_index)
    return path, f"{count} validation image(s), columns: {', '.join(columns)}"
