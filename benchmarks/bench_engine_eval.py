"""Benchmark of the evaluation engine.

1. Confusion matrix: our one-``bincount`` :func:`scribbleseg.engine.evaluation.confusion.confusion_matrix` against
   torchmetrics' ``MulticlassConfusionMatrix`` on the same labels (21 classes, 10 % ignore pixels); the
   two matrices are checked to be identical before timing.
2. Evaluation throughput of :func:`scribbleseg.engine.evaluation.evaluate.evaluate` (images/s) with a small MiT
   model on synthetic images, single scale and MS + flip.

Run: ``python benchmarks/bench_engine_eval.py [--quick] [--device cpu|cuda]``. Prints a table and the machine.
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
from torchmetrics.classification import MulticlassConfusionMatrix

from scribbleseg.data import DatasetInfo
from scribbleseg.engine.config.schema import ExperimentConfig, ModelConfig
from scribbleseg.engine.evaluation.confusion import confusion_matrix
from scribbleseg.engine.evaluation.evaluate import evaluate
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.models.heads.segformer_family import SegFormerDecoder
from scribbleseg.models.mit.family import MiTBackbone, MiTDims
from scribbleseg.pfa import PFASettings

NUM_CLASSES = 21


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(function, repeats: int, device: torch.device) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    function()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_confusion(device: torch.device, images: int, size: int, repeats: int) -> list[tuple[str, str, str]]:
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, NUM_CLASSES, (images, size, size), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.1] = 255
    prediction = torch.randint(0, NUM_CLASSES, (images, size, size), generator=generator)
    target, prediction = target.to(device), prediction.to(device)
    metric = MulticlassConfusionMatrix(num_classes=NUM_CLASSES, ignore_index=255, validate_args=False).to(device)

    def ours():
        return confusion_matrix(prediction, target, NUM_CLASSES, 255)

    def theirs():
        metric.reset()
        metric.update(prediction, target)
        return metric.compute()

    if not torch.equal(ours().cpu(), theirs().cpu().long()):
        raise SystemExit("confusion matrices differ: benchmark aborted")
    ours_s = time_call(ours, repeats, device)
    theirs_s = time_call(theirs, repeats, device)
    pixels = images * size * size
    return [
        (f"confusion, bincount (ours), {images}x{size}^2", f"{ours_s * 1e3:.2f} ms", f"{pixels / ours_s / 1e6:.0f} Mpx/s"),
        (f"confusion, torchmetrics, {images}x{size}^2", f"{theirs_s * 1e3:.2f} ms", f"{pixels / theirs_s / 1e6:.0f} Mpx/s"),
        ("  torchmetrics / ours", f"{theirs_s / ours_s:.2f}x", ""),
    ]


class RandomEvalSet(torch.utils.data.Dataset):
    """Random normalised images with random dense masks (throughput only)."""

    def __init__(self, count: int, size: int):
        generator = torch.Generator().manual_seed(1)
        self.info = DatasetInfo(class_names=tuple(f"c{i}" for i in range(NUM_CLASSES)),
                                palette=tuple((i, i, i) for i in range(NUM_CLASSES)))
        self.items = []
        for index in range(count):
            mask = torch.randint(0, NUM_CLASSES, (size, size), generator=generator)
            self.items.append({"image": torch.randn(3, size, size, generator=generator), "mask": mask,
                               "classes": torch.bincount(mask.flatten(), minlength=NUM_CLASSES) > 0,
                               "name": str(index)})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def bench_evaluation(device: torch.device, count: int, size: int) -> list[tuple[str, str, str]]:
    torch.manual_seed(0)
    backbone = MiTBackbone(name=None, dims=MiTDims(embed_dims=(32, 64, 160, 256), num_heads=(1, 2, 5, 8)))
    cfg = ExperimentConfig(model=ModelConfig(backbone=backbone, decoder=SegFormerDecoder(embed_dim=128)),
                           pfa=PFASettings(slots=5))
    segmentor = build_method(cfg, NUM_CLASSES, load_pretrained=False).to(device).eval()
    dataset = RandomEvalSet(count, size)
    rows = []
    runs = [("basic, 1 scale, batch 1", dict(heads=("basic",), class_source="none")),
            ("basic, 1 scale, batch 4", dict(heads=("basic",), class_source="none", batch_size=4)),
            ("basic + local (oracle), 1 scale", dict(heads=("basic", "local"), class_source="oracle")),
            ("basic, MS(6) + flip", dict(heads=("basic",), class_source="none", ms_flip=True))]
    evaluate(segmentor, RandomEvalSet(1, size), heads=("basic",), class_source="none", device=device)  # warm-up
    for label, kwargs in runs:
        subset = RandomEvalSet(max(1, count // 4), size) if kwargs.get("ms_flip") else dataset  # 12 views each
        start = time.perf_counter()
        evaluate(segmentor, subset, device=device, **kwargs)
        _sync(device)
        seconds = time.perf_counter() - start
        rows.append((f"evaluate {label}, {len(subset)} imgs {size}^2", f"{seconds:.2f} s",
                     f"{len(subset) / seconds:.2f} img/s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    device = torch.device(args.device)
    confusion_rows = bench_confusion(device, images=2 if args.quick else 8, size=256 if args.quick else 512,
                                     repeats=3 if args.quick else 7)
    eval_rows = bench_evaluation(device, count=4 if args.quick else 8, size=128 if args.quick else 256)
    table = Table(title="scribbleseg evaluation benchmark (model: MiT-b0 widths, depth 1 per stage, 21 classes)")
    table.add_column("what")
    table.add_column("time", justify="right")
    table.add_column("throughput", justify="right")
    for row in confusion_rows:
        table.add_row(*row)
    table.add_section()
    for row in eval_rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    console.print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
                  f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
                  f"device {device} {gpu}, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
