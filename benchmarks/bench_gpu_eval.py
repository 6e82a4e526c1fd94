"""Evaluation / prediction throughput (images/s) side by side in one run, any device.

Rows, all on the same ``--batch`` random ``--size``^2 images (ImageNet-normalised scale), MiT-B1,
21 classes, no gradients, autocast as the engine does it (``amp``: fp16 on CUDA, bf16 on the CPU; off
with ``--amp none``):

* ``ours basic``: :func:`scribbleseg.engine.inference.probabilities.infer_probabilities` with the basic head, whole
  image (what ``scribbleseg eval`` / ``predict`` run per batch: forward, upsampling, softmax per image);
* ``ours basic+local+global``: the same with PFA's three heads and oracle classes (bank filled);
* ``ours basic MS+flip``: the basic head over the six test scales and their mirrors (``eval.ms_flip``);
* ``ours basic, sliding window``: :func:`scribbleseg.engine.inference.dispatch.infer_labels` with every
  image tiled (``--mode slide``): tiles of half the image side (a multiple of 32), stride 3/4 of the
  tile, Gaussian blending, ``--batch`` tiles per forward pass (what ``eval`` / ``predict`` run above
  the pixel budget; 3 x 3 tiles per 512^2 image);
* ``HF SegFormer``: ``SegformerForSemanticSegmentation`` forward + bilinear upsampling + softmax.

Times are medians of ``--iters`` calls after ``--warmup`` (device-synchronised); peak GiB is CUDA's
``max_memory_allocated`` during the timed calls.

    python benchmarks/bench_gpu_eval.py                       # CUDA, batch 8 at 512^2
    python benchmarks/bench_gpu_eval.py --device cpu --model mit_b0 --batch 1 --size 64 --iters 1 --warmup 1
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from bench_common import hf_segformer, machine, median_step_time
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.inference.views import DEFAULT_MS_SCALES
from scribbleseg.engine.inference.probabilities import ImageFacts, infer_probabilities
from scribbleseg.engine.inference.dispatch import infer_labels
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.inference.windows import SlideSettings
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.methods import parse_class_source

NUM_CLASSES = 21


def pfa_model(model: str, device: torch.device) -> torch.nn.Module:
    """Our PFA model in eval mode with a full bank (random prototypes), so every head can run."""
    cfg = config_from_mapping({"method": "pfa", "model": {"backbone": {"type": "mit", "name": model}, "pretrained": None},
                               "pfa": {"slots": 5}})
    method = build_method(cfg, NUM_CLASSES, load_pretrained=False).to(device).eval()
    bank = method.bank
    prototypes = F.normalize(torch.randn(bank.slots, NUM_CLASSES, bank.dim, device=device), dim=2)
    bank.update(prototypes, torch.ones(bank.slots, NUM_CLASSES, dtype=torch.bool, device=device))
    return method


def hf_call(model: str, device: torch.device, images: torch.Tensor, amp: bool) -> Callable[[], object]:
    network = hf_segformer(model, NUM_CLASSES, device).eval()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    @torch.no_grad()
    def call() -> object:
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            logits = network(pixel_values=images).logits
        return F.interpolate(logits.float(), size=images.shape[-2:], mode="bilinear", align_corners=False).softmax(1)

    return call


def sliding_window_call(method: torch.nn.Module, images: list[torch.Tensor], size: int, tiles_per_pass: int,
                        amp: bool) -> tuple[Callable[[], object] | None, str]:
    """The sliding-window row: every image tiled, tiles of half its side, stride 3/4 of the tile."""
    tile = max(32, (size // 2) // 32 * 32)
    settings = SlideSettings(mode="slide", tile=tile, stride=max(1, tile * 3 // 4))
    run = InferenceSettings(heads=("basic",), slide=settings, tile_batch=tiles_per_pass, amp=amp)
    return (lambda: infer_labels(method, images, run)), f"tile {tile}, stride {settings.step}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--model", default="mit_b1")
    parser.add_argument("--amp", choices=("engine", "none"), default="engine")
    parser.add_argument("--skip-ms", action="store_true", help="leave out the MS+flip row (12 views)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = args.amp == "engine"
    torch.manual_seed(0)
    batch = torch.randn(args.batch, 3, args.size, args.size, device=device)
    images = list(batch)
    present = torch.zeros(args.batch, NUM_CLASSES, dtype=torch.bool, device=device)
    present[:, :5] = True
    method = pfa_model(args.model, device)
    oracle = parse_class_source("oracle")

    def ours(heads: Sequence[str], scales: Sequence[float] = (1.0,), flip: bool = False) -> Callable[[], object]:
        settings = InferenceSettings(heads=tuple(heads), class_source=oracle, scales=tuple(scales), flip=flip, amp=amp)
        return lambda: infer_probabilities(method, images, settings, ImageFacts(given=present))

    plan: list[tuple[str, Callable[[], object] | None, str]] = [
        ("ours basic", ours(("basic",)), ""),
        ("ours basic+local+global", ours(("basic", "local", "global")), ""),
    ]
    if not args.skip_ms:
        plan.append(("ours basic MS+flip (12 views)", ours(("basic",), DEFAULT_MS_SCALES, True), ""))
    slide, note = sliding_window_call(method, images, args.size, args.batch, amp)
    plan.append((f"ours basic, sliding window ({note})", slide, ""))
    plan.append(("HF SegFormer (forward+upsample+softmax)", hf_call(args.model, device, batch, amp), ""))

    print(f"machine: {machine(device)}")
    print(f"{args.model}, {NUM_CLASSES} classes, batch {args.batch} at {args.size}^2, "
          f"{'engine autocast (fp16 CUDA / bf16 CPU)' if amp else 'float32'}, median of {args.iters} after {args.warmup}")
    print(f"{'row':<54} {'img/s':>8} {'ms/batch':>9} {'peak GiB':>9}")
    rows: dict[str, dict] = {}
    for name, call, why in plan:
        if call is None:
            print(f"{name:<54} {why}")
            rows[name] = {"skipped": why}
            continue
        try:
            seconds, peak = median_step_time(call, device, args.warmup, args.iters)
        except Exception as err:  # report the row, keep going
            rows[name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
            print(f"{name:<54} error: {rows[name]['error']}")
            continue
        rows[name] = {"img_per_s": args.batch / seconds, "s_per_batch": seconds, "peak_gib": peak}
        print(f"{name:<54} {args.batch / seconds:8.1f} {seconds * 1e3:9.1f} {peak:9.2f}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    report = {"machine": machine(device), "torch": torch.__version__, "model": args.model, "batch": args.batch,
              "size": args.size, "amp": args.amp, "rows": rows}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    sys.stdout.flush()
    return report


if __name__ == "__main__":
    main()
