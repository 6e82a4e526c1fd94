"""When PFA's global phase may start, from the prototype bank's fill state (``pfa.global_start``).

The paper (section 3.3.3) starts global augmentation "only after the global prototypes have been fully
updated": every class has all its ``slots`` filled (``all_full``). On a real data set a class that is
never scribbled, or very rarely, keeps the bank from filling and the run stays in the local phase forever.
``seen_full`` cannot stall: it starts once every class *seen so far* (at least one slot filled) has all
its slots and at least one class is full; a class seen later joins the augmentation slot by slot, since
global augmentation only ever attends to filled slots (:func:`filled_slot_mask`).

``seen_full`` is not monotone in the bank state (a newly seen class is partly filled), so the method keeps
a ``global_started`` latch buffer for it; ``all_full`` is monotone and needs none.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

GlobalStart = Literal["all_full", "seen_full"]
STALL_MARGIN = 0.1  # warn when the global phase has not started by warm-up + this fraction of training


def bank_ready(filled: Tensor, slots: int, policy: str) -> Tensor:
    """0-d bool: whether ``policy`` lets the global phase start, given ``filled [K]`` slot counts."""
    full = filled >= slots
    if policy == "all_full":
        return full.all()
    if policy == "seen_full":
        unseen = filled <= 0
        return full.any() & (full | unseen).all()
    raise ValueError(f"unknown pfa.global_start {policy!r}")


def filled_slot_mask(filled: Tensor, slots: int) -> Tensor:
    """``[K, slots]`` bool: slot ``s`` of class ``t`` holds a prototype (``s < filled[t]``)."""
    return torch.arange(slots, device=filled.device) < filled.clamp(max=slots).unsqueeze(1)


def stall_deadline(warmup_iters: int, total_iterations: int) -> int:
    """The step from which a global phase that has not started is reported (warm-up + 10 % of training)."""
    return warmup_iters + int(round(STALL_MARGIN * total_iterations))


def stall_message(policy: str, deadline: int, total_iterations: int, full: int, seen: int, classes: int) -> str:
    """The one warning the trainer prints when the global phase has not started by ``deadline``."""
    state = f"the prototype bank has {full} of {classes} classes full and {seen} seen"
    if policy == "all_full":
        advice = ("with pfa.global_start=all_full a class that is never (or rarely) scribbled keeps the bank "
                  "from filling, so global augmentation may never run; pfa.global_start=seen_full starts once "
                  "every class seen so far is full")
    else:
        advice = ("with pfa.global_start=seen_full it starts once every class seen so far is full; a class "
                  "seen only in a few images fills slowly (raise the data's share of it or lower pfa.slots)")
    return (f"PFA's global phase has not started by step {deadline} of {total_iterations} (warm-up + 10 %): "
            f"{state}; {advice}")
