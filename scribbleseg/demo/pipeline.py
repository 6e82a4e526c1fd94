"""``scribbleseg demo``: synthetic data -> pCE baseline vs PFA -> one comparison table + an overlay grid.

1. Generates the built-in synthetic texture set (``<out>/data``; reused when already there).
2. Trains the partial-cross-entropy baseline and PFA with the same tiny MiT, data and schedule
   (``<out>/baseline``, ``<out>/pfa``: ordinary run folders).
3. Scores both on the validation images against the dense masks: every head each model has; the heads
   that need the image's class set (PFA's local / global) with three class sources: ``oracle``
   (ground-truth image labels, Tab. 4 "category labels", the upper bound), ``head`` (PFA's built-in image
   classifier, trained jointly from the scribbles' image labels: the honest row) and ``threshold``
   (classes with enough pixels in the basic prediction, Tab. 4 "prediction map filtering"); and the
   classifier's mAP on the validation images.
4. Prints one table, writes ``<out>/results.json`` (``rows``: model / head / classes / miou ...;
   ``classifier``: AP per class and mAP) and ``<out>/overlay_grid.png`` (Fig.-4 style).

The pCE baseline is the paper's (Tab. 2): partial cross-entropy only, no image classifier.

The configs are :data:`DEMO_PFA_CONFIG` / :data:`DEMO_BASELINE_OVERRIDES` (the same values as
``configs/synthetic_pfa.yaml`` / ``synthetic_baseline.yaml``; a test keeps them equal).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from scribbleseg.data import read_label_map
from scribbleseg.atomic_files import atomic_write_text, ensure_writable_dir
from scribbleseg.engine.runs.checkpoint import load_model_checkpoint
from scribbleseg.engine.runs.layout import RunLayout
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.build.data_factory import build_eval_dataset, generate_synthetic_set
from scribbleseg.engine.evaluation.evaluate import evaluate, evaluate_class_sources
from scribbleseg.engine.inference.probabilities import class_dependent, infer_probabilities, resolve_heads
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.prediction.palette_io import denormalize_image
from scribbleseg.engine.figures.prediction_figures import overlay_grid
from scribbleseg.engine.training.trainer import train
from scribbleseg.methods import (
    BASIC_HEAD,
    OracleClassSource,
    default_class_source,
    default_min_pixels,
    parse_class_source,
)

DEMO_PFA_CONFIG: dict[str, Any] = {
    "name": "synthetic_pfa",
    "data": {
        "layout": "folder", "root": "data/synthetic", "train_split": "train", "val_split": "val",
        "crop_size": 96, "scale_range": [0.75, 1.5], "rotation_degrees": 10, "hflip": True, "blur": True,
        "batch_size": 8, "num_workers": 0,
        "synthetic": {"seed": 0, "num_train": 100, "num_val": 24, "size": 128},
    },
    "method": "pfa",
    "model": {
        "backbone": {"type": "mit", "name": None,
                     "dims": {"embed_dims": [16, 32, 64, 128], "depths": [1, 1, 1, 1], "num_heads": [1, 2, 4, 8],
                              "mlp_ratios": [4, 4, 4, 4], "sr_ratios": [8, 4, 2, 1]},
                     "strides": [4, 2, 2, 2], "drop_path": 0.0},
        "decoder": {"type": "segformer", "embed_dim": 64, "dropout": 0.0},
        "pretrained": None,
    },
    "pfa": {"use_local": True, "use_global": True, "warmup_iters": 360, "slots": 5, "topk_ratio": 0.08,
            "momentum": 0.99, "lambda_local": 0.01, "lambda_global": 0.01},
    "classifier": {"features": "fused", "pooling": "avgmax", "order": "pool_then_score", "lambda_cls": 0.1,
                   "targets": "crop", "detach": False},
    "optim": {"lr": 1.0e-3, "head_lr_mult": 1, "weight_decay": 0.01, "warmup_iters": 30, "poly_power": 1.0},
    "train": {"max_iters": 1200, "val_interval": 0, "log_interval": 25, "checkpoint_interval": 0, "seed": 0,
              "device": "auto", "best_metric": "val/basic/miou"},
    "eval": {"heads": None, "class_source": "head", "extra_class_sources": ["oracle"]},
}
DEMO_BASELINE_OVERRIDES: dict[str, Any] = {
    "name": "synthetic_baseline",
    "method": "pce",
    "classifier": None,
    "eval": {"class_source": "oracle", "extra_class_sources": []},
}
DEMO_CLASS_SOURCES = ("oracle", "head", "threshold")  # upper bound, honest built-in, Tab. 4's filtering
GRID_IMAGES = 4


def demo_configs(out_dir: Path, seed: int, device: str = "auto",
                 max_iters: int | None = None) -> tuple[ExperimentConfig, ExperimentConfig]:
    """(baseline, PFA) configs of the demo writing to ``out_dir`` with training seed ``seed``."""
    raw = copy.deepcopy(DEMO_PFA_CONFIG)
    raw["data"]["root"] = str(out_dir / "data")
    raw["train"]["seed"] = seed
    raw["train"]["device"] = device
    if max_iters is not None:
        raw["train"]["max_iters"] = max_iters
        raw["pfa"]["warmup_iters"] = max_iters * raw["pfa"]["warmup_iters"] // DEMO_PFA_CONFIG["train"]["max_iters"]
        raw["optim"]["warmup_iters"] = min(raw["optim"]["warmup_iters"], max_iters // 4)
    pfa = config_from_mapping(raw, where="demo PFA config")
    baseline_raw = copy.deepcopy(raw)
    for section, values in DEMO_BASELINE_OVERRIDES.items():
        if isinstance(values, dict):
            baseline_raw[section].update(values)
        else:
            baseline_raw[section] = values
    baseline = config_from_mapping(baseline_raw, where="demo baseline config")
    return baseline, pfa


@dataclass
class DemoResult:
    """Scores of the demo (rows of the table) and the files it wrote."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    results_path: Path | None = None
    grid_path: Path | None = None
    seconds: float = 0.0

    def miou(self, model: str, head: str, classes: str = "oracle") -> float:
        """mIoU of one row of the table."""
        for row in self.rows:
            if row["model"] == model and row["head"] == head and row["classes"] in (classes, "-"):
                return float(row["miou"])
        raise KeyError(f"no row {model}/{head}/{classes}")


