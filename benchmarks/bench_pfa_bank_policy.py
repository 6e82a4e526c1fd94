"""``pfa.global_start`` on a data set with one rare class: does the global phase start, and when?

Copies the demo's synthetic set, re-simulates its training scribbles from the dense masks (thickness 3,
shrink 0.5, as the generator) with every stroke of one class removed from a share of the images
(``scribbleseg data simulate-scribbles --remove-class C --remove-fraction F``; the generator itself is
untouched), then trains the demo's PFA model with ``all_full`` (the paper) and ``seen_full`` and prints
the step the global phase started (or "never") and the heads' mIoU (bench_pfa_class_sources's table).

    python benchmarks/bench_pfa_bank_policy.py --out /tmp/bank --remove-class 3 --fractions 1.0 0.9 [--seeds 0]

Measured numbers: docs/pfa.md ("Memory bank start policy").
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pfa_class_sources import run_variants  # noqa: E402

from scribbleseg.data import simulate_scribble_folder  # noqa: E402
from scribbleseg.engine.build.data_factory import ensure_data_root  # noqa: E402
from scribbleseg.demo.pipeline import demo_configs  # noqa: E402

POLICIES = [("all_full", ["pfa.global_start=all_full"]), ("seen_full", ["pfa.global_start=seen_full"])]


def rare_class_copy(source: Path, target: Path, class_id: int, fraction: float) -> Path:
    """``source`` copied to ``target`` with the training scribbles of ``class_id`` removed from ``fraction``."""
    if not (target / "dataset.yaml").is_file():  # dataset.yaml last: its presence marks a complete copy
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("dataset.yaml"))
        simulate_scribble_folder(source / "masks" / "train", target / "scribbles" / "train", thickness=3,
                                 shrink=0.5, seed=0, remove_class=class_id, remove_fraction=fraction)
        shutil.copy2(source / "dataset.yaml", target / "dataset.yaml")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--remove-class", type=int, default=3)
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _, pfa = demo_configs(args.out, 0, "cpu")
    source = ensure_data_root(pfa.data)
    for fraction in args.fractions:
        data = rare_class_copy(Path(source), args.out / f"data_rare{args.remove_class}_{fraction:g}",
                               args.remove_class, fraction)
        run_variants(args.out / f"fraction_{fraction:g}", args.seeds, POLICIES, data=data, iters=args.iters)


if __name__ == "__main__":
    main()
