"""What the built-in image classifier costs: one training step of the demo's PFA model with and without it.

Builds the demo's PFA model twice (``classifier`` section on / off), times fwd + bwd + AdamW steps on the
same random batch (8 crops of 96 x 96, 6 classes, global phase), interleaving the two models so machine
load hits both alike, and prints medians and their ratio.

    python benchmarks/bench_pfa_classifier_cost.py [--steps 30] [--threads 1]

Measured numbers: docs/pfa.md ("Built-in image classifier", cost).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.demo.pipeline import demo_configs
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.methods import TrainBatch

CLASSES = 6


def demo_method(classifier: bool):  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as folder:
        _, pfa = demo_configs(Path(folder), 0, "cpu")
    raw = json.loads(pfa.to_json())
    if not classifier:
        raw["classifier"] = None
        raw["eval"] = {"class_source": "oracle"}
    cfg = config_from_mapping(raw)
    cfg.pfa.warmup_iters = 0
    torch.manual_seed(0)
    method = build_method(cfg, CLASSES, load_pretrained=False)
    return method, torch.optim.AdamW(method.parameters(), lr=1e-4)


def batch() -> TrainBatch:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, 96, 96, generator=generator)
    scribbles = torch.full((8, 96, 96), 255, dtype=torch.long)
    for index in range(CLASSES):
        scribbles[:, 4 + 15 * index: 7 + 15 * index, 10:80] = index
    present = torch.ones(8, CLASSES, dtype=torch.bool)
    return TrainBatch(images, scribbles, present, present)


def step(method, optimiser, data: TrainBatch, iteration: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = method.training_step(data, iteration)
    optimiser.zero_grad(set_to_none=True)
    result.loss.backward()
    optimiser.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = batch()
    models = {"without classifier": demo_method(False), "with classifier": demo_method(True)}
    times: dict[str, list[float]] = {name: [] for name in models}
    for iteration in range(args.steps + 3):
        for name, (method, optimiser) in models.items():
            seconds = step(method, optimiser, data, iteration)
            if iteration >= 3:  # warm-up steps are not timed
                times[name].append(seconds)
    base = statistics.median(times["without classifier"])
    table = Table(title=f"demo PFA training step, batch 8 x 96 x 96, {args.threads} thread(s), median of {args.steps}")
    for column in ("model", "ms / step", "ratio"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, values in times.items():
        median = statistics.median(values)
        table.add_row(name, f"{1000 * median:.1f}", f"{median / base:.3f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
