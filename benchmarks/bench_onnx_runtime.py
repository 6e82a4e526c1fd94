"""ONNX Runtime vs PyTorch eager on the CPU: latency of an exported SegFormer (MiT-B0 / MiT-B1) model.

For each model: build it (random weights, the decoder of the PFA paper: SegFormer, E = 256), export it
with ``export_onnx`` (the same graph as ``scribbleseg export``: ``method.infer`` -> basic logits) and time
``method.infer(x)`` in PyTorch eager against ``session.run`` in ONNX Runtime on the same ``[1, 3, S, S]``
input, in ONE process with the same thread count (``torch.set_num_threads`` = ORT
``intra_op_num_threads``): a few warm-up passes, then the median of ``--runs`` timed passes, measured
alternately (eager, ORT, eager, ...) so background load hits both alike. The outputs are compared first.

``--global`` also times a PFA model's ``global`` head (bank filled with random prototypes, classes
chosen in the graph by ``threshold:500``).

Usage::

    python benchmarks/bench_onnx_runtime.py [--models mit_b0,mit_b1] [--size 512] [--runs 10] [--threads 2]

Needs the ``[onnx]`` extra; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.deploy.onnx.export import export_onnx
from scribbleseg.methods import PredictionThresholdClassSource
from scribbleseg.models import count_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models_forward import cpu_model  # noqa: E402

NUM_CLASSES = 21  # PASCAL VOC


def build(backbone: str, method: str):  # type: ignore[no-untyped-def]
    """A random-weight model of ``backbone`` with a SegFormer decoder (E = 256); PFA's bank filled."""
    cfg = ExperimentConfig.model_validate({"method": method, "model": {
        "backbone": {"type": "mit", "name": backbone}, "decoder": {"type": "segformer", "embed_dim": 256},
        "pretrained": None}})
    torch.manual_seed(0)
    model = build_method(cfg, NUM_CLASSES, load_pretrained=False).eval()
    if method == "pfa":
        with torch.no_grad():
            model.bank.prototypes.copy_(F.normalize(torch.randn_like(model.bank.prototypes), dim=-1))
            model.bank.filled.fill_(model.bank.slots)
    return model


def session_for(path: Path, threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def median_ms(functions, runs: int, warmup: int) -> list[float]:
    """Median milliseconds of each function, timed alternately after ``warmup`` passes of each."""
    for fn in functions:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(runs):
        for index, fn in enumerate(functions):
            start = time.perf_counter()
            fn()
            times[index].append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mit_b0,mit_b1")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--global", dest="with_global", action="store_true", help="also PFA's global head")
    args = parser.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    console = Console()
    table = Table(title=f"ONNX Runtime vs PyTorch eager, CPU, batch 1, {args.size}x{args.size}, "
                        f"{args.threads} threads, median of {args.runs}")
    for column in ("model", "head", "params", "eager ms", "ORT ms", "eager / ORT", "max |Δ logit|", "export s"):
        table.add_column(column, justify="left" if column in ("model", "head") else "right")
    cases = [(name, "pce", "basic") for name in args.models.split(",")]
    if args.with_global:
        cases += [(name, "pfa", "global") for name in args.models.split(",")]
    images = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    feed = images.numpy()
    source = PredictionThresholdClassSource(500)
    report_opset = None
    with tempfile.TemporaryDirectory() as folder:
        for name, method_name, head in cases:
            model = build(name, method_name)
            path = Path(folder) / f"{name}_{head}.onnx"
            start = time.perf_counter()
            report = export_onnx(model, path, head=head, class_source="threshold:500",
                                 palette=[(0, 0, 0)] * NUM_CLASSES, check=False)
            export_seconds = time.perf_counter() - start
            session = session_for(path, args.threads)
            output = f"logits_{head}"
            heads = ("basic",) if head == "basic" else ("basic", head)

            def run_eager():  # type: ignore[no-untyped-def]  # the graph's own path, eagerly
                return model.infer(images, heads, classes=lambda evidence: source.classes(evidence, images.shape[-2:]))

            with torch.inference_mode():
                reference = run_eager().logits[head]
            got = torch.from_numpy(session.run([output], {"images": feed})[0])
            difference = float((got - reference).abs().max())
            with torch.inference_mode():
                eager_ms, ort_ms = median_ms([run_eager, lambda: session.run([output], {"images": feed})],
                                             args.runs, args.warmup)
            table.add_row(name, head, f"{count_parameters(model) / 1e6:.1f} M", f"{eager_ms:.0f}", f"{ort_ms:.0f}",
                          f"{eager_ms / ort_ms:.2f}x", f"{difference:.1e}", f"{export_seconds:.0f}")
            report_opset = report.opset
            del report, session, model
    console.print(table)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    console.print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, load average {load}; "
                  f"torch {torch.__version__}, onnxruntime {ort.__version__}; opset {report_opset}")


if __name__ == "__main__":
    main()
