"""CUDA checks of the sync-free PFA path (the unit tests cover the CPU; CI has no GPU).

1. The sync-free bank update equals the early-exit one bit for bit on CUDA, over fill, mixed, EMA-only
   and repeated-class batches.
2. Extraction with the static bound K equals the packed extraction (tolerance: float32 rounding).
3. A global-phase PFA training step (forward, backward, AdamW) on CUDA under bf16 autocast runs with
   ``torch.cuda.set_sync_debug_mode("error")``: any host synchronisation raises.
4. The same step compiled (``train.compile``'s parts, inductor) also runs without a sync, unless
   ``--skip-compile``.

Prints one line per check and exits 1 if one fails.

    python benchmarks/check_cuda_sync_free.py [--skip-compile]
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable

import torch
import torch.nn.functional as F

from scribbleseg.engine.runtime.compilation import compile_method_parts
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.methods import TrainBatch
from scribbleseg.pfa import PrototypeMemoryBank, extract_local_prototypes
from scribbleseg.pfa.sync_policy import count_max

DEVICE = torch.device("cuda")
K = 21


def bank_modes_bit_identical() -> str:
    generator = torch.Generator(device=DEVICE).manual_seed(0)
    banks = {mode: PrototypeMemoryBank(K, 5, 256, sync_free=mode).to(DEVICE) for mode in (False, True)}
    for batch in (2, 8, 8, 8, 16, 16):
        protos = F.normalize(torch.randn(batch, K, 256, device=DEVICE, generator=generator), dim=2)
        present = torch.rand(batch, K, device=DEVICE, generator=generator) < 0.4
        present[:, 0] = True
        for bank in banks.values():
            bank.update(protos, present)
        if not (torch.equal(banks[True].prototypes, banks[False].prototypes)
                and torch.equal(banks[True].filled, banks[False].filled)):
            raise AssertionError(f"banks differ after a batch of {batch}")
    return "6 batches, bank full: identical"


def extraction_bound_matches_packed() -> str:
    torch.manual_seed(1)
    features = torch.randn(8, 256, 128, 128, device=DEVICE)
    confidence = torch.randn(8, K, 128, 128, device=DEVICE).softmax(1)
    present = torch.rand(8, K, device=DEVICE) < 0.3
    present[:, 0] = True
    packed = extract_local_prototypes(features, confidence, present, max_present=count_max(present))
    dense = extract_local_prototypes(features, confidence, present, max_present=K)
    torch.testing.assert_close(dense, packed, atol=1e-5, rtol=1e-5)
    return f"max |difference| {float((dense - packed).abs().max()):.2e}"


def pfa_step(compiled: bool) -> Callable[[], str]:
    def check() -> str:
        cfg = config_from_mapping({"method": "pfa", "model": {"backbone": {"type": "mit", "name": "mit_b1"}},
                                   "pfa": {"warmup_iters": 0, "slots": 5}})
        method = build_method(cfg, K, load_pretrained=False).to(DEVICE).train()
        if compiled:
            report = compile_method_parts(method, DEVICE)
            if report.fallback:
                raise RuntimeError(report.fallback)
        optimizer = torch.optim.AdamW(method.parameters(), lr=1e-5)
        images = torch.randn(8, 3, 512, 512, device=DEVICE)
        scribbles = torch.randint(0, K, (8, 512, 512), device=DEVICE)
        scribbles[torch.rand(8, 512, 512, device=DEVICE) < 0.95] = 255
        present = torch.ones(8, K, dtype=torch.bool, device=DEVICE)

        def step() -> str | None:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                result = method.training_step(TrainBatch(images, scribbles, present, present), 0)
            result.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return result.phase

        for _ in range(3):  # fill the bank (is_full reads until it is first full), warm up / compile
            step()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            phase = step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
        if phase != "global":
            raise AssertionError(f"phase {phase}")
        return "global-phase step ran under sync debug mode 'error'"

    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: these checks need one")
    checks = {"bank: sync-free == early exit (bit for bit)": bank_modes_bit_identical,
              "extraction: bound K == packed": extraction_bound_matches_packed,
              "training step: no host sync (eager)": pfa_step(compiled=False)}
    if not args.skip_compile:
        checks["training step: no host sync (compiled)"] = pfa_step(compiled=True)
    failed = 0
    for name, check in checks.items():
        try:
            print(f"PASS {name}: {check()}", flush=True)
        except Exception:  # report every check
            failed += 1
            print(f"FAIL {name}:\n{traceback.format_exc(limit=6)}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
