"""Benchmark of the PFA method layer against plain loop references and the plain pCE training step.

    python benchmarks/bench_pfa_ops.py [--device cpu|cuda] [--repeats 5] [--model mit_b1] [--batch 2]
                                       [--size 256] [--threads N] [--skip-step]

Rows:
* prototype extraction (eq. 1-3), N=8 images, K=21 classes, D=256, 128x128 features, 48 present pairs:
  ``extract_local_prototypes`` vs a per-(image, class) loop.
* bank update (eq. 4-5), same prototypes, bank full (EMA phase) and empty (fill phase):
  ``PrototypeMemoryBank.update`` vs the sequential loop.
* training step (forward + backward): PFA in the global phase (bank full, local + global branches) vs
  the plain pCE step (basic prediction only) on the same MiT model, weights and batch; the two are run
  in interleaved pairs and the ratio is the median of the per-pair ratios.

On a shared, oversubscribed CPU use ``--threads 1``: multi-threaded small ops then mostly measure the
scheduler.

Times are medians after one warm-up run (``--repeats`` runs, more for sub-100 ms ops so each row gets
about 0.5 s); the table prints the machine and thread count.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from scribbleseg.methods import TrainBatch, partial_cross_entropy
from scribbleseg.models import MixTransformer, SegFormerHead
from scribbleseg.pfa import PFAMethod, PFASettings, PrototypeMemoryBank, extract_local_prototypes


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text


def timed(fn: Callable[[], object], device: torch.device, repeats: int, budget_s: float = 0.5) -> float:
    """Median seconds of ``fn`` after one warm-up: ``repeats`` runs, more (up to 200) for fast ops."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    start = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - start
    runs = []
    for _ in range(max(repeats, min(200, int(budget_s / max(first, 1e-6))))):
        start = time.perf_counter()
        fn()
        sync()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def loop_prototypes(features, confidence, present, topk_ratio=0.08):
    """Reference of eq. (1)-(3): one top-k and weighted mean per (image, present class)."""
    batch, dim, height, width = features.shape
    k = max(1, int(topk_ratio * height * width))
    out = features.new_zeros(batch, confidence.shape[1], dim)
    for n, t in present.nonzero().tolist():
        values, positions = confidence[n, t].reshape(-1).topk(k)
        total = values.sum()
        if total > 0:
            mean = features[n].reshape(dim, -1)[:, positions] @ values / total
            out[n, t] = F.normalize(mean, dim=0)
    return out


def loop_bank_update(bank, filled, protos, present, alpha):
    """Reference of eq. (4)-(5): image by image, class by class."""
    slots = bank.shape[1]
    for n, t in present.nonzero().tolist():
        if filled[t] < slots:
            bank[t, filled[t]] = protos[n, t]
            filled[t] += 1
        else:
            similarity = F.cosine_similarity(protos[n, t].unsqueeze(0), bank[t], dim=1)
            best = int(similarity.argmax())
            bank[t, best] = alpha * bank[t, best] + (1 - alpha) * protos[n, t]


def op_rows(device: torch.device, repeats: int) -> list[tuple[str, float, float]]:
    torch.manual_seed(0)
    batch, classes, dim, side = 8, 21, 256, 128
    features = torch.randn(batch, dim, side, side, device=device)
    confidence = torch.randn(batch, classes, side, side, device=device).softmax(1)
    present = torch.zeros(batch, classes, dtype=torch.bool, device=device)
    present[:, 0] = True
    for n in range(batch):
        present[n, torch.randperm(classes - 1)[:5] + 1] = True  # 8 x 6 = 48 present pairs
    rows = []
    vec = timed(lambda: extract_local_prototypes(features, confidence, present), device, repeats)
    ref = timed(lambda: loop_prototypes(features, confidence, present), device, repeats)
    rows.append(("prototype extraction (8x21x256, 128^2, 48 pairs)", vec, ref))

    protos = extract_local_prototypes(features, confidence, present)
    full = PrototypeMemoryBank(classes, 5, dim).to(device)
    for _ in range(5):
        full.update(F.normalize(torch.randn(batch, classes, dim, device=device), dim=2),
                    torch.ones(batch, classes, dtype=torch.bool, device=device))
    full_state = (full.prototypes.clone(), full.filled.clone())

    def vector_update(bank: PrototypeMemoryBank, state) -> None:
        bank.prototypes.copy_(state[0])
        bank.filled.copy_(state[1])
        bank.update(protos, present)

    def loop_update(state) -> None:
        loop_bank_update(state[0].clone(), state[1].clone(), protos, present, 0.99)

    vec = timed(lambda: vector_update(full, full_state), device, repeats)
    ref = timed(lambda: loop_update(full_state), device, repeats)
    rows.append(("bank update, EMA phase (bank full, 48 pairs)", vec, ref))
    empty = PrototypeMemoryBank(classes, 5, dim).to(device)
    empty_state = (empty.prototypes.clone(), empty.filled.clone())
    vec = timed(lambda: vector_update(empty, empty_state), device, repeats)
    ref = timed(lambda: loop_update(empty_state), device, repeats)
    rows.append(("bank update, empty bank (fills, + 3 EMA: class 0 in 8 images)", vec, ref))
    return rows


