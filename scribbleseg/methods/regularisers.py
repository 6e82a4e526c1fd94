"""Extra loss terms a method adds to its own loss (e.g. the Gated CRF loss on the basic prediction).

A regulariser has a ``name`` (its key in the logged loss parts) and ``loss(logits, batch, iteration)``
returning the *weighted* term as a float32 scalar with its graph. Methods hold a list of them and call
:func:`add_regularisers` once per training step on the prediction they supervise with pCE.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from torch import Tensor

from scribbleseg.methods.training_types import TrainBatch


class Regulariser(Protocol):
    """A weighted extra loss term on a prediction ``[N, K, h, w]`` of a training batch."""

    name: str

    def loss(self, logits: Tensor, batch: TrainBatch, iteration: int) -> Tensor:
        """The weighted term at 0-based ``iteration`` (float32 scalar with graph)."""


def add_regularisers(regularisers: Sequence[Regulariser], logits: Tensor, batch: TrainBatch, iteration: int,
                     loss: Tensor, parts: dict[str, Tensor]) -> Tensor:
    """``loss`` plus every regulariser's term on ``logits``; each term's detached value goes to ``parts``."""
    for regulariser in regularisers:
        term = regulariser.loss(logits, batch, iteration)
        parts[regulariser.name] = term.detach()
        loss = loss + term
    return loss