def _heads_of(method) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    """(heads that need no class set, class-dependent heads) this trained model can run."""
    runnable, _ = resolve_heads(method, None)
    dependent = class_dependent(method, runnable)
    return [head for head in runnable if head not in dependent], dependent


def _write_grid(baseline, pfa, dataset, out_path: Path, device: str, info) -> Path:
    """Fig.-4-style grid: image | scribbles | pCE baseline | PFA basic | PFA's last head | GT.

    The last head's classes come from PFA's own classifier when it has one (``head``), else the threshold.
    """
    count = min(GRID_IMAGES, len(dataset))
    items = [dataset[i] for i in range(count)]
    images = [item["image"].to(device) for item in items]
    spec = default_class_source(pfa)
    _, dependent = _heads_of(pfa)
    shown = dependent[-1:]
    base_out = infer_probabilities(baseline, images, InferenceSettings(heads=(BASIC_HEAD,)))
    pfa_out = infer_probabilities(pfa, images, InferenceSettings(heads=(BASIC_HEAD, *shown),
                                                                 class_source=parse_class_source(spec)))
    columns = {
        "pCE baseline": [m.cpu().numpy() for m in base_out.labels(BASIC_HEAD)],
        "PFA basic": [m.cpu().numpy() for m in pfa_out.labels(BASIC_HEAD)],
        **{f"PFA {head} ({spec} classes)": [m.cpu().numpy() for m in pfa_out.labels(head)] for head in shown},
        "ground truth": [item["mask"].numpy() for item in items],
    }
    scribbles = [read_label_map(sample.scribble, info.num_classes, info.ignore_index)
                 for sample in dataset.samples[:count]]
    return overlay_grid([denormalize_image(item["image"]) for item in items], columns, info.palette, out_path,
                        scribbles=scribbles, row_names=[item["name"] for item in items],
                        ignore_index=info.ignore_index, class_names=info.class_names)


