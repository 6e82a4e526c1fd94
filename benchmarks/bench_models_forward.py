"""Forward latency of our encoders vs. transformers with the same configuration and weights.

``--backbone mit_b*`` compares our MixTransformer with ``SegformerModel``; ``--backbone resnet50`` /
``resnet101`` compares our ResNet (output stride 32: transformers' ResNet has no dilation) with
``ResNetModel``.

Both run in ONE process, on the same CPU, with the same torch thread count, in eval mode under
``torch.inference_mode()``: a few warm-up passes, then the median of several timed passes, measured
alternately (ours, theirs, ours, ...) so background load hits both alike. Our encoder gets the Hugging
Face model's weights, and the outputs are checked to agree before timing.

Usage::

    python benchmarks/bench_models_forward.py [--backbone mit_b1|resnet101] [--size 512] [--runs 7] [--warmup 2]

Needs ``transformers`` (a dev dependency); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table

from scribbleseg.models import RESNET_VARIANTS, MixTransformer, ResNet


def cpu_model() -> str:
    """Name of the CPU from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build_pair(backbone: str):
    """Our encoder and the transformers model with the same architecture (both eval), and the
    transformers class name. Weights are copied by :func:`copy_weights`."""
    if backbone.lower().replace("-", "").replace("_", "") in RESNET_VARIANTS:
        from transformers import ResNetConfig, ResNetModel

        ours = ResNet.from_name(backbone).eval()
        config = ResNetConfig(embedding_size=ours.stem_channels, hidden_sizes=list(ours.out_channels),
                              depths=list(ours.depths), layer_type="bottleneck")
        return ours, ResNetModel(config).eval(), "ResNetModel"
    from transformers import SegformerConfig, SegformerModel

    ours = MixTransformer.from_name(backbone, layer_norm_eps=1e-5).eval()
    config = SegformerConfig(hidden_sizes=list(ours.embed_dims), num_attention_heads=list(ours.num_heads),
                             depths=list(ours.depths), sr_ratios=list(ours.sr_ratios),
                             mlp_ratios=[int(r) for r in ours.mlp_ratios], strides=list(ours.strides))
    return ours, SegformerModel(config).eval(), "SegformerModel"


def copy_weights(ours: torch.nn.Module, theirs) -> None:
    """Give our encoder the Hugging Face model's weights (through its own save format and our loader)."""
    import tempfile

    from scribbleseg.models import load_encoder_weights

    with tempfile.TemporaryDirectory() as folder:
        theirs.save_pretrained(folder)
        load_encoder_weights(ours, folder)


def time_once(fn, x) -> float:
    """Seconds for one call."""
    start = time.perf_counter()
    fn(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="mit_b1")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    ours, theirs, their_name = build_pair(args.backbone)
    copy_weights(ours, theirs)
    x = torch.randn(1, 3, args.size, args.size)
    first_stage = 1 if their_name == "ResNetModel" else 0  # ResNetModel's hidden_states[0] is the stem output

    def run_ours(t):
        return ours(t)

    def run_theirs(t):
        return theirs(pixel_values=t, output_hidden_states=True).hidden_states[first_stage:]

    with torch.inference_mode():
        max_diff = max((a - b).abs().max().item() for a, b in zip(run_ours(x), run_theirs(x)))
        for _ in range(args.warmup):
            run_ours(x)
            run_theirs(x)
        times_ours, times_theirs = [], []
        for _ in range(args.runs):
            times_ours.append(time_once(run_ours, x))
            times_theirs.append(time_once(run_theirs, x))

    med_ours, med_theirs = statistics.median(times_ours), statistics.median(times_theirs)
    import transformers

    table = Table(title=f"{args.backbone} encoder forward, batch 1, {args.size}x{args.size}, eval, no grad")
    for column in ("implementation", "median ms", "min ms", "max ms"):
        table.add_column(column, justify="right" if column != "implementation" else "left")
    table.add_row(f"scribbleseg {type(ours).__name__}", f"{med_ours * 1e3:.1f}", f"{min(times_ours) * 1e3:.1f}",
                  f"{max(times_ours) * 1e3:.1f}")
    table.add_row(f"transformers {transformers.__version__} {their_name}", f"{med_theirs * 1e3:.1f}",
                  f"{min(times_theirs) * 1e3:.1f}", f"{max(times_theirs) * 1e3:.1f}")
    console = Console()
    console.print(table)
    console.print(f"ratio ours / transformers (median): [bold]{med_ours / med_theirs:.3f}x[/] "
                  f"(max |diff| of the 4 stage outputs: {max_diff:.2e})")
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    console.print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
                  f"threads {torch.get_num_threads()}, load average {load}; {args.runs} timed runs after "
                  f"{args.warmup} warm-up runs, alternating ours / theirs")


if __name__ == "__main__":
    main()
