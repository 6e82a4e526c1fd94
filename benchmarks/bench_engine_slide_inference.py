"""Benchmark of whole-image vs sliding-window ``predict``: peak memory and time per image size, and the
mIoU difference of the two modes on the demo's validation set.

1. **Memory and time.** A PFA model of MiT-B0 size (MiT-B0 encoder dims 32/64/160/256, depths 2/2/2/2,
   SegFormer decoder width 256, K = 21 classes, random weights, seed 0: the numbers do not depend on
   the weights) is saved as a checkpoint; a smooth synthetic RGB PNG of each size is written; then each
   case runs ``scribbleseg predict CKPT IMAGE --out DIR --device cpu --mode whole|slide`` in its own
   process, which reports its own peak resident memory (``VmHWM`` of ``/proc/self/status``) at exit. Whole
   mode above ``--max-whole`` pixels per side is not run (the issue measured 15.5 GB and a kill at 8000²).
   Slide mode uses the defaults (512 px tiles, stride 384, Gaussian blending); the label maps of the two
   modes are compared where both ran.
2. **mIoU, whole vs slide.** The demo's PFA config (``scribbleseg.demo.pipeline``, synthetic 128 x 128
   images, 24 validation images) is trained for ``--train-iters`` iterations (short: the point is the
   difference between the modes, not the score), then scored whole and with 64 px tiles (stride 48, so
   every image is 3 x 3 tiles), Gaussian and uniform blending, heads basic and local (oracle classes and
   ``threshold:N`` classes chosen once per image from the stitched basic prediction).

Run: ``python benchmarks/bench_engine_slide_inference.py [--sizes 2000 4000 8000] [--max-whole 4000]
[--probs-sizes 4000] [--train-iters 300] [--skip-miou] [--skip-memory] [--work DIR]``;
``--probs-sizes`` adds slide cases that also write ``--probs``. Prints the tables and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from scribbleseg.engine.runs.checkpoint import load_model_checkpoint, save_model_checkpoint
from scribbleseg.engine.config.schema import ExperimentConfig, ModelConfig
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.engine.inference.windows import SlideSettings
from scribbleseg.models.heads.segformer_family import SegFormerDecoder
from scribbleseg.models.mit.family import MiTBackbone

NUM_CLASSES = 21
GIB = 1024 ** 3


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}")


def write_checkpoint(folder: Path) -> Path:
    """MiT-B0-size PFA model, random weights, saved like a trained run's checkpoint."""
    torch.manual_seed(0)
    cfg = ExperimentConfig(model=ModelConfig(backbone=MiTBackbone(name="mit_b0", drop_path=0.0),
                                             decoder=SegFormerDecoder(embed_dim=256, dropout=0.0)))
    method = build_method(cfg, NUM_CLASSES, load_pretrained=False)
    names = ["background"] + [f"class{i}" for i in range(1, NUM_CLASSES)]
    return save_model_checkpoint(folder / "run" / "checkpoints" / "best.safetensors", method, cfg,
                                 {"step": 0, "class_names": names})


