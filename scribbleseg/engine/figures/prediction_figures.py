"""Prediction grids like the paper's Fig. 4: image | scribbles | predictions | ground truth.

:func:`overlay_grid` draws any label maps; :func:`plot_run_predictions` draws a run's checkpoint on its
first validation images (``figures/predictions.png``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from scribbleseg.engine.prediction.palette_io import blend_overlay
from scribbleseg.engine.figures.run_figures import save_figure
from scribbleseg.engine.runs.layout import RunLayout
from scribbleseg.errors import DataError

__all__ = ["overlay_grid", "plot_run_predictions"]

LEGEND_ROW_INCHES = 0.28  # height of one row of the colour legend below a grid


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
    class_names: Sequence[str] | None = None,
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
        class_names: names of the palette's classes: a colour legend of the classes shown goes below the grid.
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
    colour_table = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    shown = _shown_classes([*columns.values(), *([scribbles] if scribbles is not None else [])], len(colour_table)) \
        if class_names is not None else []
    legend_columns = max(2 * len(titles), 4)
    legend_inches = LEGEND_ROW_INCHES * (-(-len(shown) // legend_columns)) + (0.1 if shown else 0.0)
    figure = Figure(figsize=(2.4 * len(titles), 2.2 * count + legend_inches))
    grid = figure.subplots(count, len(titles), squeeze=False)
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
    if shown:
        names = list(class_names or [])
        handles = [Patch(facecolor=colour_table[index] / 255.0, edgecolor="black",
                         label=names[index] if index < len(names) else str(index)) for index in shown]
        figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), legend_columns), fontsize=8,
                      frameon=False)
    figure.tight_layout(rect=(0.0, legend_inches / (2.2 * count + legend_inches), 1.0, 1.0))
    return save_figure(figure, Path(out_path))


def _shown_classes(columns: Sequence[Sequence[np.ndarray | torch.Tensor]], num_classes: int) -> list[int]:
    """Class ids ``< num_classes`` that occur in any of the label maps (the legend's entries)."""
    seen = np.zeros(num_classes, dtype=bool)
    for maps in columns:
        for label in maps:
            values = label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
            ids = np.unique(values)
            seen[ids[(ids >= 0) & (ids < num_classes)].astype(np.int64)] = True
    return [int(index) for index in np.flatnonzero(seen)]


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


@torch.no_grad()
def plot_run_predictions(
    run_dir: str | Path,
    *,
    class_source: str | None = None,
    num_images: int = 4,
    device: str | torch.device = "cpu",
) -> tuple[Path | None, str]:
    """Overlay grid of a run's checkpoint on its first validation images: ``figures/predictions.png``.

    Columns: image | scribbles (when the data set has them) | the basic head | the model's last runnable
    class-dependent head (the most refined prediction the method offers), classes from ``class_source``
    (default: ``head`` when the model has an image classifier, else ``threshold``) | ground truth. Returns ``(path, what was drawn)`` or ``(None, why not)`` when the run has no checkpoint
    or its validation data cannot be opened.
    """
    from scribbleseg.data import read_label_map
    from scribbleseg.engine.runs.checkpoint import load_model_checkpoint
    from scribbleseg.engine.build.data_factory import build_eval_dataset
    from scribbleseg.engine.inference.dispatch import infer_labels
    from scribbleseg.engine.inference.model import MethodModel
    from scribbleseg.engine.inference.probabilities import ImageFacts, class_dependent, resolve_heads
    from scribbleseg.engine.inference.settings import InferenceSettings
    from scribbleseg.engine.prediction.palette_io import denormalize_image
    from scribbleseg.methods import BASIC_HEAD
    from scribbleseg.methods.class_sources import parse_class_source

    layout = RunLayout(Path(run_dir))
    checkpoint = layout.best_or_last()
    if checkpoint is None:
        return None, f"no checkpoint in {layout.checkpoints}"
    method, cfg, _ = load_model_checkpoint(checkpoint, map_location=device)
    try:
        info, dataset = build_eval_dataset(cfg)
    except DataError as err:
        return None, f"validation data not available ({err})"
    model = MethodModel(method, info.class_names, info.palette)
    source = model.class_source(parse_class_source(class_source, info.class_names) if class_source is not None
                                else None)
    runnable, _ = resolve_heads(model, None)
    dependent = class_dependent(model, runnable)
    heads = (BASIC_HEAD,) + tuple(dependent[-1:])
    count = min(num_images, len(dataset))
    if count == 0:
        return None, "the validation split is empty"
    items = [dataset[index] for index in range(count)]
    with model.eval_mode():
        output = infer_labels(model, [item["image"] for item in items],
                              InferenceSettings(heads=heads, class_source=source),
                              ImageFacts(names=[item["name"] for item in items],
                                         given=torch.stack([item["classes"] for item in items])))
    columns: dict[str, list] = {BASIC_HEAD: [label.cpu() for label in output.labels[BASIC_HEAD]]}
    for head in heads[1:]:
        columns[f"{head} ({source.spec})"] = [label.cpu() for label in output.labels[head]]
    columns["ground truth"] = [item["mask"] for item in items]
    samples = dataset.samples[:count]
    scribbles = None
    if all(sample.scribble is not None and Path(sample.scribble).is_file() for sample in samples):
        scribbles = [read_label_map(sample.scribble, info.num_classes, info.ignore_index) for sample in samples]
    path = overlay_grid([denormalize_image(item["image"]) for item in items], columns, info.palette,
                        layout.figures / "predictions.png", scribbles=scribbles,
                        row_names=[item["name"] for item in items], ignore_index=info.ignore_index,
                        class_names=info.class_names)
    return path, f"{count} validation image(s), columns: {', '.join(columns)}"
