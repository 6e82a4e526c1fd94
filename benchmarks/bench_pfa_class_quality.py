"""How good must the class set be? PFA's augmented heads with ground-truth classes corrupted at set rates.

Class source "noisy oracle": from each image's ground-truth label set, every absent object class is added
with probability ``fp`` and every present object class removed with probability ``fn`` (background always
stays; deterministic per image). For one trained checkpoint this prints the local / global mIoU over a
grid of (fp, fn) beside the basic head, and the precision / recall each cell's class sets have, so a
classifier's measured precision / recall can be read off against the mIoU it can give. Evaluation only.

    python benchmarks/bench_pfa_class_quality.py RUN/checkpoints/last.safetensors [--fp 0 0.25 0.5 1] [--fn 0 0.1 0.25 0.5]

Measured numbers: docs/pfa.md ("How good must the classes be").
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from scribbleseg.engine.evaluation.evaluate import evaluate
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.methods import ClassSource

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pfa_class_sources import load_trained  # noqa: E402


class NoisyOracleClassSource(ClassSource):
    """Ground-truth classes with false positives added at rate ``fp`` and false negatives at rate ``fn``."""

    needs_ground_truth = True

    def __init__(self, fp: float, fn: float, seed: int = 0) -> None:
        self.fp, self.fn, self.seed = fp, fn, seed
        self.chosen: list[torch.Tensor] = []
        self.truth: list[torch.Tensor] = []

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        rows = []
        for name, truth in zip(names, given.bool().cpu()):
            generator = torch.Generator().manual_seed(zlib.crc32(f"{self.seed}:{name}".encode()))
            draw = torch.rand(truth.shape, generator=generator)
            chosen = torch.where(truth, draw >= self.fn, draw < self.fp)
            self.chosen.append(chosen[1:].clone())
            self.truth.append(truth[1:].clone())
            rows.append(chosen)
        return self._with_background(torch.stack(rows).to(evidence.basic.device))

    def precision_recall(self) -> tuple[float, float]:
        chosen, truth = torch.stack(self.chosen), torch.stack(self.truth)
        hits = float((chosen & truth).sum())
        return 100 * hits / max(float(chosen.sum()), 1.0), 100 * hits / max(float(truth.sum()), 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--fp", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--fn", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    method, dataset, _, dependent, _ = load_trained(args.checkpoint)
    basic = evaluate(method, dataset, InferenceSettings(heads=("basic",)))["basic"].miou
    table = Table(title=f"{args.checkpoint} ({len(dataset)} images): mIoU % with corrupted GT classes; "
                        f"basic {100 * basic:.1f}")
    for column in ["fp rate", "fn rate", "precision %", "recall %", *dependent]:
        table.add_column(column, justify="right")
    for fp in args.fp:
        for fn in args.fn:
            source = NoisyOracleClassSource(fp, fn)
            report = evaluate(method, dataset, InferenceSettings(heads=tuple(dependent),
                                                                 class_source=source))
            precision, recall = source.precision_recall()
            table.add_row(f"{fp:g}", f"{fn:g}", f"{precision:.1f}", f"{recall:.1f}",
                          *(f"{100 * report[head].miou:.1f}" for head in dependent))
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