def write_image(path: Path, side: int) -> Path:
    """A smooth synthetic ``side x side`` RGB image (sines + blocks: small PNG, varied predictions)."""
    rows = np.arange(side, dtype=np.float32)[:, None]
    image = np.empty((side, side, 3), dtype=np.uint8)
    for channel, (fy, fx) in enumerate(((37.0, 53.0), (71.0, 29.0), (113.0, 97.0))):
        columns = np.arange(side, dtype=np.float32)[None, :]
        wave = 127.5 + 60 * np.sin(rows / fy) + 60 * np.cos(columns / fx)
        blocks = ((rows // 300 + columns // 300) % 3) * 10
        image[:, :, channel] = np.clip(wave + blocks, 0, 255).astype(np.uint8)
    Image.fromarray(image).save(path, compress_level=1)
    return path


# Runs the CLI in the child and writes the child's own VmHWM (kB) to $PEAK_FILE on the way out. ru_maxrss
# from wait4 is not used: Linux carries the parent's high-water mark into a vforked child across exec.
_CHILD = """
import os, runpy, sys
sys.argv = ["scribbleseg", *sys.argv[1:]]
try:
    runpy.run_module("scribbleseg", run_name="__main__")
finally:
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    with open(os.environ["PEAK_FILE"], "w") as peak:
        peak.write(status["VmHWM"].split()[0])
"""


def run_case(arguments: list[str]) -> dict:
    """``scribbleseg ARGUMENTS`` in its own process: wall seconds, that process's peak RSS, exit code."""
    peak_file = Path(tempfile.mkstemp(prefix="peak_")[1])
    env = dict(os.environ, PEAK_FILE=str(peak_file),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", _CHILD, *arguments], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    peak_kib = int(peak_file.read_text() or 0)
    peak_file.unlink()
    error = process.stderr.decode(errors="replace").strip().splitlines()[-1:]
    return {"seconds": seconds, "peak_gib": peak_kib * 1024 / GIB, "code": process.returncode,
            "error": error[0] if process.returncode and error else ""}


def memory_table(args, console: Console, work: Path) -> None:
    checkpoint = write_checkpoint(work)
    columns = ("image", "mode", "peak RSS GiB", "time s", "time / whole", "labels = whole", "note")
    table = Table(title="predict, one image, CPU: peak RSS of the process and wall time "
                        f"(MiT-B0-size PFA, K={NUM_CLASSES}, head basic)")
    for name in columns:
        table.add_column(name, justify="left" if name in ("image", "mode", "note") else "right")

    def add_row(*cells: str) -> None:
        table.add_row(*cells)
        console.print("| " + " | ".join(cells) + " |")  # as soon as measured: a long run keeps its rows

    defaults = SlideSettings()
    tiling = f"{defaults.tile} px tiles, stride {defaults.step}, {defaults.blend}"
    console.print("| " + " | ".join(columns) + " |")
    startup = run_case(["--help"])
    add_row("-", "start-up only", f"{startup['peak_gib']:.2f}", f"{startup['seconds']:.1f}", "", "",
            "python -m scribbleseg --help: included in every time below")
    cases = [(side, mode, False) for side in args.sizes for mode in ("whole", "slide")]
    cases += [(side, "slide", True) for side in args.probs_sizes]
    whole: dict[int, dict] = {}
    for side, mode, probs in cases:
        image = work / f"image_{side}.png"
        if not image.exists():
            write_image(image, side)
        label = mode + (" + --probs" if probs else "")
        if mode == "whole" and side > args.max_whole:
            add_row(f"{side}²", label, "-", "-", "", "", f"not run (side > --max-whole {args.max_whole})")
            continue
        out = work / f"out_{side}_{mode}{'_probs' if probs else ''}"
        result = run_case(["predict", str(checkpoint), str(image), "--out", str(out), "--device", "cpu",
                           "--mode", mode, *(["--probs"] if probs else [])])
        ratio = agree = ""
        if mode == "whole" and result["code"] == 0:
            whole[side] = result
        if mode == "slide" and side in whole and result["code"] == 0:
            ratio = f"{result['seconds'] / whole[side]['seconds']:.2f}"
            name = image.with_suffix(".png").name
            whole_labels = np.array(Image.open(work / f"out_{side}_whole" / name))
            agree = f"{100 * (whole_labels == np.array(Image.open(out / name))).mean():.2f} %"
        note = tiling if mode == "slide" else ""
        if probs and result["code"] == 0:
            size = (out / "probabilities" / image.with_suffix(".npy").name).stat().st_size / GIB
            note += f"; {size:.2f} GiB float16 .npy streamed"
            shutil.rmtree(out, ignore_errors=True)  # a large file: do not keep it in the work folder
        if result["code"]:
            note = f"exit {result['code']}: {result['error']}"
        add_row(f"{side}²", label, f"{result['peak_gib']:.2f}", f"{result['seconds']:.1f}", ratio, agree, note)
    console.print(table)


def miou_table(args, console: Console, work: Path) -> None:
    from scribbleseg.engine.build.data_factory import build_eval_dataset, ensure_data_root
    from scribbleseg.demo.pipeline import demo_configs, threshold_pixels, DEMO_PFA_CONFIG
    from scribbleseg.engine.evaluation.evaluate import evaluate
    from scribbleseg.engine.training.trainer import train

    _, cfg = demo_configs(work / "demo", seed=0, device="cpu", max_iters=args.train_iters)
    cfg.train.progress = False
    ensure_data_root(cfg.data)
    start = time.perf_counter()
    result = train(cfg, work / "demo" / "pfa", overwrite=True)
    trained = time.perf_counter() - start
    method, _, _ = load_model_checkpoint(result.last_checkpoint)
    _, dataset = build_eval_dataset(cfg)
    threshold = f"threshold:{threshold_pixels(DEMO_PFA_CONFIG['data']['synthetic']['size'])}"
    modes = {"whole": SlideSettings(mode="whole"),
             "slide 64/48 gaussian": SlideSettings(mode="slide", tile=64, stride=48),
             "slide 64/48 uniform": SlideSettings(mode="slide", tile=64, stride=48, blend="uniform")}
    rows = [("basic", "-", "oracle"), ("local", "oracle", "oracle"), ("local", threshold, threshold)]
    scores: dict[str, dict[tuple[str, str], float]] = {}
    for label, settings in modes.items():
        scores[label] = {}
        for source in ("oracle", threshold):
            report = evaluate(method, dataset, heads=("basic", "local"), class_source=source, device="cpu",
                              slide=settings)
            for head in ("basic", "local"):
                scores[label][(head, source)] = 100 * report[head].miou
    table = Table(title=f"mIoU % on the demo's {len(dataset)} validation images (128², PFA demo config "
                        f"trained {args.train_iters} iterations, {trained:.0f} s)")
    for name in ("head", "classes", *modes, *(f"{label} - whole" for label in modes if label != "whole")):
        table.add_column(name, justify="left" if name in ("head", "classes") else "right")
    for head, shown, source in rows:
        values = [scores[label][(head, source)] for label in modes]
        table.add_row(head, shown, *(f"{v:.1f}" for v in values), *(f"{v - values[0]:+.1f}" for v in values[1:]))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--max-whole", type=int, default=4000, help="largest side run in whole mode")
    parser.add_argument("--probs-sizes", type=int, nargs="*", default=[],
                        help="sides at which slide + --probs is also run (a K*H*W*2-byte file each)")
    parser.add_argument("--train-iters", type=int, default=300)
    parser.add_argument("--skip-miou", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    console = Console(width=170)
    console.print(f"machine: {machine()}")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_slide_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_memory:
            memory_table(args, console, work)
        if not args.skip_miou:
            miou_table(args, console, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
