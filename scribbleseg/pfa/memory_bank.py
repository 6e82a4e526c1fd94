"""Global prototype memory bank, eq. (4)-(5) (section 3.2.3).

Each class owns ``slots`` global prototypes; the bank starts empty. Local prototypes arrive image by image
and, within an image, class by class in ascending order (the reference order). A prototype of class ``t``
fills the class's next empty slot; once the class is full it updates the slot with the highest cosine
similarity (eq. 4; the paper's "selectmin" picks the most similar slot, as the released code does):
``fp_new = alpha * fp_old + (1 - alpha) * fp_t`` (eq. 5).

Vectorised exactly (no Python loop over images, classes or slots; ``update`` equals the sequential
reference order):

1. *Ranks.* ``rank[n, t]`` = how many earlier images of the batch hold class ``t`` (exclusive cumsum over the
   batch). Occurrences with ``rank < free[t]`` (``free = slots - filled``) fill slot ``filled[t] + rank``
   (one scatter). Per class all fills precede all EMA updates, so the rest are EMA updates numbered
   ``j = rank - free[t]`` in batch order, stacked into a queue ``q[t, j]`` of length ``R = N``.
2. *Closed form.* For a guessed target assignment ``s_j`` of the EMA updates, the state of slot ``s`` before
   update ``j`` is ``alpha^c * B0[s] + (1 - alpha) * sum_{l<j, s_l = s} alpha^(c - c_l - 1) q_l`` where
   ``B0`` is the post-fill bank, ``c`` the number of updates of ``s`` before ``j`` and ``c_l`` those before
   ``l``. All ``R + 1`` intermediate states come from one einsum over ``[K, R+1, R, slots]`` weights.
3. *Jacobi fixed point.* Start from the argmax against ``B0``, recompute every update's argmax against the
   state it would have seen, repeat until the assignment no longer changes. Update 0 always sees ``B0``,
   so after ``m`` rounds the first ``m + 1`` targets are the sequential ones: the iteration is exact after
   at most ``R`` rounds and a fixed point is the sequential answer (usually 1-2 rounds). Each round costs
   one host sync (``torch.equal``); the bank's last state is the ``R``-th closed-form state.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


class PrototypeMemoryBank(nn.Module):
    """Per-class global prototypes ``prototypes [K, slots, D]`` and fill counters ``filled [K]`` (buffers).

    Both are registered buffers, so ``state_dict`` (and the engine's checkpoints) carry the bank.
    """

    prototypes: Tensor
    filled: Tensor

    def __init__(self, num_classes: int, slots: int = 5, dim: int = 256, momentum: float = 0.99) -> None:
        super().__init__()
        if num_classes < 1 or slots < 1 or dim < 1:
            raise ValueError(f"num_classes, slots and dim must be >= 1, got {num_classes}, {slots}, {dim}")
        self.num_classes = num_classes
        self.slots = slots
        self.dim = dim
        self.momentum = float(momentum)
        self.register_buffer("prototypes", torch.zeros(num_classes, slots, dim))
        self.register_buffer("filled", torch.zeros(num_classes, dtype=torch.long))
        self._known_full = False

    @property
    def is_full(self) -> bool:
        """Every class has all its slots filled (one host sync until the bank is first seen full)."""
        if not self._known_full:
            self._known_full = bool((self.filled >= self.slots).all())
        return self._known_full

    def reset(self) -> None:
        """Empty the bank."""
        self.prototypes.zero_()
        self.filled.zero_()
        self._known_full = False

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self._known_full = False
        super()._load_from_state_dict(*args, **kwargs)

    def flat_prototypes(self) -> Tensor:
        """All global prototypes ``[K * slots, D]``, class-major (class ``t`` owns rows ``t*slots ...``)."""
        return self.prototypes.reshape(self.num_classes * self.slots, self.dim)

    @torch.no_grad()
    def update(self, prototypes: Tensor, present: Tensor) -> None:
        """Insert local prototypes ``[N, K, D]`` of the ``present [N, K]`` classes in reference order."""
        num_classes, slots, dim = self.prototypes.shape
        if prototypes.dim() != 3 or prototypes.shape[1:] != (num_classes, dim):
            raise ValueError(f"prototypes must be [N, {num_classes}, {dim}], got {tuple(prototypes.shape)}")
        if present.shape != prototypes.shape[:2]:
            raise ValueError(f"present must be {tuple(prototypes.shape[:2])}, got {tuple(present.shape)}")
        batch = prototypes.shape[0]
        if batch == 0:
            return
        protos = prototypes.detach().to(self.prototypes).transpose(0, 1)  # [K, N, D]
        present = present.to(device=protos.device, dtype=torch.bool)
        occurrences = present.long()
        rank = occurrences.cumsum(0) - occurrences  # [N, K], exclusive
        free = (slots - self.filled).clamp(min=0)  # [K]
        fills = present & (rank < free)
        emas = present & ~fills

        # 1. fills: one scatter into a bank with a dummy slot for the non-fill rows.
        fill_slot = torch.where(fills, self.filled + rank, slots).transpose(0, 1)  # [K, N]
        padded = torch.cat([self.prototypes, self.prototypes.new_zeros(num_classes, 1, dim)], dim=1)
        padded.scatter_(1, fill_slot.unsqueeze(2).expand(-1, -1, dim), protos)
        after_fill = padded[:, :slots]
        new_filled = self.filled + fills.long().sum(0)

        # 2.-3. EMA updates: queue per class in batch order, exact Jacobi fixed point on the targets.
        queue_row = torch.where(emas, rank - free, batch).transpose(0, 1)  # [K, N]
        queue = protos.new_zeros(num_classes, batch + 1, dim)
        queue.scatter_(1, queue_row.unsqueeze(2).expand(-1, -1, dim), protos)
        queue = queue[:, :batch]  # [K, R, D]
        valid = torch.zeros(num_classes, batch + 1, dtype=torch.bool, device=protos.device)
        valid.scatter_(1, queue_row, emas.transpose(0, 1))
        valid = valid[:, :batch]  # [K, R]
        final = self._ema_fixed_point(after_fill, queue, valid)

        self.prototypes.copy_(final)
        self.filled.copy_(new_filled)

    def _ema_fixed_point(self, start: Tensor, queue: Tensor, valid: Tensor) -> Tensor:
        """Bank ``[K, slots, D]`` after the queued EMA updates ``queue [K, R, D]`` (``valid [K, R]``)."""
        queue_dir = F.normalize(queue, dim=2)
        targets = self._most_similar(queue_dir, start.unsqueeze(1).expand(-1, queue.shape[1], -1, -1), valid)
        for _ in range(queue.shape[1] + 1):
            states = self._states(start, queue, targets, valid)  # [K, R+1, slots, D]
            new_targets = self._most_similar(queue_dir, states[:, :-1], valid)
            if torch.equal(new_targets, targets):
                break
            targets = new_targets
        return states[:, -1]

    @staticmethod
    def _most_similar(queue_dir: Tensor, states: Tensor, valid: Tensor) -> Tensor:
        """Eq. (4): slot index ``[K, R]`` of highest cosine similarity (0 for invalid queue entries)."""
        similarity = torch.einsum("krd,krsd->krs", queue_dir, F.normalize(states, dim=3))
        return torch.where(valid, similarity.argmax(dim=2), 0)

    def _states(self, start: Tensor, queue: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
        """Closed-form bank states ``[K, R+1, slots, D]`` before each EMA update (row ``R``: after all)."""
        num_classes, slots, _ = start.shape
        length = queue.shape[1]
        alpha = self.momentum
        assign = F.one_hot(targets, slots).to(start.dtype) * valid.unsqueeze(2).to(start.dtype)  # [K, R, S]
        count_incl = assign.cumsum(1)
        count_excl = count_incl - assign  # updates of slot s before update l
        count_before = torch.cat([count_excl, count_incl[:, -1:]], dim=1)  # [K, R+1, S]
        exponent = count_before.unsqueeze(2) - count_excl.unsqueeze(1) - 1  # [K, R+1, R, S]
        steps = torch.arange(length + 1, device=start.device)
        earlier = (torch.arange(length, device=start.device).unsqueeze(0) < steps.unsqueeze(1)).to(start.dtype)
        weights = assign.unsqueeze(1) * earlier[None, :, :, None] * torch.pow(alpha, exponent.clamp(min=0))
        decay = torch.pow(alpha, count_before).unsqueeze(3)  # [K, R+1, S, 1]
        mixed = torch.einsum("kjls,kld->kjsd", weights, queue)
        return decay * start.unsqueeze(1) + (1.0 - alpha) * mixed

    @torch.no_grad()
    def update_distributed(self, prototypes: Tensor, present: Tensor) -> None:
        """``update`` with the prototypes of every rank, concatenated in rank order (banks stay identical).

        Falls back to :meth:`update` when ``torch.distributed`` is not initialised or has one process.
        Ranks may hold different batch sizes: sizes are all-gathered first and batches padded with absent
        rows (one extra tiny collective and one host sync).
        """
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            self.update(prototypes, present)
            return
        world = dist.get_world_size()
        protos = prototypes.detach().to(self.prototypes).contiguous()
        flags = present.to(device=protos.device, dtype=torch.uint8).contiguous()
        size = torch.tensor([protos.shape[0]], device=protos.device, dtype=torch.long)
        sizes = [torch.empty_like(size) for _ in range(world)]
        dist.all_gather(sizes, size)
        largest = int(torch.stack(sizes).max())
        pad = largest - protos.shape[0]
        if pad:
            protos = torch.cat([protos, protos.new_zeros(pad, *protos.shape[1:])])
            flags = torch.cat([flags, flags.new_zeros(pad, flags.shape[1])])
        all_protos = [torch.empty_like(protos) for _ in range(world)]
        all_flags = [torch.empty_like(flags) for _ in range(world)]
        dist.all_gather(all_protos, protos)
        dist.all_gather(all_flags, flags)
        self.update(torch.cat(all_protos), torch.cat(all_flags).bool())
