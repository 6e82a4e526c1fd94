"""``scribbleseg predict CKPT IMAGE_OR_DIR --out DIR``: label PNGs (+ overlays, probabilities) for images.

The checkpoint alone is enough: it holds the config, class names and palette. Outputs: ``DIR/<name>.png``
(palette PNG of class ids), ``DIR/overlays/<name>.png`` (``--overlay``), ``DIR/probabilities/<name>.npy``
(``--probs``, float16 ``[K, H, W]``). User errors exit with code 2 and one message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from scribbleseg.data.voc_classes import voc_color
from scribbleseg.engine.checkpoint import load_model_checkpoint
from scribbleseg.engine.devices import resolve_device
from scribbleseg.engine.prediction import predict_paths, prediction_notes
from scribbleseg.methods import BASIC_HEAD, check_source_fits, default_class_source, parse_class_source


def checkpoint_palette(meta: dict, num_classes: int) -> list[tuple[int, int, int]]:
    """The palette stored in the checkpoint meta, else VOC-style colours for ``num_classes`` classes."""
    stored = meta.get("palette")
    if isinstance(stored, list) and len(stored) >= num_classes:
        return [tuple(int(c) for c in colour) for colour in stored]
    return [voc_color(index) for index in range(num_classes)]


def predict_command(
    checkpoint: Path = typer.Argument(..., help="Model checkpoint (.safetensors)."),
    images: Path = typer.Argument(..., help="An image file or a folder of images."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; other files are left alone)."),
    overlay: bool = typer.Option(False, "--overlay", help="Also write colour overlays to OUT/overlays/."),
    probs: bool = typer.Option(False, "--probs", help="Also write float16 [K,H,W] .npy maps to OUT/probabilities/."),
    head: str = typer.Option(BASIC_HEAD, "--head", help="A head of the model: basic, or e.g. PFA's local / global."),
    classes: Optional[str] = typer.Option(
        None, "--classes", help="Class source of class-dependent heads: head[:TAU] | threshold[:N] | file:PATH | "
                                "none (default: head when the checkpoint has an image classifier, else threshold)."),
    ms_flip: bool = typer.Option(False, "--ms-flip", help="Multi-scale + horizontal-flip averaging."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="Images per forward pass."),
    amp: bool = typer.Option(False, "--amp", help="Autocast the network (bf16 on CPU, fp16 on CUDA)."),
) -> None:
    """Predict label maps for an image or a folder of images with a trained checkpoint."""
    target = resolve_device(device)
    method, _, meta = load_model_checkpoint(checkpoint, map_location=target)
    class_names = meta.get("class_names")
    source = parse_class_source(classes if classes is not None else default_class_source(method), class_names)
    check_source_fits(source, method)
    written = predict_paths(method, images, out, palette=checkpoint_palette(meta, method.num_classes),
                            overlay=overlay, probabilities=probs, head=head, class_source=source,
                            class_names=class_names, device=target, batch_size=batch_size, ms_flip=ms_flip,
                            amp=amp, progress=True)
    console = Console(highlight=False, soft_wrap=True)
    for note in prediction_notes(method, head, source):
        console.print(f"[yellow]note:[/] {note}")
    extras = [name for name, on in (("overlays", overlay), ("probabilities", probs)) if on]
    console.print(f"{len(written)} label map(s) written to {out}" + (f" (+ {', '.join(extras)})" if extras else ""))


def register(app: typer.Typer) -> None:
    """Add ``predict`` to ``app``."""
    app.command("predict")(predict_command)