def _row(model: str, head: str, classes: str, result) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One row of the demo table / ``results.json``."""
    return {"model": model, "head": head, "classes": classes, "miou": result.miou,
            "pixel_accuracy": result.pixel_accuracy, "per_class_iou": [float(v) for v in result.per_class_iou]}


def _table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for name, justify in (("model", "left"), ("head", "left"), ("classes at inference", "left"),
                          ("mIoU %", "right"), ("pixel acc %", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(row["model"], row["head"], row["classes"], f"{100 * row['miou']:.1f}",
                      f"{100 * row['pixel_accuracy']:.1f}")
    return table


def run_demo(out_dir: str | Path = "demo_output", seed: int = 0, device: str = "auto",
             max_iters: int | None = None, console: Console | None = None, progress: bool = True,
             resume: bool = False) -> DemoResult:
    """Run the whole demo (see module docstring); returns the scores and the written files.

    ``resume``: continue a demo that was stopped (Ctrl-C, SIGTERM): a model whose run folder has a ``last``
    checkpoint continues from it exactly (a finished one is reused as it is), the others train afresh.
    """
    console = console or Console()
    start = time.perf_counter()
    out = ensure_writable_dir(out_dir)
    baseline_cfg, pfa_cfg = demo_configs(out, seed, device, max_iters)
    for cfg in (baseline_cfg, pfa_cfg):
        cfg.train.progress = progress
    console.print(f"[bold]1/4[/] synthetic data set in {out / 'data'}")
    generate_synthetic_set(pfa_cfg.data)

    runs = {}
    for step, (label, cfg) in enumerate((("baseline", baseline_cfg), ("pfa", pfa_cfg)), start=2):
        console.print(f"[bold]{step}/4[/] training {cfg.name} ({cfg.train.max_iters} iterations) -> {out / label}")
        continues = resume and RunLayout(out / label).last.is_file()
        result = train(cfg, out / label, resume=continues, overwrite=not continues)
        runs[label], _, _ = load_model_checkpoint(result.last_checkpoint)

    console.print("[bold]4/4[/] evaluating on the validation images (dense masks)")
    eval_device = "cpu" if device == "auto" else device  # where the checkpoints were loaded
    info, val_set = build_eval_dataset(pfa_cfg)
    rows: list[dict[str, Any]] = []
    classifiers: dict[str, Any] = {}
    for model_name, key in (("pCE baseline", "baseline"), ("PFA", "pfa")):
        method = runs[key]
        plain, dependent = _heads_of(method)
        method.to(eval_device)
        oracle = OracleClassSource()
        report = evaluate(method, val_set, InferenceSettings(heads=tuple(plain + dependent), class_source=oracle))
        for head in plain:
            rows.append(_row(model_name, head, "-", report[head]))
        sources = [spec for spec in DEMO_CLASS_SOURCES if spec != "head" or method.has_image_classifier]
        table = evaluate_class_sources(method, val_set, [parse_class_source(spec) for spec in sources],
                                       InferenceSettings(heads=tuple(dependent)), known={oracle.spec: report})
        for spec, results in table.items():
            rows.extend(_row(model_name, head, spec, result) for head, result in results.items())
        if report.classifier is not None:
            classifiers[model_name] = report.classifier.to_dict()
    seconds = time.perf_counter() - start
    size = DEMO_PFA_CONFIG["data"]["synthetic"]["size"]
    console.print(_table(rows, f"synthetic set, {len(val_set)} validation images, training seed {seed} "
                               f"(threshold = {default_min_pixels((size, size))} px)"))
    for model_name, record in classifiers.items():
        console.print(f"{model_name} image classifier on the validation images: mAP {100 * record['map']:.1f} %, "
                      f"precision {100 * record['precision']:.1f} % / recall {100 * record['recall']:.1f} % "
                      f"at p >= {record['threshold']:g}, exact class set {100 * record['exact_set_rate']:.1f} %")
    grid = _write_grid(runs["baseline"], runs["pfa"], val_set, out / "overlay_grid.png", eval_device, info)
    results_path = atomic_write_text(out / "results.json", json.dumps({
        "seed": seed, "seconds": round(seconds, 1), "class_names": list(info.class_names), "rows": rows,
        "classifier": classifiers.get("PFA"), "classifiers": classifiers,
        "configs": {"baseline": json.loads(baseline_cfg.to_json()), "pfa": json.loads(pfa_cfg.to_json())},
    }, indent=2) + "\n")
    console.print(f"overlay grid: {grid}\nresults: {results_path}\n"
                  f"finished in {time.perf_counter() - start:.0f} s")
    return DemoResult(rows=rows, results_path=results_path, grid_path=grid, seconds=time.perf_counter() - start)
