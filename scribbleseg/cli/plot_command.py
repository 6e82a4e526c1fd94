"""``scribbleseg plot RUN_DIR``: training curves of a run and, when possible, an overlay grid (Fig. 4 style).

Writes ``RUN_DIR/figures/{loss,miou,lr}.png`` from ``metrics.jsonl`` and, when the run has a checkpoint
and its validation data is reachable, ``RUN_DIR/figures/predictions.png`` (image | scribbles | baseline |
PFA | ground truth).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def plot_command(
    run_dir: Path = typer.Argument(..., help="Run folder written by 'scribbleseg train'."),
    grid: bool = typer.Option(True, "--grid/--no-grid", help="Also draw the prediction overlay grid."),
    classes: Optional[str] = typer.Option(
        None, "--classes", help="Class source of the class-dependent head's column: oracle | head[:TAU] | "
                                "threshold[:N] | file:PATH | none (default: head when the checkpoint has an image "
                                "classifier, else threshold)."),
    num_images: int = typer.Option(4, "--num-images", min=1, help="Rows of the overlay grid."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
) -> None:
    """Draw the loss / mIoU / learning-rate curves of a run (and a prediction overlay grid)."""
    from scribbleseg.engine.runtime.devices import resolve_device
    from scribbleseg.engine.figures.prediction_figures import plot_run_predictions
    from scribbleseg.engine.figures.run_figures import plot_run
    from scribbleseg.methods import parse_class_source

    console = Console(highlight=False, soft_wrap=True)
    if grid and classes is not None:
        parse_class_source(classes)  # a bad --classes fails before anything is drawn
    for path in plot_run(run_dir):
        console.print(f"wrote {path}")
    if not grid:
        return
    path, detail = plot_run_predictions(run_dir, class_source=classes, num_images=num_images,
                                        device=resolve_device(device))
    if path is None:
        console.print(f"[yellow]no overlay grid:[/] {detail}")
    else:
        console.print(f"wrote {path} ({detail})")


def register(app: typer.Typer) -> None:
    """Add ``plot`` to ``app``."""
    app.command("plot")(plot_command)
