"""``scribbleseg info``: parameter and FLOP counts of an encoder + decoder model, plus a forward check.

Builds the encoder and decoder exactly as training would (no weights needed), prints a table with the
parameters of encoder, decoder and total (millions) and the FLOPs / MACs of one forward pass at the
given input size, then the shapes of the four stage maps, the fused features F and the logits.
``--weights`` additionally loads pretrained encoder weights as a check of the file.
"""

from __future__ import annotations

from typing import Any, Callable

import typer
from rich.console import Console
from rich.table import Table

from scribbleseg.errors import ConfigError


def parse_strides(text: str) -> tuple[int, int, int, int]:
    """``"4,2,2,1"`` -> ``(4, 2, 2, 1)``; anything else raises :class:`ConfigError`."""
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or any(v < 1 for v in values):
        raise ConfigError(f"--strides must be 4 positive integers separated by commas (e.g. 4,2,2,1), got {text!r}")
    return values  # type: ignore[return-value]


def _family_options(settings: Any, options: dict[str, Callable[[], object]]) -> dict[str, object]:
    """The command-line options this settings class has a field for (each parsed only then)."""
    return {key: value() for key, value in options.items() if key in settings.model_fields}


def backbone_settings(name: str, strides: str, output_stride: int):  # type: ignore[no-untyped-def]
    """Settings of the declared backbone family whose type starts ``name`` (``resnet101`` -> resnet; the
    default family otherwise: ``mit_b1``, ``b1``), with the options its settings have (MiT ``--strides``,
    ResNet ``--output-stride``)."""
    from scribbleseg.models.families import BACKBONES

    family = next((f for f in BACKBONES.values() if f.claims(name)), next(iter(BACKBONES.values())))
    options = _family_options(family.settings, {"strides": lambda: parse_strides(strides),
                                                "output_stride": lambda: output_stride})
    return family.settings.build(name=name, **options)


def decoder_settings(name: str, embed_dim: int):  # type: ignore[no-untyped-def]
    """Settings of the declared decoder family called ``name`` (``--embed-dim`` sets SegFormer's width)."""
    from scribbleseg.models.families import DECODERS

    family = DECODERS.get(name.strip().lower())
    if family is None:
        raise ConfigError(f"--head must be one of {', '.join(DECODERS)}, got {name!r}")
    return family.settings.build(**_family_options(family.settings, {"embed_dim": lambda: embed_dim}))


def info(
    backbone: str = typer.Option("mit_b1", help="mit_b0 ... mit_b5, resnet50 or resnet101."),
    head_name: str = typer.Option("segformer", "--head", help="Decoder: segformer | deeplabv2 | deeplabv3plus."),
    num_classes: int = typer.Option(21, min=1, help="Number of classes of the classifier."),
    size: int = typer.Option(512, min=32, help="Square input size for FLOPs and the forward check."),
    strides: str = typer.Option("4,2,2,2", help="MiT per-stage strides; the PFA authors use 4,2,2,1."),
    output_stride: int = typer.Option(8, "--output-stride", help="ResNet output stride: 8, 16 or 32."),
    embed_dim: int = typer.Option(256, min=1, help="SegFormer decoder embedding width E."),
    weights: str | None = typer.Option(None, help="Optional encoder weights to load as a check (NVlabs / "
                                                  "torchvision .pth, Hugging Face folder / file / Hub id, "
                                                  "scribbleseg)."),
) -> None:
    """Print parameters (M) and FLOPs of encoder + decoder and run one forward pass as a check."""
    import torch
    from scribbleseg.engine.config.schema import ModelConfig
    from scribbleseg.engine.build.method_factory import build_network
    from scribbleseg.models import count_flops, count_parameters, load_encoder_weights

    console = Console()
    model_cfg = ModelConfig(backbone=backbone_settings(backbone, strides, output_stride),
                            decoder=decoder_settings(head_name, embed_dim))
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

    table = Table(title=f"{encoder.variant_name} + {model_cfg.decoder.type} (K={num_classes}), input {size}x{size}, "
                        f"stage strides {encoder.output_strides}")
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
