"""Training throughput side by side in one run: scribbleseg pCE, scribbleseg PFA (global phase) and
Hugging Face ``SegformerForSemanticSegmentation`` (what a user would otherwise pick).

It measures what ``/work/shared/tools/gpu_throughput.py`` measured for the 0.1 API, with today's API:
MiT-B1 (``--model``), 21 classes, the same batch and size for every row, bf16 autocast (``--amp``; on the
CPU float32 by default, as CPU bf16 is mostly emulated), AdamW (lr 1e-5),
random data made once (images ``randn``, 5 % of the pixels scribbled with random labels restricted to
each image's classes: background + 4 random ones), the PFA bank filled first (all classes present)
so that the timed steps are the global phase, then ``--warmup`` untimed and ``--iters`` timed steps,
each ending with a device sync; the median is reported. A step is forward + backward + ``opt.step()``
+ ``zero_grad(set_to_none=True)``.

Columns: img/s, ms per step, peak GiB allocated during the timed steps, estimated MFU (3 x the forward
FLOPs of the network at this size, from ``scribbleseg.models.count_flops``, per image; PFA's own ops
are not counted; peak bf16 rate from the GPU's datasheet or ``--peak-tflops``) and host syncs per step
(CUDA's sync debug mode over one extra step; ``-`` on the CPU).

``--levers`` adds rows with one lever each, for pCE and PFA: ``fused`` (AdamW's fused kernel),
``compile`` (``train.compile``: encoder, decoder fuse, augmenters, sync-free bank update; inductor),
``channels_last`` (model and images in channels-last memory format) and ``syncs`` (PFA only: the
host reads the code did before the sync removal: exact class counts, early-exit bank update).

    python benchmarks/bench_gpu_train.py                      # CUDA, batch 8 at 512^2, 15 timed steps
    python benchmarks/bench_gpu_train.py --levers fused,compile,channels_last,syncs --json out.json
    python benchmarks/bench_gpu_train.py --device cpu --model mit_b0 --batch 1 --size 64 --iters 1 --warmup 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from bench_common import hf_segformer, host_reads_as_before, machine, median_step_time
from scribbleseg.engine.runtime.compilation import compile_method_parts
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.methods import TrainBatch
from scribbleseg.models import count_flops

NUM_CLASSES = 21
LEVERS = ("fused", "compile", "channels_last", "syncs")
# dense bf16 tensor rates from the vendors' datasheets, TFLOP/s (first matching name wins)
PEAK_BF16_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0),
                    ("L4", 121.0), ("A10", 125.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0))


@dataclass
class Data:
    """The random batch (made once, as in gpu_throughput.py): ``[B, 3, S, S]`` images, ``[B, S, S]`` labels."""

    images: torch.Tensor
    scribbles: torch.Tensor
    present: torch.Tensor
    fill_scribbles: torch.Tensor  # every class may appear: fills the PFA bank

    @classmethod
    def random(cls, batch: int, size: int, device: torch.device) -> "Data":
        torch.manual_seed(0)
        images = torch.randn(batch, 3, size, size, device=device)
        labels = torch.randint(0, NUM_CLASSES, (batch, size, size), device=device)
        unlabeled = torch.full_like(labels, 255)
        scribbles = torch.where(torch.rand(batch, size, size, device=device) < 0.05, labels, unlabeled)
        present = torch.zeros(batch, NUM_CLASSES, dtype=torch.bool, device=device)
        present.scatter_(1, torch.randint(0, NUM_CLASSES, (batch, 4), device=device), True)
        present[:, 0] = True
        allowed = present.gather(1, scribbles.clamp(max=NUM_CLASSES - 1).flatten(1)).view(batch, size, size)
        scribbles = torch.where(allowed, scribbles, unlabeled)
        fill = torch.where(torch.rand(batch, size, size, device=device) < 0.05, labels, unlabeled)
        return cls(images, scribbles, present, fill)


@dataclass
class Row:
    name: str
    seconds: float = float("nan")
    peak_gib: float = 0.0
    syncs: int | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class Encoded(nn.Module):
    """``forward(x) = method.encode(x)``: the network (encoder + decoder) for the FLOP counter."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.method.encode(images)