def step_rows(device: torch.device, repeats: int, model: str, batch: int, size: int):
    torch.manual_seed(0)
    encoder = MixTransformer.from_name(model, strides=(4, 2, 2, 2))
    head = SegFormerHead(in_channels=encoder.embed_dims, num_classes=21, embed_dim=256, dropout=0.1)
    seg = PFAMethod(encoder, head, num_classes=21, settings=PFASettings(warmup_iters=0)).to(device).train()
    images = torch.randn(batch, 3, size, size, device=device)
    scribbles = torch.full((batch, size, size), 255, dtype=torch.long, device=device)
    present = torch.zeros(batch, 21, dtype=torch.bool, device=device)
    for n in range(batch):
        for band, cls in enumerate((0, 3 + n, 15)):
            scribbles[n, 20 + 60 * band: 26 + 60 * band, 10: size - 10] = cls
            present[n, cls] = True
    for _ in range(3):  # fill the bank: every class, so the global phase is reached
        seg.bank.update(F.normalize(torch.randn(batch, 21, 256, device=device), dim=2),
                        torch.ones(batch, 21, dtype=torch.bool, device=device))
    assert seg.bank.is_full

    def plain_step() -> None:
        seg.zero_grad(set_to_none=True)
        _, basic = seg.encode(images)
        partial_cross_entropy(basic, scribbles).backward()

    def pfa_step() -> None:
        seg.zero_grad(set_to_none=True)
        result = seg.training_step(TrainBatch(images, scribbles, present, present), iteration=1)
        assert {"local", "global"} <= set(result.outputs)
        result.loss.backward()

    # interleaved (plain, PFA) pairs so that load changes on a shared machine hit both alike
    plain_step()
    pfa_step()
    plains, pfas = [], []
    for _ in range(repeats):
        plains.append(timed_once(plain_step, device))
        pfas.append(timed_once(pfa_step, device))
    ratio = statistics.median(b / a for a, b in zip(plains, pfas))
    label = f"training step fwd+bwd, {model}, batch {batch} at {size}^2: PFA global phase vs plain pCE"
    return label, statistics.median(pfas), statistics.median(plains), ratio


def timed_once(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="mit_b1")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-step", action="store_true", help="only the op rows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"machine: {machine(device)}; device {device}; median of {args.repeats}")
    rows = op_rows(device, args.repeats)
    print(f"{'operation':<62} {'ours ms':>9} {'ref ms':>9} {'ref/ours':>9}")
    for name, ours, ref in rows:
        print(f"{name:<62} {ours * 1e3:9.2f} {ref * 1e3:9.2f} {ref / ours:8.1f}x")
    if not args.skip_step:
        name, pfa, plain, ratio = step_rows(device, args.repeats, args.model, args.batch, args.size)
        print(f"{name}\n{'  (PFA ms, plain ms, median of per-pair ratios)':<62} {pfa * 1e3:9.1f} {plain * 1e3:9.1f}"
              f"   PFA/plain = {ratio:.2f}x")


if __name__ == "__main__":
    main()
