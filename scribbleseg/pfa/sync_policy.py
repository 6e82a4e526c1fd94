"""When PFA's ops may read a tensor value on the host (a "host sync") and when they use static bounds.

On a CPU every op has finished when it returns, so reading a count (``int(mask.sum(1).max())``) costs
nothing and lets the ops shrink their work (pack 6 present class maps instead of 21; stop the bank's
fixed point after 1-2 rounds). On an accelerator the same read stalls the host until the device has
drained its queue, and the host cannot enqueue the next kernels meanwhile; so there the ops use
bounds known from the tensor shapes alone (``K`` classes, ``N`` queued updates) and never read a value.
Both choices give the same results: packing with unused rows and running the bank's fixed point past
convergence change nothing (see ``local_prototypes``, ``augmenter`` and ``memory_bank``).
``float32_region`` is the ops' autocast-off block, written so that they also run on the ``meta``
device, where the tests prove that the accelerator path reads nothing.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch.amp.autocast_mode import is_autocast_available
from torch import Tensor


def host_reads_are_free(device: torch.device) -> bool:
    """Whether reading a tensor value on the host is free on ``device`` (only on the CPU)."""
    return device.type == "cpu"


def count_max(mask: Tensor) -> int:
    """``max_n mask[n].sum()`` for a ``[N, P]`` bool mask as a Python int (one host sync; 0 for N = 0)."""
    return int(mask.sum(1).max()) if mask.shape[0] else 0


def count_bound(mask: Tensor) -> int:
    """A bound ``>= max_n mask[n].sum()`` for a ``[N, P]`` mask: exact on the CPU, ``P`` (no sync) elsewhere."""
    return count_max(mask) if host_reads_are_free(mask.device) else int(mask.shape[1])


def float32_region(device: torch.device) -> AbstractContextManager:
    """Autocast switched off on ``device`` (float32 even under AMP); a no-op where autocast does not exist.

    The no-op case is the ``meta`` device, on which the tests run PFA's ops to prove they read no values.
    """
    if is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return nullcontext()
