"""PFA's gain at honest inference: train the demo's PFA model with config variants and score its class sources.

For every variant (a name and ``--set``-style overrides of the demo's PFA config) and every seed, trains
PFA on the built-in synthetic set (or ``--data``, a folder-layout copy of it), then scores on the
validation images: the basic head, the local / global heads with the class sources oracle / head /
threshold (none = basic), and the image classifier's mAP. ``--baseline`` also trains the pCE baseline
per seed. Prints one table (mean over the seeds last) and writes ``<out>/bench_results.json`` after every
run (a killed run keeps what finished).

    python benchmarks/bench_pfa_class_sources.py --out /tmp/bench --seeds 0 1 2 --baseline \\
        --variant fused classifier.features=fused --variant deepest classifier.features=deepest

Measured numbers and the machine are in docs/pfa.md ("Built-in image classifier", "Class sources").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from scribbleseg.atomic_files import atomic_write_text
from scribbleseg.engine.runs.checkpoint import load_model_checkpoint
from scribbleseg.engine.config.loading import apply_overrides, config_from_mapping
from scribbleseg.engine.build.data_factory import build_eval_dataset, ensure_data_root
from scribbleseg.demo.pipeline import demo_configs
from scribbleseg.engine.evaluation.evaluate import evaluate, evaluate_class_sources
from scribbleseg.engine.inference.probabilities import class_dependent, resolve_heads
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.methods import OracleClassSource, parse_class_source
from scribbleseg.engine.training.trainer import train

SOURCES = ("oracle", "head", "threshold")


def _with(cfg, overrides: list[str], name: str):  # type: ignore[no-untyped-def]
    raw = apply_overrides(json.loads(cfg.to_json()), overrides)
    raw["name"] = name
    return config_from_mapping(raw, where=f"variant {name}")


def first_global_step(run_dir: Path) -> int | None:
    """The first logged step whose phase is ``global`` (``None``: the global phase never ran)."""
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("phase") == "global":
            return int(row["step"])
    return None


def load_trained(checkpoint: Path, device: str = "cpu"):  # type: ignore[no-untyped-def]
    """(method, validation set, runnable heads, class-dependent heads, meta) of a trained checkpoint."""
    method, cfg, meta = load_model_checkpoint(checkpoint, map_location=device)
    _, val_set = build_eval_dataset(cfg)
    runnable, _ = resolve_heads(method, None)
    return method, val_set, runnable, class_dependent(method, runnable), meta


def score(checkpoint: Path, device: str) -> dict[str, Any]:
    """mIoU (%) of every head x class source and the classifier's mAP (%) of one trained model."""
    method, val_set, runnable, dependent, meta = load_trained(checkpoint, device)
    report = evaluate(method, val_set, InferenceSettings(heads=tuple(runnable), class_source=OracleClassSource()))
    row: dict[str, Any] = {"basic": 100 * report["basic"].miou, "phase": meta.get("phase")}
    sources = [spec for spec in SOURCES if spec != "head" or method.has_image_classifier]
    table = evaluate_class_sources(method, val_set, [parse_class_source(spec) for spec in sources],
                                   InferenceSettings(heads=tuple(dependent)), known={"oracle": report})
    for spec, results in table.items():
        row.update({f"{head}@{spec}": 100 * result.miou for head, result in results.items()})
    if report.classifier is not None:
        row["mAP"] = 100 * report.classifier.map
        row.update({f"cls_{key}": 100 * value for key, value in report.classifier.set_scores().items()})
    return row


def run_variants(out: Path, seeds: list[int], variants: list[tuple[str, list[str]]], baseline: bool = False,
                 data: Path | None = None, iters: int | None = None) -> list[dict[str, Any]]:
    """Train and score every (variant, seed) not yet in ``out/bench_results.json``; returns all records."""
    results_path = out / "bench_results.json"
    records: list[dict[str, Any]] = json.loads(results_path.read_text()) if results_path.is_file() else []
    done = {(r["variant"], r["seed"]) for r in records}
    console = Console(width=240)
    for seed in seeds:
        baseline_cfg, pfa = demo_configs(out, seed, "cpu", iters)
        data_override = [f"data.root={data}"] if data is not None else []
        ensure_data_root(_with(pfa, data_override, "data").data)
        runs = [(name, _with(pfa, data_override + overrides, f"{name}_s{seed}")) for name, overrides in variants]
        if baseline:
            runs.insert(0, ("pCE", _with(baseline_cfg, data_override, f"pce_s{seed}")))
        for name, cfg in runs:
            if (name, seed) in done:
                continue
            cfg.train.progress = False
            start = time.perf_counter()
            result = train(cfg, out / f"{name}_s{seed}", overwrite=True)
            row = score(result.last_checkpoint, "cpu")
            row.update({"variant": name, "seed": seed, "train_seconds": round(time.perf_counter() - start, 1),
                        "global_from": first_global_step(out / f"{name}_s{seed}")})
            records.append(row)
            atomic_write_text(results_path, json.dumps(records, indent=1) + "\n")
            console.print(f"{name} seed {seed}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()
                                                             if isinstance(v, float)))
    console.print(summary_table(records))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar=("NAME", "KEY=VALUE"),
                        help="a variant name and its overrides of the demo PFA config (repeatable)")
    parser.add_argument("--baseline", action="store_true", help="also train the pCE baseline per seed")
    parser.add_argument("--data", type=Path, default=None, help="folder-layout data set (default: the demo's)")
    parser.add_argument("--iters", type=int, default=None, help="training iterations (default: the demo's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a loaded CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = [(spec[0], list(spec[1:])) for spec in args.variant] or [("default", [])]
    run_variants(args.out, args.seeds, variants, args.baseline, args.data, args.iters)


def summary_table(records: list[dict[str, Any]]) -> Table:
    """Per variant: every numeric column's mean over the seeds (and the seeds' spread in brackets)."""
    columns = [key for key in dict.fromkeys(k for r in records for k in r)
               if key not in ("variant", "seed", "phase", "train_seconds", "global_from")]
    table = Table(title="mIoU / mAP (%) on the validation images, mean over seeds [min, max]")
    table.add_column("variant")
    table.add_column("seeds")
    table.add_column("global from step")
    for key in columns:
        table.add_column(key, justify="right")
    for name in dict.fromkeys(r["variant"] for r in records):
        rows = [r for r in records if r["variant"] == name]
        cells = []
        for key in columns:
            values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
            cells.append(f"{statistics.mean(values):.1f} [{min(values):.1f},{max(values):.1f}]" if values else "-")
        starts = ",".join("never" if r.get("global_from") is None else str(r["global_from"]) for r in rows)
        table.add_row(name, ",".join(str(r["seed"]) for r in rows), starts, *cells)
    return table


if __name__ == "__main__":
    main()
