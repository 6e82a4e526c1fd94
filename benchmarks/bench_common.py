"""Helpers shared by the benchmark scripts: the machine line, device-synchronised timing, peak memory.

Imported by sibling scripts run as ``python benchmarks/<script>.py`` (their folder is on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from typing import Callable, Iterator

import torch
from torch import nn


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (falls back to ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(device: torch.device) -> str:
    """One line: CPU, torch version, threads, load average, and the GPU's name on CUDA."""
    text = f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if hasattr(os, "getloadavg"):
        text += f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_once(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call of ``fn``, the device's queue drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def median_step_time(step: Callable[[], object], device: torch.device, warmup: int, iters: int) -> tuple[float, float]:
    """(median seconds of ``iters`` timed calls after ``warmup`` untimed ones, peak GiB allocated while timed).

    The peak is the CUDA allocator's ``max_memory_allocated`` since the timed calls began (0 on the CPU).
    """
    for _ in range(warmup):
        step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = [timed_once(step, device) for _ in range(iters)]
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return statistics.median(times), peak


@contextlib.contextmanager
def host_reads_as_before(method: nn.Module) -> Iterator[None]:
    """PFA as before the sync removal on any device: exact class counts (one host read per step, packed
    maps and prototypes) and the early-exit bank update (reads per fixed-point round). Restored on exit."""
    import scribbleseg.pfa.pfa_method as pfa_method
    from scribbleseg.pfa.sync_policy import count_max

    saved = pfa_method.count_bound, method.bank.sync_free
    pfa_method.count_bound = count_max  # type: ignore[assignment]
    method.bank.sync_free = False
    try:
        yield
    finally:
        pfa_method.count_bound, method.bank.sync_free = saved  # type: ignore[assignment]


def hf_segformer(model: str, num_labels: int, device: torch.device, **config: object) -> nn.Module:
    """Hugging Face ``SegformerForSemanticSegmentation`` with the widths and depths of our MiT ``model``
    (random weights; ``config`` goes to ``SegformerConfig``, e.g. ``semantic_loss_ignore_index=255``)."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from scribbleseg.models.mit.variants import resolve_variant

    variant = resolve_variant(model)
    settings = SegformerConfig(hidden_sizes=list(variant.embed_dims), depths=list(variant.depths),
                               num_attention_heads=list(variant.num_heads),
                               decoder_hidden_size=variant.decoder_embed_dim, num_labels=num_labels, **config)
    return SegformerForSemanticSegmentation(settings).to(device)