def our_method(name: str, model: str, device: torch.device) -> nn.Module:
    cfg = config_from_mapping({"method": name, "model": {"backbone": {"type": "mit", "name": model}, "pretrained": None},
                               "pfa": {"warmup_iters": 0, "slots": 5}})
    return build_method(cfg, NUM_CLASSES, load_pretrained=False).to(device).train()


def make_step(model: nn.Module, data: Data, device: torch.device, levers: Sequence[str], ours: bool,
              amp: bool) -> Callable[..., object]:
    """One optimisation step on ``data`` (bf16 autocast if ``amp``, AdamW) with the given levers applied."""
    if "channels_last" in levers:
        model = model.to(memory_format=torch.channels_last)
    images = data.images.contiguous(memory_format=torch.channels_last) if "channels_last" in levers else data.images
    if "compile" in levers and ours:
        report = compile_method_parts(model, device)
        if report.fallback:
            raise RuntimeError(f"compile unavailable: {report.fallback}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True if "fused" in levers else None)
    iteration = [0]

    def step(scribbles: torch.Tensor = data.scribbles, present: torch.Tensor = data.present) -> object:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            if ours:
                result = model.training_step(TrainBatch(images, scribbles, present, present), iteration[0])
                loss = result.loss
            else:
                result = model(pixel_values=images, labels=scribbles)
                loss = result.loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        iteration[0] += 1
        return result

    return step


def fill_bank(step: Callable[..., object], data: Data) -> None:
    """Steps with every class present until the PFA bank is full (the global phase), at most 60."""
    for _ in range(60):
        if step(data.fill_scribbles, torch.ones_like(data.present)).phase == "global":  # type: ignore[attr-defined]
            return
    raise RuntimeError("the bank did not fill in 60 steps")


def count_syncs(step: Callable[[], object], device: torch.device) -> int | None:
    """Host syncs of one ``step`` (CUDA's sync debug mode warns once per synchronising call)."""
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
            torch.cuda.synchronize(device)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(item.message) for item in caught)


