"""Is the synthetic set hard enough? Train the same tiny MiT + SegFormer head twice for the same budget:
once on the simulated scribbles (partial cross-entropy, 255 ignored) and once on the dense masks, then
print both validation mIoUs. Scribble-only training must stay clearly below dense training.

    python benchmarks/bench_data_synthetic_difficulty.py [--steps 5000] [--size 96] [--crop 64] [--threads 1]

Plain CE on scribbles (no PFA) is the baseline the method improves on; the gap to dense is the room.
Measured on a shared 2-core CPU, 1 torch thread (about 5 min per model at 5000 steps): scribbles
46.8 % vs dense 58.0 % val mIoU (gap 11.3 points); at 2500 steps 36.9 % vs 41.0 % (the gap widens
as training converges). Note: on a loaded 2-core machine 2 torch threads were up to 20x slower than 1.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from scribbleseg.data import (
    EvalDataset,
    ScribbleDataset,
    build_eval_transform,
    build_train_transform,
    make_synthetic_dataset,
    open_dataset,
)
from scribbleseg.data.dataset_info import SampleFiles
from scribbleseg.models import MixTransformer, SegFormerHead


def tiny_model(num_classes: int) -> tuple[MixTransformer, SegFormerHead]:
    """A MiT with tiny widths (about 0.4 M parameters) and its SegFormer head."""
    encoder = MixTransformer(embed_dims=(16, 32, 64, 128), num_heads=(1, 2, 4, 8), depths=(1, 1, 2, 1),
                             sr_ratios=(4, 2, 1, 1))
    return encoder, SegFormerHead(encoder.embed_dims, num_classes=num_classes, embed_dim=64, dropout=0.0)


def logits_full(encoder, head, images: torch.Tensor) -> torch.Tensor:
    """``[N, 3, H, W]`` -> ``[N, K, H, W]`` (decoder output upsampled bilinearly)."""
    logits = head.classify(head.fuse(encoder(images)))
    return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


def train(samples: list[SampleFiles], info, steps: int, crop: int, batch: int, seed: int, device: str):
    torch.manual_seed(seed)
    encoder, head = tiny_model(info.num_classes)
    encoder.to(device), head.to(device)
    params = list(encoder.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    dataset = ScribbleDataset(samples, info, transform=build_train_transform(crop_size=crop, scale=(0.75, 1.5), seed=seed))
    generator = torch.Generator().manual_seed(seed)
    step = 0
    while step < steps:
        for loaded in DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True,
                                 generator=generator, num_workers=0):
            images, labels = loaded["image"], loaded["scribble"]
            loss = F.cross_entropy(logits_full(encoder, head, images.to(device)), labels.to(device),
                                   ignore_index=info.ignore_index)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            if step == steps:
                break
    return encoder, head


@torch.no_grad()
def mean_iou(encoder, head, dataset: EvalDataset, num_classes: int, device: str) -> float:
    encoder.eval(), head.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for item in DataLoader(dataset, batch_size=1):
        prediction = logits_full(encoder, head, item["image"].to(device)).argmax(1).cpu().reshape(-1)
        target = item["mask"].reshape(-1)
        valid = target != 255
        confusion += torch.bincount(target[valid] * num_classes + prediction[valid],
                                    minlength=num_classes ** 2).reshape(num_classes, num_classes)
    intersection = confusion.diag().double()
    union = confusion.sum(0).double() + confusion.sum(1).double() - intersection
    return float((intersection / union.clamp(min=1)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--num-train", type=int, default=200)
    parser.add_argument("--num-val", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scribble-shrink", type=float, default=None,
                        help="shrink ratio of the simulated scribbles (default: the synthetic set's default)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        shrink = {} if args.scribble_shrink is None else {"scribble_shrink": args.scribble_shrink}
        root = make_synthetic_dataset(Path(folder) / "syn", seed=args.seed, num_train=args.num_train,
                                      num_val=args.num_val, size=args.size, **shrink)
        print(f"generated {args.num_train}+{args.num_val} images of {args.size}^2 in {time.perf_counter() - start:.1f} s")
        info, train_samples = open_dataset(root, split="train")
        _, val_samples = open_dataset(root, split="val")
        val = EvalDataset(val_samples, info, transform=build_eval_transform())
        dense_samples = [SampleFiles(s.name, s.image, scribble=s.mask, mask=s.mask) for s in train_samples]
        results = {}
        for label_kind, samples in (("scribbles (partial CE)", train_samples), ("dense masks (CE)", dense_samples)):
            start = time.perf_counter()
            encoder, head = train(samples, info, args.steps, args.crop, args.batch, args.seed, args.device)
            results[label_kind] = (mean_iou(encoder, head, val, info.num_classes, args.device),
                                   time.perf_counter() - start)
    print(f"\ntiny MiT, {args.steps} steps x batch {args.batch}, crop {args.crop}, device {args.device}")
    print(f"{'training labels':<26}{'val mIoU':>10}{'time s':>9}")
    for label_kind, (miou, seconds) in results.items():
        print(f"{label_kind:<26}{100 * miou:>9.1f}%{seconds:>9.1f}")
    scribble, dense = (value[0] for value in results.values())
    print(f"gap (dense - scribble): {100 * (dense - scribble):.1f} mIoU points")


if __name__ == "__main__":
    main()
