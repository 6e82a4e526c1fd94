"""Cost of the Gated CRF loss (forward + backward) against one pCE forward + backward, and against an
``F.unfold`` formulation of the same loss.

    python benchmarks/bench_methods_gated_crf.py [--device cpu|cuda] [--threads N] [--repeats 5]
                                                 [--unfold-batch 2]

Rows (default settings: radius 5, downscale 4, 0.9 RGBXY + 0.1 XY kernels):
* training, SegFormer: batch 8, 21 classes, logits 128^2 from 512^2 images (grid 128^2);
* training, DeepLab-style 1/8 decoder: logits 64^2 from 512^2 images (upsampled to the 128^2 grid);
* demo: batch 8, 5 classes, logits 24^2 from 96^2 images (grid 24^2).
Each row times ``gated_crf_loss`` and ``partial_cross_entropy`` (logits upsampled to the scribble size,
about 3 % of the pixels scribbled) on the same logits, in interleaved pairs; the ratio is the median of
the per-pair ratios.

The last row compares the shifted-view implementation with an ``F.unfold`` one (which builds the
``[N, K, (2r+1)^2, h, w]`` neighbourhood tensor, as the authors' code does) on a batch of
``--unfold-batch`` at the 128^2 grid, after checking that both give the same loss.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Callable

import torch
import torch.nn.functional as F

from scribbleseg.data import IMAGENET_MEAN, IMAGENET_STD
from scribbleseg.methods.gated_crf import GatedCRFSettings, gated_crf_loss
from scribbleseg.pfa import partial_cross_entropy

from bench_pfa_ops import machine, timed_once  # benchmarks/ is on sys.path when this script runs

NORM = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}


def paired(first: Callable[[], None], second: Callable[[], None], device: torch.device, repeats: int):
    """Median seconds of each and the median of the per-pair ratios second / first, after a warm-up."""
    first()
    second()
    a, b = [], []
    for _ in range(repeats):
        a.append(timed_once(first, device))
        b.append(timed_once(second, device))
    return statistics.median(a), statistics.median(b), statistics.median(y / x for x, y in zip(a, b))


def batch_of(device, batch, classes, logit_side, image_side, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, logit_side, logit_side, generator=generator).to(device)
    images = torch.randn(batch, 3, image_side, image_side, generator=generator).to(device)
    scribbles = torch.full((batch, image_side, image_side), 255, dtype=torch.long)
    rows = torch.randint(0, image_side, (batch, 4), generator=generator)
    for n in range(batch):  # 4 horizontal strokes of width side/128 per image (~3 % of the pixels)
        for k, row in enumerate(rows[n].tolist()):
            scribbles[n, row: row + max(1, image_side // 128), :] = k % classes
    return logits.requires_grad_(), images, scribbles.to(device)


def loss_rows(device: torch.device, repeats: int):
    settings = GatedCRFSettings()
    cases = [("training, SegFormer 1/4: 8x21x128^2 from 512^2", 8, 21, 128, 512),
             ("training, DeepLab 1/8: 8x21x64^2 from 512^2", 8, 21, 64, 512),
             ("demo: 8x5x24^2 from 96^2", 8, 5, 24, 96)]
    rows = []
    for label, batch, classes, logit_side, image_side in cases:
        logits, images, scribbles = batch_of(device, batch, classes, logit_side, image_side)

        def pce() -> None:
            logits.grad = None
            partial_cross_entropy(logits, scribbles).backward()

        def crf() -> None:
            logits.grad = None
            gated_crf_loss(logits, images, settings, **NORM).backward()

        rows.append((label, *paired(pce, crf, device, repeats)))
    return rows


def unfold_gated_crf(logits, images, settings: GatedCRFSettings):
    """The same loss (downscale 1, no gate) through ``F.unfold``: ``[N, C, (2r+1)^2, h, w]`` neighbourhoods."""
    radius = settings.radius
    diameter = 2 * radius + 1
    probs = logits.float().softmax(1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = (images * std + images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) * 255.0
    n, k, h, w = probs.shape

    def neighbours(x):
        return F.unfold(x, diameter, padding=radius).view(x.shape[0], x.shape[1], diameter * diameter, h, w)

    inside = neighbours(torch.ones_like(probs[:, :1]))  # 0 where the window leaves the image
    colour = (neighbours(rgb) - rgb.unsqueeze(2)).square().sum(1, keepdim=True)
    steps = torch.arange(-radius, radius + 1, device=probs.device, dtype=probs.dtype)
    spatial = (steps.view(-1, 1).square() + steps.view(1, -1).square()).view(1, 1, -1, 1, 1)
    kernel = torch.zeros_like(colour)
    for desc in settings.kernels:
        term = torch.exp(-0.5 * spatial / desc.xy ** 2)
        kernel = kernel + desc.weight * (term * torch.exp(-0.5 * colour / desc.rgb ** 2) if desc.rgb else term)
    kernel[:, :, diameter * diameter // 2] = 0.0
    agreement = (neighbours(probs) * probs.unsqueeze(2)).sum(1, keepdim=True)
    return (kernel * inside * (1.0 - agreement)).sum() / (n * h * w)


def formulation_row(device: torch.device, repeats: int, batch: int):
    settings = GatedCRFSettings(downscale=1)
    logits, images, _ = batch_of(device, batch, 21, 128, 128, seed=1)
    ours = gated_crf_loss(logits, images, settings, **NORM)
    theirs = unfold_gated_crf(logits, images, settings)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)

    def shifted() -> None:
        logits.grad = None
        gated_crf_loss(logits, images, settings, **NORM).backward()

    def unfolded() -> None:
        logits.grad = None
        unfold_gated_crf(logits, images, settings).backward()

    gigabytes = batch * 21 * (2 * settings.radius + 1) ** 2 * 128 * 128 * 4 / 1e9
    label = f"{batch}x21x128^2, r=5: unfold ({gigabytes:.2f} GB neighbourhood tensor) vs shifted views"
    return label, *paired(shifted, unfolded, device, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--unfold-batch", type=int, default=2)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"machine: {machine(device)}; device {device}; medians of {args.repeats} interleaved pairs")
    print(f"{'forward + backward':<52} {'pCE ms':>9} {'GCRF ms':>9} {'GCRF/pCE':>9}")
    for label, pce, crf, ratio in loss_rows(device, args.repeats):
        print(f"{label:<52} {pce * 1e3:9.1f} {crf * 1e3:9.1f} {ratio:8.2f}x")
    label, ours, theirs, ratio = formulation_row(device, args.repeats, args.unfold_batch)
    print(f"\n{label}\n{'  (shifted ms, unfold ms, unfold/shifted)':<52} {ours * 1e3:9.1f} {theirs * 1e3:9.1f}"
          f" {ratio:8.2f}x")


if __name__ == "__main__":
    main()
