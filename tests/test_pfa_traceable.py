"""PFAMethod.traceable(): the export-friendly inference route (no host syncs, no data-dependent packing,
a frozen head table) gives the same local / global predictions as the normal route."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import scribbleseg.pfa.augmenter as augmenter_module
import scribbleseg.pfa.pfa_method as pfa_method_module
from scribbleseg.errors import ConfigError
from test_pfa_method import K, tiny_segmentor

HEADS = ("basic", "local", "global")


def _filled(seg, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        seg.bank.prototypes.copy_(F.normalize(torch.randn(seg.bank.prototypes.shape, generator=generator), dim=-1))
        seg.bank.filled.fill_(seg.bank.slots)
    return seg.eval()


def _uneven_present() -> torch.Tensor:
    """Three images with 1, 3 and 2 of the K = 4 classes: the normal route packs them into 3 columns."""
    present = torch.zeros(3, K, dtype=torch.bool)
    present[0, 0] = True
    present[1, [0, 1, 3]] = True
    present[2, [0, 2]] = True
    return present


@pytest.mark.parametrize("share", [True, False])
def test_traceable_route_equals_the_packed_route(share) -> None:
    seg = _filled(tiny_segmentor(slots=3, share_augmenter=share, background_always_present=False))
    images = torch.randn(3, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    present = _uneven_present()
    normal = seg.infer(images, HEADS, classes=present)
    with seg.traceable():
        assert seg.static_shapes
        traced = seg.infer(images, HEADS, classes=present)
    assert not seg.static_shapes
    for head in HEADS:
        torch.testing.assert_close(traced.logits[head], normal.logits[head], atol=1e-6, rtol=1e-5)


def test_traceable_route_reads_no_count_and_packs_nothing(monkeypatch) -> None:
    seg = _filled(tiny_segmentor(slots=2))
    images = torch.randn(3, 3, 32, 32)

    def no_host_sync(*args, **kwargs):
        raise AssertionError("count_bound called: a host sync / data-dependent shape")

    packed_shapes = []
    real_pack = augmenter_module.pack_allowed

    def recording_pack(prototypes, mask, max_allowed=None):
        packed, packed_mask = real_pack(prototypes, mask, max_allowed)
        packed_shapes.append((tuple(prototypes.shape), tuple(packed.shape)))
        return packed, packed_mask

    monkeypatch.setattr(augmenter_module, "pack_allowed", recording_pack)
    seg.infer(images, HEADS, classes=_uneven_present())  # the normal route packs 4 -> 3 and 8 -> 6 columns
    assert [(before[1], after[1]) for before, after in packed_shapes] == [(K, 3), (2 * K, 6)]
    packed_shapes.clear()
    monkeypatch.setattr(pfa_method_module, "count_bound", no_host_sync)
    with seg.traceable():
        seg.infer(images, HEADS, classes=_uneven_present())
    assert [(before[1], after[1]) for before, after in packed_shapes] == [(K, K), (2 * K, 2 * K)]
    with pytest.raises(AssertionError, match="count_bound"):  # outside the block the route counts again
        seg.infer(images, HEADS, classes=_uneven_present())


def test_head_table_is_frozen_inside_and_live_again_after() -> None:
    seg = _filled(tiny_segmentor(slots=2))
    with seg.traceable():
        seg.bank.reset()  # the buffers change while tracing: the table read on entry still holds
        assert seg.heads()["global"].unavailable is None
    assert "not full" in seg.heads()["global"].unavailable
    with pytest.raises(ConfigError, match="not full"):
        seg.infer(torch.randn(1, 3, 32, 32), HEADS, classes=torch.ones(1, K, dtype=torch.bool))