def run_row(name: str, build: Callable[[], nn.Module], data: Data, device: torch.device, levers: Sequence[str],
            args: argparse.Namespace) -> Row:
    row = Row(name)
    ours = not name.startswith("hf")
    try:
        model = build()
        with host_reads_as_before(model) if "syncs" in levers else contextlib.nullcontext():
            step = make_step(model, data, device, levers, ours, args.amp == "bf16")
            if "pfa" in name:
                fill_bank(step, data)
            row.seconds, row.peak_gib = median_step_time(step, device, args.warmup, args.iters)
            row.syncs = count_syncs(step, device)
            if "pfa" in name and step().phase != "global":  # type: ignore[attr-defined]
                raise RuntimeError("timed steps left the global phase")
    except Exception as err:  # report the row, keep going
        row.error = f"{type(err).__name__}: {str(err)[:300]}"
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def forward_gflops(model: str, size: int, device: torch.device) -> float:
    """GFLOPs of one image's network forward (encoder + decoder), multiply-add = 2 FLOPs."""
    return count_flops(Encoded(our_method("pce", model, device)), (1, 3, size, size)).gflops


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None:
        return given
    if device.type != "cuda":
        return None
    gpu = torch.cuda.get_device_name(device)
    return next((rate for key, rate in PEAK_BF16_TFLOPS if key in gpu), None)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iters", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--model", default="mit_b1")
    parser.add_argument("--levers", default="", help=f"comma-separated, from {', '.join(LEVERS)}")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak bf16 TFLOP/s for the MFU column")
    parser.add_argument("--amp", choices=("bf16", "none"), default=None,
                        help="autocast dtype (default: bf16 on CUDA, none on the CPU, whose bf16 is emulated)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.amp is None:
        args.amp = "none" if args.device == "cpu" else "bf16"
    args.levers = [lever for lever in args.levers.split(",") if lever]
    unknown = [lever for lever in args.levers if lever not in LEVERS]
    if unknown:
        parser.error(f"unknown lever {unknown[0]!r}; choose from {', '.join(LEVERS)}")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = Data.random(args.batch, args.size, device)
    plan: list[tuple[str, Callable[[], nn.Module], list[str]]] = [
        ("hf_segformer_ce", lambda: hf_segformer(args.model, NUM_CLASSES, device,
                                                 semantic_loss_ignore_index=255).train(), []),
        ("ours_pce", lambda: our_method("pce", args.model, device), []),
        ("ours_pfa_global", lambda: our_method("pfa", args.model, device), []),
    ]
    for lever in args.levers:
        if lever != "syncs":
            plan.append((f"ours_pce+{lever}", lambda: our_method("pce", args.model, device), [lever]))
        plan.append((f"ours_pfa_global+{lever}", lambda: our_method("pfa", args.model, device), [lever]))
    rows = []
    for name, build, levers in plan:
        rows.append(run_row(name, build, data, device, levers, args))
        print(f"  {name}: " + (rows[-1].error or f"{rows[-1].seconds * 1e3:.1f} ms/step"), file=sys.stderr, flush=True)
    gflops = forward_gflops(args.model, args.size, device)
    peak = peak_tflops(device, args.peak_tflops)
    report = print_table(rows, args, device, gflops, peak)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    return report


def print_table(rows: list[Row], args: argparse.Namespace, device: torch.device, gflops: float,
                peak: float | None) -> dict:
    print(f"machine: {machine(device)}")
    amp = "bf16 autocast" if args.amp == "bf16" else "float32"
    print(f"{args.model}, {NUM_CLASSES} classes, batch {args.batch} at {args.size}^2, {amp}, AdamW, "
          f"median of {args.iters} steps after {args.warmup}; forward {gflops:.1f} GFLOPs/image; "
          f"MFU vs {f'{peak:.0f} TFLOP/s' if peak else 'no known peak'}")
    print(f"{'row':<30} {'img/s':>8} {'ms/step':>9} {'peak GiB':>9} {'MFU':>6} {'syncs':>6} {'vs HF':>6} {'vs pCE':>7}")
    by_name = {row.name: row for row in rows}
    report_rows = {}
    for row in rows:
        if row.error:
            print(f"{row.name:<30} error: {row.error}")
            report_rows[row.name] = {"error": row.error}
            continue
        images_per_s = args.batch / row.seconds
        mfu = 3 * gflops * 1e9 * images_per_s / (peak * 1e12) if peak else None
        base = by_name["hf_segformer_ce"]
        pce = by_name.get(row.name.replace("pfa_global", "pce").replace("+syncs", ""))
        vs_hf = base.seconds / row.seconds if not base.error else None
        vs_pce = row.seconds / pce.seconds if "pfa" in row.name and pce is not None and not pce.error else None
        print(f"{row.name:<30} {images_per_s:8.1f} {row.seconds * 1e3:9.1f} {row.peak_gib:9.2f} "
              f"{f'{mfu:.1%}' if mfu is not None else '-':>6} {row.syncs if row.syncs is not None else '-':>6} "
              f"{f'{vs_hf:.2f}x' if vs_hf else '-':>6} {f'{vs_pce:.2f}x' if vs_pce else '-':>7}")
        report_rows[row.name] = {"s_per_step": row.seconds, "img_per_s": images_per_s, "peak_gib": row.peak_gib,
                                 "mfu": mfu, "host_syncs": row.syncs, "speed_vs_hf": vs_hf, "time_vs_pce": vs_pce}
    print("vs HF = img/s relative to the HF row (higher is faster); vs pCE = PFA step time / pCE step time "
          "with the same levers")
    return {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "machine": machine(device), "torch": torch.__version__, "model": args.model, "batch": args.batch,
            "size": args.size, "amp": args.amp, "iters": args.iters, "forward_gflops": gflops, "peak_tflops": peak,
            "rows": report_rows}


if __name__ == "__main__":
    main()
