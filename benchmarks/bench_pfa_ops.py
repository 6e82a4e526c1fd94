"""Benchmark of the PFA method layer against plain loop references and the plain pCE training step.

    python benchmarks/bench_pfa_ops.py [--device cpu|cuda] [--repeats 5] [--model mit_b1] [--batch 2]
                                       [--size 256] [--threads N] [--skip-step] [--skip-compile]

Rows:
* prototype extraction (eq. 1-3), N=8 images, K=21 classes, D=256, 128x128 features, 48 present pairs:
  ``extract_local_prototypes`` vs a per-(image, class) loop, with the exact present count (the CPU
  path: one host read, 6 packed maps per image) and with the static bound K (the accelerator path: no
  read, all 21 maps).
* bank update (eq. 4-5), same prototypes, bank full (EMA phase) and empty (fill phase):
  ``PrototypeMemoryBank.update`` vs the sequential loop, early-exit (CPU path: reads values) and
  sync-free (accelerator path: R-1 fixed-point rounds, no read); on CUDA also the sync-free update
  replayed from a captured CUDA graph and compiled with ``torch.compile`` (inductor; ``--skip-compile``).
* training step (forward + backward): PFA in the global phase (bank full, local + global branches) vs
  the plain pCE step (basic prediction only) on the same MiT model, weights and batch; the two are run
  in interleaved pairs and the ratio is the median of the per-pair ratios. On CUDA a second PFA row
  runs with the host reads of the code before the sync removal (exact counts, early-exit bank). On
  the CPU each step is timed with two clocks: the wall clock and this process's CPU time
  (``time.process_time``), which other processes on a loaded machine disturb less.

On a shared, oversubscribed CPU use ``--threads 1``: multi-threaded small ops then mostly measure the
scheduler.

Times are medians after one warm-up run (``--repeats`` runs, more for sub-100 ms ops so each row gets
about 0.5 s); the table prints the machine, thread count and load average.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from bench_common import host_reads_as_before, machine, timed_once
from scribbleseg.methods import TrainBatch, partial_cross_entropy
from scribbleseg.models import MixTransformer, SegFormerHead
from scribbleseg.pfa import PFAMethod, PFASettings, PrototypeMemoryBank, extract_local_prototypes


def timed(fn: Callable[[], object], device: torch.device, repeats: int, budget_s: float = 0.5) -> float:
    """Median seconds of ``fn`` after one warm-up: ``repeats`` runs, more (up to 200) for fast ops."""
    first = timed_once(fn, device)
    runs = [timed_once(fn, device) for _ in range(max(repeats, min(200, int(budget_s / max(first, 1e-6)))))]
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


def op_rows(device: torch.device, repeats: int, compile_rows: bool) -> list[tuple[str, float, float]]:
    torch.manual_seed(0)
    batch, classes, dim, side = 8, 21, 256, 128
    features = torch.randn(batch, dim, side, side, device=device)
    confidence = torch.randn(batch, classes, side, side, device=device).softmax(1)
    present = torch.zeros(batch, classes, dtype=torch.bool, device=device)
    present[:, 0] = True
    for n in range(batch):
        present[n, torch.randperm(classes - 1)[:5] + 1] = True  # 8 x 6 = 48 present pairs
    rows = []
    ref = timed(lambda: loop_prototypes(features, confidence, present), device, repeats)
    for label, bound in (("exact count, CPU path", None), ("bound K, accelerator path", classes)):
        vec = timed(lambda: extract_local_prototypes(features, confidence, present, max_present=bound), device,
                    repeats)
        rows.append((f"prototype extraction, {label}", vec, ref))

    protos = extract_local_prototypes(features, confidence, present)
    full = PrototypeMemoryBank(classes, 5, dim).to(device)
    for _ in range(5):
        full.update(F.normalize(torch.randn(batch, classes, dim, device=device), dim=2),
                    torch.ones(batch, classes, dtype=torch.bool, device=device))
    empty = PrototypeMemoryBank(classes, 5, dim).to(device)
    states = {"EMA phase (bank full, 48 pairs)": (full, (full.prototypes.clone(), full.filled.clone())),
              "empty bank (fills + 3 EMA)": (empty, (empty.prototypes.clone(), empty.filled.clone()))}

    def vector_update(bank: PrototypeMemoryBank, state, update: Callable | None = None) -> None:
        bank.prototypes.copy_(state[0])
        bank.filled.copy_(state[1])
        (update or bank.update)(protos, present)

    for phase, (bank, state) in states.items():
        ref = timed(lambda: loop_bank_update(state[0].clone(), state[1].clone(), protos, present, 0.99), device,
                    repeats)
        for label, sync_free in (("early exit, CPU path", False), ("sync-free, accelerator path", True)):
            bank.sync_free = sync_free
            vec = timed(lambda: vector_update(bank, state), device, repeats)
            rows.append((f"bank update, {phase}, {label}", vec, ref))
        if device.type == "cuda":
            rows.extend(cuda_bank_rows(bank, state, vector_update, ref, phase, device, repeats, compile_rows))
    return rows


def cuda_bank_rows(bank, state, vector_update, ref, phase, device, repeats, compile_rows):
    """The sync-free update replayed from a CUDA graph, and compiled (each row reports its own failure)."""
    rows = []
    bank.sync_free = True
    try:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):
                vector_update(bank, state)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            vector_update(bank, state)
        rows.append((f"bank update, {phase}, sync-free, CUDA graph replay", timed(graph.replay, device, repeats), ref))
    except Exception as err:  # report and go on
        print(f"CUDA graph capture of the bank update failed: {type(err).__name__}: {err}")
    if compile_rows:
        try:
            compiled = torch.compile(bank.update, fullgraph=True)
            vec = timed(lambda: vector_update(bank, state, compiled), device, repeats)
            rows.append((f"bank update, {phase}, sync-free, torch.compile", vec, ref))
        except Exception as err:  # report and go on
            print(f"torch.compile of the bank update failed: {type(err).__name__}: {err}")
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

    def pfa_step_reading_host() -> None:
        with host_reads_as_before(seg):
            pfa_step()

    # interleaved (plain, PFA[, PFA as before]) runs so that load changes on a shared machine hit all alike
    variants = {"PFA global phase": pfa_step}
    if device.type != "cpu":  # on the CPU the PFA step reads the host either way
        variants["PFA global phase, host reads as before the sync removal"] = pfa_step_reading_host
    plain_step()
    for step in variants.values():
        step()
    runs = []  # per repeat: (plain, variant 1, ...) as (wall seconds, this process's CPU seconds)
    for _ in range(repeats):
        runs.append([both_clocks(plain_step, device)] + [both_clocks(step, device) for step in variants.values()])
    rows = []
    for clock, which in (("wall", 0), ("cpu", 1)) if device.type == "cpu" else (("wall", 0),):
        for index, name in enumerate(variants, start=1):
            ratio = statistics.median(run[index][which] / run[0][which] for run in runs)
            label = f"training step fwd+bwd, {model}, batch {batch} at {size}^2, {clock} clock: {name} vs plain pCE"
            rows.append((label, statistics.median(run[index][which] for run in runs),
                         statistics.median(run[0][which] for run in runs), ratio))
    return rows


def both_clocks(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call of ``fn``. On a shared CPU the CPU time is
    less disturbed by other processes than the wall clock (it counts this process's work only)."""
    start = time.process_time()
    wall = timed_once(fn, device)
    return wall, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="mit_b1")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-step", action="store_true", help="only the op rows")
    parser.add_argument("--skip-compile", action="store_true", help="no torch.compile row (CUDA)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"machine: {machine(device)}; device {device}; median of {args.repeats}")
    rows = op_rows(device, args.repeats, not args.skip_compile)
    print(f"{'operation':<74} {'ours ms':>9} {'ref ms':>9} {'ref/ours':>9}")
    for name, ours, ref in rows:
        print(f"{name:<74} {ours * 1e3:9.2f} {ref * 1e3:9.2f} {ref / ours:8.1f}x")
    if not args.skip_step:
        for name, pfa, plain, ratio in step_rows(device, args.repeats, args.model, args.batch, args.size):
            print(f"{name}\n{'  (PFA ms, plain ms, median of per-pair ratios)':<74} {pfa * 1e3:9.1f} "
                  f"{plain * 1e3:9.1f}   PFA/plain = {ratio:.2f}x")


if __name__ == "__main__":
    main()
