"""Does the data loader keep a 2-core training step fed?

Measures the ScribbleDataset + training-transform loader throughput (samples/s) with 0, 1 and 2
workers on the synthetic set, and the time of one training step (forward + backward + AdamW) of a
small MiT + SegFormer head at the same crop and batch size, then prints one table row per worker
count. "fed" means one loader batch takes less time than one training step.

    python benchmarks/bench_data_loader.py [--crop 128] [--batch 8] [--size 160] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from scribbleseg.data import ScribbleDataset, build_train_transform, make_synthetic_dataset, open_dataset
from scribbleseg.models import MixTransformer, SegFormerHead


def loader_samples_per_second(dataset: ScribbleDataset, batch: int, workers: int, batches: int) -> float:
    """Samples/s over ``batches`` batches, after the first batch (worker start-up excluded)."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=workers > 0)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    seen = 0
    for _ in range(batches):
        try:
            images = next(iterator)["image"]
        except StopIteration:
            iterator = iter(loader)
            images = next(iterator)["image"]
        seen += images.shape[0]
    return seen / (time.perf_counter() - start)


def training_step_seconds(num_classes: int, batch: int, crop: int, repeats: int) -> float:
    """Median seconds of one forward + backward + AdamW step of a small MiT (mit_b0 widths, depth 1)."""
    encoder = MixTransformer(embed_dims=(32, 64, 160, 256), num_heads=(1, 2, 5, 8), depths=(1, 1, 1, 1))
    head = SegFormerHead(encoder.embed_dims, num_classes=num_classes, embed_dim=128)
    optimiser = torch.optim.AdamW(list(encoder.parameters()) + list(head.parameters()), lr=1e-4)
    images = torch.randn(batch, 3, crop, crop)
    labels = torch.randint(0, num_classes, (batch, crop, crop))
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        logits = F.interpolate(head.classify(head.fuse(encoder(images))), size=(crop, crop), mode="bilinear")
        loss = F.cross_entropy(logits, labels, ignore_index=255)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--num-images", type=int, default=64)
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        root = make_synthetic_dataset(Path(folder) / "syn", seed=0, num_train=args.num_images, num_val=0,
                                      size=args.size)
        info, samples = open_dataset(root, split="train")
        dataset = ScribbleDataset(samples, info, transform=build_train_transform(crop_size=args.crop))
        step = training_step_seconds(info.num_classes, args.batch, args.crop, repeats=5)
        rows = [(workers, loader_samples_per_second(dataset, args.batch, workers, args.batches))
                for workers in (0, 1, 2)]
    print(f"\nloader vs training step: crop {args.crop}, batch {args.batch}, images {args.size}^2, "
          f"torch threads {args.threads}; step of small MiT = {1000 * step:.0f} ms "
          f"({args.batch / step:.0f} samples/s needed)")
    print(f"{'workers':>8}{'samples/s':>11}{'ms/batch':>10}{'step ms':>9}{'fed':>6}")
    for workers, rate in rows:
        batch_ms = 1000 * args.batch / rate
        print(f"{workers:>8}{rate:>11.0f}{batch_ms:>10.1f}{1000 * step:>9.0f}{'yes' if batch_ms < 1000 * step else 'no':>6}")


if __name__ == "__main__":
    main()
