"""Sync-free PFA ops (what runs on an accelerator) give the CPU's results and read no tensor value.

"Reads no value" is checked on the ``meta`` device: meta tensors have shapes but no data, so any host
read (``bool(t)``, ``int(t)``, ``torch.equal``, ``.item()``) raises there.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scribbleseg.methods import TrainBatch
from scribbleseg.models import MixTransformer, SegFormerHead
from scribbleseg.pfa import PFAMethod, PFASettings, PrototypeAugmenter, PrototypeMemoryBank, extract_local_prototypes
from scribbleseg.pfa.sync_policy import count_bound, count_max, host_reads_are_free


def random_protos(generator, batch, classes, dim):
    return F.normalize(torch.randn(batch, classes, dim, generator=generator), dim=2)


def test_policy_reads_on_cpu_only():
    mask = torch.tensor([[True, False, True], [False, False, True]])
    assert host_reads_are_free(torch.device("cpu")) and not host_reads_are_free(torch.device("meta"))
    assert count_bound(mask) == count_max(mask) == 2
    assert count_bound(mask.to("meta")) == 3  # the static bound P: no read


@pytest.mark.parametrize("alpha", [0.99, 0.5, 0.0])
def test_sync_free_bank_is_bit_identical_to_early_exit(alpha):
    """Fill-only, mixed and EMA-only batches, a class repeated in every image, an empty batch."""
    generator = torch.Generator().manual_seed(0)
    banks = {mode: PrototypeMemoryBank(4, 3, 5, momentum=alpha, sync_free=mode) for mode in (False, True)}
    batches = [(random_protos(generator, 2, 4, 5), torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0]], dtype=torch.bool))]
    batches += [(random_protos(generator, 9, 4, 5), torch.rand(9, 4, generator=generator) < 0.6) for _ in range(4)]
    repeated = torch.zeros(12, 4, dtype=torch.bool)
    repeated[:, 2] = True
    batches += [(random_protos(generator, 12, 4, 5), repeated), (random_protos(generator, 3, 4, 5),
                                                                   torch.zeros(3, 4, dtype=torch.bool))]
    for protos, present in batches:
        for bank in banks.values():
            bank.update(protos, present)
        assert torch.equal(banks[True].prototypes, banks[False].prototypes)
        assert torch.equal(banks[True].filled, banks[False].filled)
    assert banks[True].is_full


@pytest.mark.parametrize("sync_free", [False, True])
def test_a_nan_update_reaches_one_slot_only(sync_free):
    """As in the sequential order, a NaN prototype spoils the one slot it updates, no other (no 0 * NaN)."""
    bank = PrototypeMemoryBank(2, 2, 3, sync_free=sync_free)
    bank.update(F.normalize(torch.randn(2, 2, 3), dim=2), torch.ones(2, 2, dtype=torch.bool))
    before = bank.prototypes.clone()
    protos = torch.zeros(1, 2, 3)
    protos[0, 0] = float("nan")
    bank.update(protos, torch.tensor([[True, False]]))
    spoiled = bank.prototypes.isnan().any(dim=2)
    assert spoiled[0].sum() == 1 and not spoiled[1].any()
    assert torch.equal(bank.prototypes[~spoiled], before[~spoiled])


def test_bank_update_reads_no_value_off_cpu():
    bank = PrototypeMemoryBank(3, 2, 4).to("meta")
    bank.update(torch.randn(5, 3, 4, device="meta"), torch.ones(5, 3, dtype=torch.bool, device="meta"))
    forced = PrototypeMemoryBank(3, 2, 4, sync_free=False).to("meta")
    with pytest.raises(RuntimeError, match="meta"):
        forced.update(torch.randn(5, 3, 4, device="meta"), torch.ones(5, 3, dtype=torch.bool, device="meta"))


def test_static_bounds_give_the_packed_results():
    """Extraction and augmenter with the accelerator's bound P equal the CPU's packed computation."""
    torch.manual_seed(1)
    features, confidence = torch.randn(3, 8, 6, 7), torch.rand(3, 5, 6, 7)
    present = torch.rand(3, 5) < 0.5
    present[:, 0] = True
    packed = extract_local_prototypes(features, confidence, present, max_present=count_max(present))
    dense = extract_local_prototypes(features, confidence, present, max_present=5)
    torch.testing.assert_close(dense, packed, atol=1e-6, rtol=1e-6)
    augmenter = PrototypeAugmenter(8)
    embedded = augmenter.embed(features)
    slots = present.repeat_interleave(2, dim=1)
    prototypes = torch.randn(3, 10, 8)
    torch.testing.assert_close(augmenter.augment(embedded, prototypes, slots, 10),
                               augmenter.augment(embedded, prototypes, slots, 2 * count_max(present)),
                               atol=1e-6, rtol=1e-6)


def test_global_phase_training_step_reads_no_value_off_cpu():
    """Forward and backward of a global-phase step on meta tensors: nothing is read on the host."""
    torch.manual_seed(0)
    encoder = MixTransformer(embed_dims=(8, 16, 16, 16), num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1),
                             mlp_ratios=(2, 2, 2, 2), sr_ratios=(4, 2, 1, 1))
    head = SegFormerHead(in_channels=encoder.embed_dims, num_classes=4, embed_dim=16, dropout=0.0)
    method = PFAMethod(encoder, head, 4, settings=PFASettings(warmup_iters=0, slots=1))
    images = torch.randn(2, 3, 32, 32)
    scribbles = torch.randint(0, 4, (2, 32, 32))
    present = torch.ones(2, 4, dtype=torch.bool)
    assert method.training_step(TrainBatch(images, scribbles, present, present), 0).phase == "global"
    method = method.to("meta")  # the bank is known full (cached on the CPU step), as in any later step
    batch = TrainBatch(images, scribbles, present, present).to("meta")
    result = method.training_step(batch, 1)
    assert result.phase == "global" and result.loss.device.type == "meta"
    result.loss.backward()
    assert method.augmenter("global").expand.weight.grad is not None
