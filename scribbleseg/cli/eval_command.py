"""``scribbleseg eval CONFIG --checkpoint CKPT``: mIoU of a checkpoint (or an exported ``.onnx`` model) on full
images with dense ground truth.

Prints a per-class IoU table (one column per head, like the paper's Tab. 6 transposed), for a model with an
image classifier its AP per class and mAP, and (``--source-table``, on by default) the class-dependent heads
under every class source (oracle / head / threshold / none, as Tab. 4); writes the results as JSON
(atomically) to ``--out`` or, by default, to ``<run>/eval/<checkpoint>_<data set>_<split>_<classes>.json``
(the data set as ``<folder name>-<hash of its path>``, so evaluations on different data sets never
overwrite each other).
The model is loaded by :func:`scribbleseg.api.load_model` and scored by :func:`scribbleseg.api.evaluate`
with the settings of the config's ``eval`` section and the options given here (the calls of the Python API).
An ``.onnx`` model runs with ONNX Runtime; its class-dependent head chooses its classes in the graph, so
it has no class-source table. User errors (missing / incompatible checkpoint, bad ``--classes``,
unwritable output) are :class:`~scribbleseg.errors.ScribblesegError` subclasses: the root app prints one
line and exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from scribbleseg.atomic_files import ensure_writable_dir
from scribbleseg.cli.parsing import slide_options

def eval_command(
    config: Path = typer.Argument(..., help="Experiment config (YAML) naming the data set and model."),
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="Model checkpoint (.safetensors) or exported "
                                                                     "model (.onnx, run with ONNX Runtime)."),
    head: Optional[List[str]] = typer.Option(
        None, "--head", help="A head of the model (e.g. basic); repeat for several (default: every head it has)."),
    classes: Optional[str] = typer.Option(
        None, "--classes",
        help="Class source of the augmented heads: oracle | head[:TAU] | threshold[:N] | file:PATH | none "
             "(default: the config's eval.class_source)."),
    source_table: bool = typer.Option(
        True, "--source-table/--no-source-table",
        help="Also score the augmented heads with every other class source (oracle / head / threshold / none)."),
    ms_flip: Optional[bool] = typer.Option(
        None, "--ms-flip/--no-ms-flip", help="Multi-scale + horizontal-flip test (default: eval.ms_flip)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help="Config override section.key=value."),
    out: Optional[Path] = typer.Option(None, "--out", help="Results JSON (default: <run>/eval/...json)."),
    split: Optional[str] = typer.Option(None, "--split", help="Split to score (default: data.val_split)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per forward pass."),
    amp: bool = typer.Option(False, "--amp", help="Autocast the network (bf16 on CPU, fp16 on CUDA)."),
    mode: Optional[slide_options.Mode] = slide_options.MODE_OPTION,
    tile: Optional[int] = slide_options.TILE_OPTION,
    stride: Optional[int] = slide_options.STRIDE_OPTION,
    blend: Optional[slide_options.Blend] = slide_options.BLEND_OPTION,
    pixel_budget: Optional[int] = slide_options.PIXEL_BUDGET_OPTION,
) -> None:
    """Score a checkpoint on full validation images against dense ground truth (mIoU per head)."""
    from scribbleseg.api import CheckpointModel, evaluate, evaluate_class_sources, load_model
    from scribbleseg.engine.config.loading import load_config
    from scribbleseg.engine.build.data_factory import absolute_data_root, build_eval_dataset
    from scribbleseg.engine.evaluation.eval_settings import eval_settings
    from scribbleseg.engine.evaluation.results import write_results_json
    from scribbleseg.engine.evaluation.tables import class_source_table, classifier_table, comparison_table
    from scribbleseg.engine.evaluation.evaluate import comparison_sources
    from scribbleseg.engine.runtime.devices import resolve_device
    from scribbleseg.engine.runs.layout import eval_results_path
    from scribbleseg.methods import BASIC_HEAD
    from scribbleseg.methods.class_sources import parse_class_source

    slide = slide_options.settings_from_options(mode, tile, stride, blend, pixel_budget)
    cfg = load_config(config, list(overrides or []))
    info, dataset = build_eval_dataset(cfg, split)
    # a bad --classes fails before the model loads
    asked = parse_class_source(classes if classes is not None else cfg.eval.class_source, info.class_names)
    model = load_model(checkpoint, device, expect=cfg, num_classes=info.num_classes, amp=amp)
    source = model.class_source(asked if classes is not None or not model.in_graph_classes else None)
    out_path = out if out is not None else eval_results_path(checkpoint, source, split or cfg.data.val_split,
                                                                cfg.data.root)
    ensure_writable_dir(out_path.parent)
    settings = eval_settings(cfg.eval, source, heads=head, ms_flip=ms_flip, batch_size=batch_size, amp=amp,
                             slide=slide)
    use_ms_flip = settings.flip
    report = evaluate(model, dataset, settings=settings, progress=True)
    sources = {}
    if source_table:
        sources = evaluate_class_sources(model, dataset, comparison_sources(model, source), settings,
                                         known={source.spec: report})
    class_spec = source.spec
    checkpoint_model = model if isinstance(model, CheckpointModel) else None
    target = resolve_device(device) if checkpoint_model is not None else device
    console = Console(highlight=False, soft_wrap=True)
    console.print(comparison_table(
        report, title=f"{checkpoint.name} on {split or cfg.data.val_split} ({len(dataset)} images), "
                      f"classes: {class_spec}{', MS+flip' if use_ms_flip else ''}"))
    if report.classifier is not None:
        console.print(classifier_table(report.classifier, title=f"image classifier on {split or cfg.data.val_split} "
                                                                f"(Tab. 4 mAP: Q2L 96.6, MCAR 94.3 on VOC val)"))
    if sources:
        console.print(class_source_table(sources, report.get(BASIC_HEAD), report.classifier))
    for name, why in report.skipped.items():
        console.print(f"[yellow]skipped head {name}:[/] {why}")
    for note in dict.fromkeys(note for result in report.values() for note in result.notes):
        console.print(f"[yellow]note:[/] {note}")
    write_results_json(report, out_path, sources=sources, checkpoint=str(checkpoint), config=str(config), split=split or
                       cfg.data.val_split, class_source=class_spec, ms_flip=use_ms_flip,
                       step=checkpoint_model.meta.get("step") if checkpoint_model is not None else None,
                       device=str(target),
                       data_root=absolute_data_root(cfg.data.root))
    console.print(f"results written to {out_path}")


def register(app: typer.Typer) -> None:
    """Add ``eval`` to ``app``."""
    app.command("eval")(eval_command)
