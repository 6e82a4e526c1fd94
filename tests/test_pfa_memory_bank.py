"""Prototype memory bank (eq. 4-5): vectorised update against the sequential reference written here."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from scribbleseg.pfa import PrototypeMemoryBank


def sequential_update(bank, filled, protos, present, alpha):
    """Reference: image by image, class by class; fill the next slot, else EMA into the most similar slot."""
    bank, filled = bank.clone(), filled.clone()
    slots = bank.shape[1]
    for n in range(protos.shape[0]):
        for t in range(protos.shape[1]):
            if not present[n, t]:
                continue
            if filled[t] < slots:
                bank[t, filled[t]] = protos[n, t]
                filled[t] += 1
                continue
            best, best_slot = -2.0, 0
            for s in range(slots):
                similarity = float(F.cosine_similarity(protos[n, t], bank[t, s], dim=0))
                if similarity > best:
                    best, best_slot = similarity, s
            bank[t, best_slot] = alpha * bank[t, best_slot] + (1 - alpha) * protos[n, t]
    return bank, filled


def random_protos(batch, classes, dim):
    return F.normalize(torch.randn(batch, classes, dim), dim=2)


def check_against_reference(bank, batches):
    ref_bank, ref_filled = bank.prototypes.clone(), bank.filled.clone()
    for protos, present in batches:
        bank.update(protos, present)
        ref_bank, ref_filled = sequential_update(ref_bank, ref_filled, protos, present, bank.momentum)
        assert torch.equal(bank.filled, ref_filled)
        torch.testing.assert_close(bank.prototypes, ref_bank, atol=2e-6, rtol=1e-5)


def test_starts_empty_and_fills_in_batch_order_with_repeated_classes():
    torch.manual_seed(0)
    bank = PrototypeMemoryBank(num_classes=3, slots=4, dim=8)
    assert not bank.is_full and bank.filled.tolist() == [0, 0, 0]
    protos = random_protos(6, 3, 8)
    present = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 1], [1, 1, 0]], dtype=torch.bool)
    bank.update(protos, present)
    # class 0 appears in 5 images: the first 4 fill slots 0..3 in order, the 5th is an EMA update
    assert bank.filled.tolist() == [4, 3, 1]
    torch.testing.assert_close(bank.prototypes[1, :3], protos[[0, 2, 5], 1])
    torch.testing.assert_close(bank.prototypes[2, 0], protos[4, 2])
    assert torch.all(bank.prototypes[2, 1:] == 0)
    check_against_reference(PrototypeMemoryBank(3, 4, 8), [(protos, present)])


@pytest.mark.parametrize("alpha", [0.99, 0.6, 0.0])
def test_random_sequence_of_batches_matches_reference(alpha):
    torch.manual_seed(1)
    bank = PrototypeMemoryBank(num_classes=5, slots=3, dim=16, momentum=alpha)
    batches = [(random_protos(8, 5, 16), torch.rand(8, 5) < 0.5) for _ in range(6)]
    check_against_reference(bank, batches)
    assert bank.is_full


@pytest.mark.parametrize("alpha", [0.99, 0.3])
def test_ema_phase_many_repeats_of_one_class(alpha):
    """One class in every image of a big batch: the EMA updates depend on each other sequentially."""
    torch.manual_seed(2)
    bank = PrototypeMemoryBank(num_classes=2, slots=3, dim=4, momentum=alpha)
    fill = random_protos(3, 2, 4)
    check_against_reference(bank, [(fill, torch.ones(3, 2, dtype=torch.bool))])
    present = torch.zeros(24, 2, dtype=torch.bool)
    present[:, 1] = True
    # low dimension + strong momentum changes make the sequential argmax move between slots
    check_against_reference(bank, [(random_protos(24, 2, 4), present) for _ in range(3)])


def test_fill_and_ema_of_one_class_in_the_same_batch():
    torch.manual_seed(3)
    bank = PrototypeMemoryBank(num_classes=4, slots=2, dim=6, momentum=0.5)
    check_against_reference(bank, [(random_protos(7, 4, 6), torch.rand(7, 4) < 0.8) for _ in range(3)])


def test_absent_rows_change_nothing():
    bank = PrototypeMemoryBank(3, 2, 4)
    bank.update(random_protos(4, 3, 4) * float("nan"), torch.zeros(4, 3, dtype=torch.bool))
    assert torch.all(bank.prototypes == 0) and torch.all(bank.filled == 0)


def test_state_dict_round_trip_into_fresh_bank():
    torch.manual_seed(4)
    bank = PrototypeMemoryBank(3, 2, 5)
    bank.update(random_protos(4, 3, 5), torch.ones(4, 3, dtype=torch.bool))
    assert bank.is_full
    state = bank.state_dict()
    assert set(state) == {"prototypes", "filled"} and state["filled"].dtype == torch.long
    fresh = PrototypeMemoryBank(3, 2, 5)
    assert not fresh.is_full
    fresh.load_state_dict(state)
    assert fresh.is_full
    torch.testing.assert_close(fresh.prototypes, bank.prototypes)
    more = random_protos(3, 3, 5), torch.ones(3, 3, dtype=torch.bool)
    bank.update(*more)
    fresh.update(*more)
    torch.testing.assert_close(fresh.prototypes, bank.prototypes)
    fresh.reset()
    assert not fresh.is_full and torch.all(fresh.prototypes == 0)
    fresh.load_state_dict(PrototypeMemoryBank(3, 2, 5).state_dict())
    assert not fresh.is_full  # the cached "full" flag does not survive loading an empty bank


def _distributed_worker(rank, world, init_file, protos, present, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        bank = PrototypeMemoryBank(4, 2, 6, momentum=0.7)
        for step in range(protos.shape[0]):
            bank.update_distributed(protos[step, rank], present[step, rank])
        torch.save({"prototypes": bank.prototypes, "filled": bank.filled}, os.path.join(out_dir, f"bank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_update_distributed_two_gloo_processes(tmp_path, monkeypatch):
    torch.manual_seed(5)
    steps, world, batch = 3, 2, 3
    protos = random_protos(steps * world * batch, 4, 6).reshape(steps, world, batch, 4, 6)
    present = (torch.rand(steps, world, batch, 4) < 0.7)
    if "GLOO_SOCKET_IFNAME" not in os.environ:
        monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_distributed_worker, args=(world, str(tmp_path / "init"), protos, present, str(tmp_path)),
             nprocs=world, join=True)
    banks = [torch.load(tmp_path / f"bank{r}.pt", weights_only=True) for r in range(world)]
    assert torch.equal(banks[0]["prototypes"], banks[1]["prototypes"])
    assert torch.equal(banks[0]["filled"], banks[1]["filled"])
    single = PrototypeMemoryBank(4, 2, 6, momentum=0.7)
    for step in range(steps):
        single.update(protos[step].reshape(world * batch, 4, 6), present[step].reshape(world * batch, 4))
    torch.testing.assert_close(banks[0]["prototypes"], single.prototypes)
    assert torch.equal(banks[0]["filled"], single.filled)
    assert single.is_full


def test_update_distributed_without_process_group_is_update():
    torch.manual_seed(6)
    a, b = PrototypeMemoryBank(3, 2, 4), PrototypeMemoryBank(3, 2, 4)
    protos, present = random_protos(5, 3, 4), torch.rand(5, 3) < 0.7
    a.update(protos, present)
    b.update_distributed(protos, present)
    assert torch.equal(a.prototypes, b.prototypes) and torch.equal(a.filled, b.filled)
