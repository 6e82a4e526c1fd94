"""``scribbleseg predict CKPT IMAGE_OR_DIR --out DIR``: label PNGs (+ overlays, probabilities) for images.

The checkpoint alone is enough: it holds the config, class names and palette. Outputs: ``DIR/<name>.png``
(palette PNG of class ids), ``DIR/overlays/<name>.png`` (``--overlay``), ``DIR/probabilities/<name>.npy``
(``--probs``, float16 ``[K, H, W]``). Images above the pixel budget are predicted tile by tile
(``--mode`` / ``--tile`` / ``--stride`` / ``--blend`` / ``--pixel-budget``). User errors exit with code 2
and one message; with ``--skip-bad`` unreadable images are listed and the exit code is 1. An exported
``.onnx`` model (``scribbleseg export``) runs with ONNX Runtime instead: same outputs and options
(docs/deployment.md). The model is loaded by :func:`scribbleseg.api.load_model` (checkpoint or ``.onnx``
alike) and the images predicted by :func:`scribbleseg.api.predict_files`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from scribbleseg.cli.parsing.slide_options import (
    BLEND_OPTION,
    MODE_OPTION,
    Blend,
    Mode,
    PIXEL_BUDGET_OPTION,
    STRIDE_OPTION,
    TILE_OPTION,
    settings_from_options,
)


def predict_command(
    checkpoint: Path = typer.Argument(..., help="Model checkpoint (.safetensors) or exported model (.onnx, "
                                                "run with ONNX Runtime)."),
    images: Path = typer.Argument(..., help="An image file or a folder of images."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; other files are left alone)."),
    overlay: bool = typer.Option(False, "--overlay", help="Also write colour overlays to OUT/overlays/."),
    probs: bool = typer.Option(False, "--probs", help="Also write float16 [K,H,W] .npy maps to OUT/probabilities/."),
    head: Optional[str] = typer.Option(None, "--head", help="A head of the model: basic, or e.g. PFA's local / "
                                                          "global (default: basic; .onnx: its exported head)."),
    classes: Optional[str] = typer.Option(
        None, "--classes", help="Class source of class-dependent heads: head[:TAU] | threshold[:N] | file:PATH | "
                                "none (default: head when the checkpoint has an image classifier, else threshold; "
                                ".onnx: its own)."),
    ms_flip: bool = typer.Option(False, "--ms-flip", help="Multi-scale + horizontal-flip averaging."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="Images per forward pass."),
    amp: bool = typer.Option(False, "--amp", help="Autocast the network (bf16 on CPU, fp16 on CUDA)."),
    mode: Optional[Mode] = MODE_OPTION,
    tile: Optional[int] = TILE_OPTION,
    stride: Optional[int] = STRIDE_OPTION,
    blend: Optional[Blend] = BLEND_OPTION,
    pixel_budget: Optional[int] = PIXEL_BUDGET_OPTION,
    skip_bad: bool = typer.Option(False, "--skip-bad",
                                  help="Skip unreadable images (listed at the end, exit code 1) instead of stopping."),
) -> None:
    """Predict label maps for an image or a folder of images with a trained checkpoint."""
    from scribbleseg.api import CheckpointModel, PredictionOutputs, inference_settings, load_model, predict_files
    from scribbleseg.engine.prediction.predict_files import prediction_notes
    from scribbleseg.engine.runs.checkpoint import untrained_head_warning

    slide = settings_from_options(mode, tile, stride, blend, pixel_budget)
    model = load_model(checkpoint, device, amp=amp)
    settings = inference_settings(model, heads=[head] if head else None, classes=classes, ms_flip=ms_flip, amp=amp,
                                  slide=slide, batch_size=batch_size)
    head = settings.heads[0] if settings.heads else model.default_head
    untrained = untrained_head_warning(model.method, head, model.meta) if isinstance(model, CheckpointModel) else None
    if untrained:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[yellow]warning:[/] {escape(untrained)}")
    written = predict_files(model, images, out, settings, PredictionOutputs(overlay=overlay, probabilities=probs),
                            progress=True, skip_bad=skip_bad)
    source = settings.class_source
    console = Console(highlight=False, soft_wrap=True)
    for note in prediction_notes(model, head, source):
        console.print(f"[yellow]note:[/] {note}")
    extras = [name for name, on in (("overlays", overlay), ("probabilities", probs)) if on]
    slid = sum(record.mode == "slide" for record in written)
    console.print(f"{len(written)} label map(s) written to {out}" + (f" (+ {', '.join(extras)})" if extras else "")
                  + (f"; {slid} image(s) predicted tile by tile" if slid else ""))
    if written.skipped:
        errors = Console(stderr=True, highlight=False, soft_wrap=True)
        errors.print(f"[bold red]{len(written.skipped)} image(s) could not be read and were skipped:[/]")
        for why in written.skipped.values():
            errors.print(f"  {escape(why)}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``predict`` to ``app``."""
    app.command("predict")(predict_command)
