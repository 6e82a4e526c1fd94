"""Shared by the weight-loading tests: a random ``transformers.SegformerModel`` to compare our MiT against.

Nothing is downloaded; every parameter is perturbed so that LayerNorm weights and biases are not the
trivial ones/zeros (a key mix-up between them would otherwise go unnoticed).
"""

from __future__ import annotations

import torch


def random_segformer(seed: int, **config):
    """A ``SegformerModel(SegformerConfig(**config))`` with seeded, perturbed random weights (eval mode)."""
    import transformers

    torch.manual_seed(seed)
    model = transformers.SegformerModel(transformers.SegformerConfig(**config)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model
