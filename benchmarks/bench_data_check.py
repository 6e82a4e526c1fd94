"""How long does ``train``'s data check before step 0 take, first and from its cache?

Writes ``--count`` training samples of VOC size (500x375 JPEG images and palette-PNG scribbles: a few
3-px strokes on 255), then times :func:`scribbleseg.engine.build.data_check.check_run_data` on them:

* ``first``: no cache (every image and scribble decoded and checked: sizes, label values);
* ``rerun``: the cache written by the first pass (what ``--resume`` or a second run does);
* ``one changed``: the same after touching one file (only it is decoded again).

Prints seconds and samples/s per pass with the machine line. The files are in the page cache (just
written); from a cold disk the first pass is slower by the read time.

    python benchmarks/bench_data_check.py [--count 1000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from bench_data_scan import HEIGHT, WIDTH, write_scribbles
from scribbleseg.data import VOC_CLASS_NAMES, VOC_PALETTE, DatasetInfo
from scribbleseg.engine.build.data_check import WORKERS, check_run_data


def write_images(folder: Path, samples, seed: int = 0) -> None:  # type: ignore[no-untyped-def]
    """One 500x375 JPEG (smooth noise, quality 90) per sample, at the sample's image path."""
    rng = np.random.default_rng(seed)
    for sample in samples:
        small = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((WIDTH, HEIGHT), Image.BILINEAR).save(sample.image, quality=90)


def timed(splits, info, cache: Path) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    report = check_run_data(splits, info, "bench", cache, show=False)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    from bench_common import cpu_name

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        samples = write_scribbles(folder, args.count)
        write_images(folder, samples)
        info = DatasetInfo(class_names=VOC_CLASS_NAMES, palette=VOC_PALETTE, ignore_index=255, root=folder,
                           layout="folder", split="train")
        cache = folder / "run" / "data_check.json"
        cache.parent.mkdir()
        rows = []
        for label in ("first", "rerun"):
            splits = [("train", SimpleNamespace(samples=list(samples)))]
            seconds, report = timed(splits, info, cache)
            rows.append((label, seconds, report.decoded))
        touched = samples[0].scribble
        os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
        seconds, report = timed([("train", SimpleNamespace(samples=list(samples)))], info, cache)
        rows.append(("one changed", seconds, report.decoded))
        load = f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" if hasattr(os, "getloadavg") else ""
    print(f"data check of {args.count} samples (500x375 JPEG + scribble PNG), {WORKERS} reader threads; "
          f"{cpu_name()}{load}")
    print(f"{'pass':<12} {'seconds':>8} {'decoded':>8} {'samples/s':>10}")
    for label, seconds, decoded in rows:
        print(f"{label:<12} {seconds:>8.2f} {decoded:>8} {args.count / seconds:>10.0f}")


if __name__ == "__main__":
    main()
