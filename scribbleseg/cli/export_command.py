"""``scribbleseg export CKPT --out model.onnx [--head H] [--classes SPEC] [--opset N]``: ONNX export.

The graph takes normalised images ``[N, 3, H, W]`` (any batch and size) and returns the logits of the
basic head and of ``--head``, with the method's state (PFA's prototype bank, ...) baked in; class names,
palette, normalisation, head, class source and output stride are stored in the model's metadata, so
``scribbleseg predict model.onnx ...`` (ONNX Runtime) needs nothing else. See docs/deployment.md.
Needs the ``[onnx]`` extra (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

WARN_DIFFERENCE = 1e-3  # largest |ONNX - PyTorch| logit difference reported without a warning


def export_command(
    checkpoint: Path = typer.Argument(..., help="Model checkpoint (.safetensors).", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="The .onnx file to write (replaced atomically)."),
    head: str = typer.Option("basic", "--head", help="A head of the model: basic, or e.g. PFA's local / global."),
    classes: Optional[str] = typer.Option(
        None, "--classes", help="Class source of a class-dependent head, computed inside the graph: head[:TAU] "
                                "(the image classifier; the default when the checkpoint has one) or threshold:N "
                                "(the default otherwise: threshold:500); oracle and file:PATH cannot be part of a graph."),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset (default 18)."),
    check: bool = typer.Option(True, "--check/--no-check",
                               help="Run the written graph with ONNX Runtime on a second input size and "
                                    "report the largest difference to PyTorch."),
) -> None:
    """Export a trained checkpoint to ONNX for deployment with ONNX Runtime."""
    from scribbleseg.engine.runs.checkpoint import checkpoint_palette
    from scribbleseg.engine.runs.checkpoint import load_model_checkpoint, untrained_head_warning
    from scribbleseg.deploy.onnx.export import CHECK_SHAPE, DEFAULT_OPSET, export_onnx
    from scribbleseg.deploy.onnx.runtime_model import ONNX_SUFFIX
    from scribbleseg.errors import ConfigError

    if out.suffix.lower() != ONNX_SUFFIX:
        raise ConfigError(f"--out {out} must end in {ONNX_SUFFIX} ('scribbleseg predict' recognises the model by it)")
    from scribbleseg.methods import default_class_source

    method, _, meta = load_model_checkpoint(checkpoint, map_location="cpu")
    untrained = untrained_head_warning(method, head, meta)
    if untrained:
        typer.echo(f"warning: {untrained}", err=True)
    report = export_onnx(method, out, head=head,
                         class_source=classes if classes is not None else default_class_source(method), class_names=meta.get("class_names"),
                         palette=checkpoint_palette(meta, method.num_classes), model=meta.get("model"),
                         opset=opset if opset is not None else DEFAULT_OPSET, check=check)
    info = report.metadata
    classes_note = "" if info.class_source == "none" else f", classes from {info.class_source} in the graph"
    typer.echo(f"exported head {info.head}{classes_note} to {report.path} "
               f"({report.size_bytes / 1e6:.1f} MB, opset {report.opset}); outputs: {', '.join(report.outputs)}")
    if report.max_abs_difference is not None:
        shape = "x".join(str(s) for s in CHECK_SHAPE)
        typer.echo(f"checked with ONNX Runtime on a {shape} input: max |ONNX - PyTorch| = "
                   f"{report.max_abs_difference:.2e}")
        if report.max_abs_difference > WARN_DIFFERENCE:
            typer.echo(f"warning: the graph differs from PyTorch by more than {WARN_DIFFERENCE:g} "
                       "(inf: a different class set); check its predictions before deploying it", err=True)


def register(app: typer.Typer) -> None:
    """Add ``export`` to ``app``."""
    app.command("export")(export_command)
