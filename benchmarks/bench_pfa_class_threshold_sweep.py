"""How the class sources' thresholds trade precision for recall, and what that does to PFA's augmented heads.

For one trained checkpoint, scores the local / global heads with ``head:TAU`` for several classifier
probabilities TAU and ``threshold:N`` for several pixel counts N (Tab. 4's "prediction map filtering"
rows), beside oracle and none; also prints the precision / recall of each source's class sets (object
classes only) against the ground-truth image labels. Evaluation only (no training), seconds on CPU.

    python benchmarks/bench_pfa_class_threshold_sweep.py RUN/checkpoints/last.safetensors \\
        [--taus 0.3 0.5 0.7] [--pixels 0 20 44 100 200]

Measured numbers: docs/pfa.md ("Choosing the head threshold").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from scribbleseg.engine.evaluation.evaluate import evaluate, evaluate_class_sources
from scribbleseg.engine.inference.probabilities import ImageFacts, infer_probabilities
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.methods import parse_class_source

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pfa_class_sources import load_trained  # noqa: E402


def set_scores(method, dataset, spec: str) -> tuple[float, float]:
    """Object-class precision and recall of the class sets ``spec`` gives on ``dataset``."""
    source = parse_class_source(spec)
    chosen, truth = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        output = infer_probabilities(method, [item["image"]], InferenceSettings(heads=("basic", "local"),
                                                                                class_source=source),
                                     ImageFacts(given=item["classes"][None]))
        if output.present is None:
            return float("nan"), float("nan")
        chosen.append(output.present[0, 1:].cpu())
        truth.append(item["classes"][1:].bool())
    chosen_t, truth_t = torch.stack(chosen), torch.stack(truth)
    hits = float((chosen_t & truth_t).sum())
    return 100 * hits / max(float(chosen_t.sum()), 1.0), 100 * hits / max(float(truth_t.sum()), 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--taus", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    parser.add_argument("--pixels", type=int, nargs="+", default=[0, 20, 44, 100, 200, 400])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    method, dataset, _, dependent, _ = load_trained(args.checkpoint)
    specs = ["oracle"] + ([f"head:{tau:g}" for tau in args.taus] if method.has_image_classifier else [])
    specs += [f"threshold:{pixels}" for pixels in args.pixels] + ["none"]
    basic = evaluate(method, dataset, InferenceSettings(heads=("basic",)))
    table = evaluate_class_sources(method, dataset, [parse_class_source(spec) for spec in specs],
                                   InferenceSettings(heads=tuple(dependent)), known={"none": basic})
    out = Table(title=f"{args.checkpoint} ({len(dataset)} images): mIoU % by class source; basic "
                      f"{100 * basic['basic'].miou:.1f}")
    for column in ["classes", *dependent, "precision %", "recall %"]:
        out.add_column(column, justify="left" if column == "classes" else "right")
    for spec, results in table.items():
        precision, recall = set_scores(method, dataset, spec) if spec != "none" else (float("nan"),) * 2
        out.add_row(spec, *(f"{100 * results[head].miou:.1f}" for head in dependent),
                    f"{precision:.1f}", f"{recall:.1f}")
    Console(width=200).print(out)


if __name__ == "__main__":
    main()
