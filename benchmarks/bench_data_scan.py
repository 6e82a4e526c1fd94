"""How fast does ``find_unscribbled`` check a VOC-sized training set before training starts?

Writes ``--count`` scribble PNGs of VOC size (500x375, palette mode like ``pascal_2012_scribble``: a
few 3-px strokes of random classes on 255, one in ten all 255), then times
``find_unscribbled(samples, info, workers=w)`` for each ``--workers`` value (best of ``--repeats``,
after one warm-up pass so the files are in the page cache) and prints images/s and the speed-up over
one thread, with the machine. Extrapolates to 10582 images (VOC train_aug).

    python benchmarks/bench_data_scan.py [--count 2000] [--workers 1 2 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from scribbleseg.data import VOC_CLASS_NAMES, VOC_PALETTE, DatasetInfo, SampleFiles, find_unscribbled
from scribbleseg.data.image_io import write_png_atomic

HEIGHT, WIDTH = 375, 500
VOC_TRAIN_AUG = 10582


def scribble_like(rng: np.random.Generator, empty: bool) -> np.ndarray:
    """``[375, 500]`` uint8: 255 with 2-6 random 3-px polylines of random VOC ids (all 255 if ``empty``)."""
    label = np.full((HEIGHT, WIDTH), 255, np.uint8)
    if empty:
        return label
    for _ in range(rng.integers(2, 7)):
        class_id = rng.integers(0, len(VOC_CLASS_NAMES))
        points = rng.integers((0, 0), (HEIGHT, WIDTH), size=(5, 2))
        for (y0, x0), (y1, x1) in zip(points[:-1], points[1:]):
            steps = max(abs(y1 - y0), abs(x1 - x0), 1)
            ys = np.linspace(y0, y1, steps).round().astype(int)
            xs = np.linspace(x0, x1, steps).round().astype(int)
            for dy in (-1, 0, 1):
                label[np.clip(ys + dy, 0, HEIGHT - 1), xs] = class_id
    return label


def write_scribbles(folder: Path, count: int, seed: int = 0) -> list[SampleFiles]:
    """``count`` palette PNG scribbles in ``folder`` (one in ten empty) as samples (images not needed)."""
    rng = np.random.default_rng(seed)
    palette = [c for colour in VOC_PALETTE for c in colour] + [0] * (768 - 3 * len(VOC_PALETTE))
    samples = []
    for index in range(count):
        path = folder / f"{index:06d}.png"
        write_png_atomic(path, scribble_like(rng, empty=index % 10 == 0), palette=palette)
        samples.append(SampleFiles(name=path.stem, image=folder / f"{path.stem}.jpg", scribble=path))
    return samples


def images_per_second(samples: list[SampleFiles], info: DatasetInfo, workers: int, repeats: int) -> float:
    """Best throughput of ``find_unscribbled`` over ``repeats`` passes."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        found = find_unscribbled(samples, info, workers=workers)
        best = min(best, time.perf_counter() - start)
    assert len(found) == (len(samples) + 9) // 10
    return len(samples) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    info = DatasetInfo(class_names=VOC_CLASS_NAMES, palette=VOC_PALETTE, layout="voc")
    with tempfile.TemporaryDirectory() as tmp:
        samples = write_scribbles(Path(tmp), args.count)
        find_unscribbled(samples, info, workers=1)  # warm-up: files in the page cache
        rates = {w: images_per_second(samples, info, w, args.repeats) for w in args.workers}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores visible, "
          f"Python {platform.python_version()}, {platform.system()}")
    print(f"{args.count} palette PNG scribbles of {WIDTH}x{HEIGHT}, best of {args.repeats}\n")
    print(f"{'threads':>7} | {'images/s':>9} | {'vs 1 thread':>11} | {'10582 images (s)':>16}")
    print(f"{'-' * 7}-+-{'-' * 9}-+-{'-' * 11}-+-{'-' * 16}")
    base = rates.get(1, next(iter(rates.values())))
    for workers, rate in rates.items():
        print(f"{workers:>7} | {rate:>9.0f} | {rate / base:>10.2f}x | {VOC_TRAIN_AUG / rate:>16.1f}")


if __name__ == "__main__":
    main()
