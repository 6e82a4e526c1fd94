"""``pfa.global_start``: the paper's all_full stalls while a class is never scribbled, seen_full does not;
the latch, the filled-slot mask, the stall warning and checkpoint compatibility."""

from __future__ import annotations

import copy

import torch

from scribbleseg.methods import TrainBatch
from scribbleseg.pfa import PFASettings
from scribbleseg.pfa.global_start import bank_ready, filled_slot_mask, stall_deadline
from test_pfa_augmenter import loop_augment
from test_pfa_method import K, batch, tiny_segmentor


def train_steps(seg, present, steps, start=0):
    images, scribbles, _ = batch()
    return [seg.training_step(TrainBatch(images, scribbles, present, present), start + i).phase for i in range(steps)]


def started_then_new_class():
    """A seen_full model whose global phase started without class 2, then one step in which class 2 appears."""
    _, _, present = batch()
    without = present.clone()
    without[:, 2] = False
    seg = tiny_segmentor(slots=2, global_start="seen_full")
    train_steps(seg, without, 2)
    assert seg.global_phase_started()
    phases = train_steps(seg, present, 1, start=2)
    return seg, present, phases


def test_bank_ready_rules():
    filled = torch.tensor([2, 2, 0, 2])
    assert not bool(bank_ready(filled, 2, "all_full")) and bool(bank_ready(filled, 2, "seen_full"))
    assert not bool(bank_ready(torch.tensor([2, 1, 0, 2]), 2, "seen_full"))  # class 1 seen, not full
    assert not bool(bank_ready(torch.zeros(4, dtype=torch.long), 2, "seen_full"))  # nothing full yet
    assert bool(bank_ready(torch.full((4,), 2), 2, "all_full"))
    assert filled_slot_mask(torch.tensor([0, 1, 3]), 2).tolist() == [[False, False], [True, False], [True, True]]


def test_a_never_present_class_stalls_all_full_but_not_seen_full():
    _, _, present = batch()
    present[:, 2] = False  # class 2 is never scribbled
    stalled = tiny_segmentor(slots=2)
    assert train_steps(stalled, present, 3) == ["local"] * 3
    assert stalled.heads()["global"].unavailable is not None
    running = tiny_segmentor(slots=2, global_start="seen_full")
    assert train_steps(running, present, 3) == ["local", "global", "global"]  # class 1 needs 2 steps
    assert running.heads()["global"].unavailable is None
    assert int(running.bank.filled[2]) == 0


def test_the_latch_keeps_the_global_phase_when_a_new_class_appears():
    seg, _, phases = started_then_new_class()
    assert phases == ["global"]  # class 2 now has 1 of 2 slots: still global
    assert int(seg.bank.filled[2]) == 1


def test_global_augmentation_attends_to_filled_slots_only():
    seg, present, _ = started_then_new_class()  # class 2: one filled slot, one empty (zero) slot
    seg.eval()
    images, _, _ = batch()
    got = seg.infer(images, ("basic", "global"), present).logits["global"]
    features, _ = seg.encode(images)
    slots = seg.bank.slots
    full_present = seg.prepare_present(present)
    mask = torch.stack([torch.tensor([bool(full_present[n, t]) and s < int(seg.bank.filled[t])
                                      for t in range(K) for s in range(slots)]) for n in range(2)])
    flat = seg.bank.flat_prototypes().unsqueeze(0).expand(2, -1, -1)
    want = seg.head.classify(loop_augment(seg.augmenter("global"), features, flat, mask))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_stall_warning_once_late_and_only_while_stalled():
    _, _, present = batch()
    present[:, 2] = False
    seg = tiny_segmentor(slots=2, warmup_iters=1)
    train_steps(seg, present, 3)
    deadline = stall_deadline(1, 20)
    assert deadline == 3
    assert seg.training_warnings(deadline - 1, 20) == {}
    warnings = seg.training_warnings(deadline, 20)
    assert list(warnings) == ["pfa_global_stalled"]
    assert "3 of 4 classes full and 3 seen" in warnings["pfa_global_stalled"]
    assert "seen_full" in warnings["pfa_global_stalled"]
    running = tiny_segmentor(slots=2, warmup_iters=1, global_start="seen_full")
    train_steps(running, present, 3)
    assert running.training_warnings(deadline, 20) == {}
    assert tiny_segmentor(use_global=False).training_warnings(10**6, 20) == {}


def test_latch_is_state_restored_and_saved_only_for_seen_full():
    _, _, present = batch()
    assert "global_started" not in tiny_segmentor().state_dict()
    assert PFASettings().architecture() == {"slots": 5, "share_augmenter": True}  # as before the field
    seg = tiny_segmentor(slots=1, global_start="seen_full")
    assert PFASettings(global_start="seen_full").architecture()["global_start"] == "seen_full"
    snapshot = copy.deepcopy(seg.snapshot())
    train_steps(seg, present, 1)
    assert bool(seg.state_dict()["global_started"]) and seg.global_phase_started()
    seg.restore(snapshot)
    assert not seg.global_phase_started()
    train_steps(seg, present, 1)
    fresh = tiny_segmentor(slots=1, global_start="seen_full")
    assert not fresh.global_phase_started()
    fresh.load_state_dict(seg.state_dict())
    assert fresh.global_phase_started()
