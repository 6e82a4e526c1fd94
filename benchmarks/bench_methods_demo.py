"""The methods side by side on the built-in demo data: pCE, pCE + Gated CRF, PFA, PFA + Gated CRF.

Each model is trained with the demo's recipe (``scribbleseg.demo.pipeline.demo_configs``: the tiny MiT from
scratch, 1200 iterations, the same data, schedule and seed) and scored on the demo's validation images
against the dense masks: the basic head of every model, and PFA's class-dependent heads with the oracle,
the built-in image classifier (``head``, the demo's PFA config trains one) and the prediction-threshold
class sources. Prints one table (mIoU %) per seed and the mean, plus the
machine; ``--out`` keeps the run folders and writes ``methods_demo.json``.

Run: ``python benchmarks/bench_methods_demo.py [--seeds 0 1 2] [--iters 1200] [--out DIR]`` (about 7
minutes per seed on 2 quiet CPU cores).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from scribbleseg.engine.runs.checkpoint import load_model_checkpoint
from scribbleseg.engine.build.data_factory import build_eval_dataset, generate_synthetic_set
from scribbleseg.demo.pipeline import DEMO_PFA_CONFIG, demo_configs
from scribbleseg.engine.evaluation.evaluate import evaluate
from scribbleseg.engine.inference.probabilities import class_dependent, resolve_heads
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.training.trainer import train
from scribbleseg.methods import BASIC_HEAD, GatedCRFSettings, parse_class_source

METHODS = ("pce", "pce + gated_crf", "pfa", "pfa + gated_crf")


def configs_for(out: Path, seed: int, iters: int | None) -> dict:
    """The demo's baseline / PFA configs, each with and without the Gated CRF regulariser."""
    baseline, pfa = demo_configs(out, seed, device="cpu", max_iters=iters)
    found = {}
    for name, cfg in (("pce", baseline), ("pfa", pfa)):
        found[name] = cfg
        with_crf = cfg.model_copy(deep=True)
        with_crf.gated_crf = GatedCRFSettings()
        with_crf.name = f"{cfg.name}_gated_crf"
        found[f"{name} + gated_crf"] = with_crf
    for cfg in found.values():
        cfg.train.progress = False
    return found


def score(checkpoint: Path, val_set) -> dict[str, float]:
    """mIoU of the basic head, and of each class-dependent head with oracle, head and threshold classes."""
    method, _, _ = load_model_checkpoint(checkpoint)
    runnable, _ = resolve_heads(method, None)
    dependent = class_dependent(method, runnable)
    scores = {BASIC_HEAD: evaluate(method, val_set, InferenceSettings(heads=(BASIC_HEAD,)))[BASIC_HEAD].miou}
    sources = ("oracle", "head", "threshold") if method.has_image_classifier else ("oracle", "threshold")
    for source in sources:
        if dependent:
            report = evaluate(method, val_set, InferenceSettings(heads=tuple(dependent),
                                                                 class_source=parse_class_source(source)))
            scores.update({f"{head} ({source})": report[head].miou for head in dependent})
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iters", type=int, default=None, help="training iterations (default: the demo's)")
    parser.add_argument("--out", type=Path, default=None, help="keep run folders and results here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="methods_demo_"))
    syn = DEMO_PFA_CONFIG["data"]["synthetic"]
    results: dict[int, dict[str, dict[str, float]]] = {}
    start = time.perf_counter()
    for seed in args.seeds:
        results[seed] = {}
        for name, cfg in configs_for(out, seed, args.iters).items():
            generate_synthetic_set(cfg.data)  # the demo's data set (once; later calls find it)
            run = train(cfg, out / f"seed{seed}" / name.replace(" + ", "_"), overwrite=True)
            _, val_set = build_eval_dataset(cfg)
            results[seed][name] = score(run.last_checkpoint, val_set)
            print(f"seed {seed} {name:<16} " + ", ".join(f"{k} {100 * v:.1f}" for k, v in results[seed][name].items()),
                  flush=True)
    columns = list(dict.fromkeys(key for seed in results.values() for row in seed.values() for key in row))
    print(f"\nmachine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}; {time.perf_counter() - start:.0f} s; mIoU % on {syn['num_val']} val images")
    print(f"{'seed':<6}{'method':<18}" + "".join(f"{c:>23}" for c in columns))
    for seed, rows in list(results.items()) + [("mean", None)]:
        for name in METHODS:
            values = ([results[s][name].get(c) for s in results] for c in columns) if rows is None else \
                ([rows[name].get(c)] for c in columns)
            cells = []
            for column_values in values:
                present = [v for v in column_values if v is not None]
                cells.append(f"{100 * statistics.mean(present):>23.1f}" if present else f"{'-':>23}")
            print(f"{str(seed):<6}{name:<18}" + "".join(cells))
    (out / "methods_demo.json").write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2) + "\n")
    print(f"results: {out / 'methods_demo.json'}")


if __name__ == "__main__":
    main()
