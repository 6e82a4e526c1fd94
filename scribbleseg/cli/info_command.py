"""``scribbleseg info``: parameter and FLOP counts of an MiT + SegFormer-head model, plus a forward check.

Builds the encoder and decoder exactly as training would (no weights needed), prints a table with the
parameters of encoder, decoder and total (millions) and the FLOPs / MACs of one forward pass at the
given input size, then the shapes of the four stage maps, the fused features F and the logits.
``--weights`` additionally loads pretrained encoder weights as a check of the file.
"""

from __future__ import annotations

import torch
import typer
from rich.console import Console
from rich.table import Table

from scribbleseg.engine.config_schema import ModelConfig
from scribbleseg.engine.method_factory import build_network
from scribbleseg.errors import ConfigError
from scribbleseg.models import count_flops, count_parameters, load_encoder_weights
from scribbleseg.models.network_settings import MiTBackbone, SegFormerDecoder


def parse_strides(text: str) -> tuple[int, int, int, int]:
    """``"4,2,2,1"`` -> ``(4, 2, 2, 1)``; anything else raises :class:`ConfigError`."""
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or any(v < 1 for v in values):
        raise ConfigError(f"--strides must be 4 positive integers separated by commas (e.g. 4,2,2,1), got {text!r}")
    return values  # type: ignore[return-value]


def info(
    backbone: str = typer.Option("mit_b1", help="MiT variant: mit_b0 ... mit_b5."),
    num_classes: int = typer.Option(21, min=1, help="Number of classes of the classifier."),
    size: int = typer.Option(512, min=32, help="Square input size for FLOPs and the forward check."),
    strides: str = typer.Option("4,2,2,2", help="Per-stage strides; the PFA authors use 4,2,2,1."),
    embed_dim: int = typer.Option(256, min=1, help="Decoder embedding width E."),
    weights: str | None = typer.Option(None, help="Optional encoder weights to load as a check (NVlabs .pth, "
                                                  "Hugging Face folder / file / Hub id, scribbleseg)."),
) -> None:
    """Print parameters (M) and FLOPs of encoder + decoder and run one forward pass as a check."""
    console = Console()
    model_cfg = ModelConfig(backbone=MiTBackbone.build(name=backbone, strides=parse_strides(strides)),
                            decoder=SegFormerDecoder.build(embed_dim=embed_dim))
    encoder, head = build_network(model_cfg, num_classes, load_pretrained=False)
    encoder.eval()
    head.eval()
    if weights is not None:
        console.print(str(load_encoder_weights(encoder, weights)), highlight=False)

    shapes: dict[str, object] = {}

    def forward(x: torch.Tensor) -> torch.Tensor:
        maps = encoder(x)
        features = head.fuse(maps)
        logits = head.classify(features)
        shapes.update(maps=[tuple(m.shape) for m in maps], features=tuple(features.shape),
                      logits=tuple(logits.shape))
        return logits

    flops_total = count_flops(forward, size)
    flops_encoder = count_flops(encoder, size)
    params_encoder, params_head = count_parameters(encoder), count_parameters(head)

    table = Table(title=f"{encoder.variant_name} + SegFormer head (E={embed_dim}, K={num_classes}), "
                        f"input {size}x{size}, strides {encoder.strides}")
    for column in ("part", "params (M)", "GFLOPs", "GMACs"):
        table.add_column(column, justify="left" if column == "part" else "right")
    flops_head = flops_total.flops - flops_encoder.flops
    table.add_row("encoder", f"{params_encoder / 1e6:.3f}", f"{flops_encoder.gflops:.2f}", f"{flops_encoder.gmacs:.2f}")
    table.add_row("decoder", f"{params_head / 1e6:.3f}", f"{flops_head / 1e9:.2f}", f"{flops_head / 2e9:.2f}")
    table.add_row("total", f"{(params_encoder + params_head) / 1e6:.3f}", f"{flops_total.gflops:.2f}",
                  f"{flops_total.gmacs:.2f}")
    console.print(table)
    console.print("FLOPs count a multiply-add as 2 (torch FlopCounterMode); GMACs = GFLOPs / 2 is the "
                  "convention of the SegFormer and PFA papers.", highlight=False)
    console.print("forward check (batch 1):", highlight=False)
    for i, shape in enumerate(shapes["maps"], start=1):
        console.print(f"  stage {i} map: {list(shape)}", highlight=False)
    console.print(f"  features F: {list(shapes['features'])}", highlight=False)
    console.print(f"  logits:     {list(shapes['logits'])}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``info`` command to ``app``."""
    app.command("info")(info)
