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
   (a one-hot placement and one batched matmul). Per class all fills precede all EMA updates, so the rest are EMA updates numbered
   ``j = rank - free[t]`` in batch order, stacked into a queue ``q[t, j]`` of length ``R = N``.
2. *Closed form.* For a guessed target assignment ``s_j`` of the EMA updates, the state of slot ``s`` before
   update ``j`` is ``alpha^c * B0[s] + (1 - alpha) * sum_{l<j, s_l = s} alpha^(c - c_l - 1) q_l`` where
   ``B0`` is the post-fill bank, ``c`` the number of updates of ``s`` before ``j`` and ``c_l`` those before
   ``l``: a ``[K, R+1, slots, R]`` weight tensor built with cumsums. Cosine similarities against every
   intermediate state then follow from the Gram matrices ``q.q`` and ``q.B0`` alone (no ``D`` axis).
3. *Jacobi fixed point.* Start from the argmax against ``B0``, recompute every update's argmax against the
   state it would have seen, repeat until the assignment no longer changes. Update 0 always sees ``B0``,
   so after ``m`` rounds the first ``m + 1`` targets are the sequential ones: the iteration is exact after
   at most ``R`` rounds and a fixed point is the sequential answer (usually 1-2 rounds). The final bank
   is one ``[K, slots, R] x [K, R, D]`` matmul.

Host syncs (:mod:`scribbleseg.pfa.sync_policy`): on the CPU, where they are free, one check skips steps
2-3 in fill-only batches and one ``torch.equal`` per round stops the fixed point as soon as it is
reached. Elsewhere (``sync_free``) the update reads no value: steps 2-3 always run (with no queued
update they leave every slot untouched) and the fixed point runs its ``R - 1`` rounds, after which the
first ``R`` targets are the sequential ones; further rounds from a fixed point change nothing, so both
modes give bit-identical banks.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from scribbleseg.pfa.sync_policy import float32_region, host_reads_are_free

_EPS = 1e-12  # as F.normalize / F.cosine_similarity: norms are clamped to at least this


class PrototypeMemoryBank(nn.Module):
    """Per-class global prototypes ``prototypes [K, slots, D]`` and fill counters ``filled [K]`` (buffers).

    Both are registered buffers, so ``state_dict`` (and the engine's checkpoints) carry the bank.
    ``sync_free``: ``None`` (default) decides per update from the device (sync-free off the CPU),
    ``True`` / ``False`` force the mode (same results either way; see the module docstring).
    """

    prototypes: Tensor
    filled: Tensor

    def __init__(self, num_classes: int, slots: int = 5, dim: int = 256, momentum: float = 0.99,
                 sync_free: bool | None = None) -> None:
        super().__init__()
        if num_classes < 1 or slots < 1 or dim < 1:
            raise ValueError(f"num_classes, slots and dim must be >= 1, got {num_classes}, {slots}, {dim}")
        self.num_classes = num_classes
        self.slots = slots
        self.dim = dim
        self.momentum = float(momentum)
        self.sync_free = sync_free
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
        self.forget_fill_state()

    def forget_fill_state(self) -> None:
        """Drop the cached ``is_full`` (after the buffers were changed from outside, e.g. restored)."""
        self._known_full = False

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.forget_fill_state()
        super()._load_from_state_dict(*args, **kwargs)

    def reads_host(self) -> bool:
        """Whether this update may read values on the host (early exits; see the module docstring)."""
        if self.sync_free is not None:
            return not self.sync_free
        return host_reads_are_free(self.prototypes.device)

    @property
    def compile_methods(self) -> tuple[str, ...]:
        """What ``train.compile`` compiles (:mod:`scribbleseg.engine.runtime.compilation`): the update when it is
        sync-free (one graph); an update that reads values would only break into pieces."""
        return () if self.reads_host() else ("update",)

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
        if prototypes.shape[0] == 0:
            return
        with float32_region(self.prototypes.device):  # float32 under AMP
            self._update(prototypes, present)

    def _update(self, prototypes: Tensor, present: Tensor) -> None:
        num_classes, slots, dim = self.prototypes.shape
        batch = prototypes.shape[0]
        present = present.to(device=self.prototypes.device, dtype=torch.bool)
        protos = prototypes.detach().to(self.prototypes)
        protos = torch.where(present.unsqueeze(2), protos, torch.zeros_like(protos))  # [N, K, D]
        occurrences = present.long()
        rank = occurrences.cumsum(0) - occurrences  # [N, K], exclusive
        free = (slots - self.filled).clamp(min=0)  # [K]
        fills = present & (rank < free)
        emas = present & ~fills

        # 1. fills: slot filled[t] + rank of every fill occurrence, as a one-hot [N, K, slots] placement.
        slot_ids = torch.arange(slots, device=protos.device)
        placed = (fills.unsqueeze(2) & ((self.filled + rank).unsqueeze(2) == slot_ids)).to(protos.dtype)
        written = placed.sum(0).unsqueeze(2) > 0  # [K, slots, 1]
        incoming = torch.bmm(placed.permute(1, 2, 0), protos.transpose(0, 1))  # [K, slots, D]
        after_fill = torch.where(written, incoming, self.prototypes)
        new_filled = self.filled + fills.long().sum(0)

        early_exits = self.reads_host()
        if early_exits and not bool(emas.any()):  # fill-only batch (one host sync): skip the EMA machinery
            self.prototypes.copy_(after_fill)
            self.filled.copy_(new_filled)
            return

        # 2.-3. EMA updates: queue per class in batch order (one-hot [N, K, R]), exact Jacobi fixed point.
        queue_ids = torch.arange(batch, device=protos.device)
        queued = (emas.unsqueeze(2) & ((rank - free).unsqueeze(2) == queue_ids)).to(protos.dtype)
        queue = torch.bmm(queued.permute(1, 2, 0), protos.transpose(0, 1))  # [K, R, D]
        valid = queued.sum(0) > 0  # [K, R]
        final = self._ema_fixed_point(after_fill, queue, valid, early_exits)

        self.prototypes.copy_(final)
        self.filled.copy_(new_filled)

    def _ema_fixed_point(self, start: Tensor, queue: Tensor, valid: Tensor, early_exit: bool = True) -> Tensor:
        """Bank ``[K, slots, D]`` after the queued EMA updates ``queue [K, R, D]`` (``valid [K, R]``).

        The fixed-point rounds only need cosine similarities, which follow from the Gram matrices of the
        queue and the post-fill bank (small float64 tensors, no ``D`` dimension inside the loop); the
        ``D``-sized bank state is formed once, after the assignment is final. ``early_exit``: stop once
        the assignment is stable (one host sync per round), else run the ``R - 1`` rounds that make it
        exact without reading anything (same result). Slots no update targets are returned untouched.
        """
        length = queue.shape[1]
        chain = _ChainConstants(length, self.momentum, queue.device)
        gram_qq = torch.bmm(queue, queue.transpose(1, 2)).double()  # [K, R, R]
        gram_qb = torch.bmm(queue, start.transpose(1, 2)).double()  # [K, R, S]
        start_sq = start.square().sum(dim=2).double()  # [K, S]
        queue_norm = gram_qq.diagonal(dim1=1, dim2=2).sqrt().clamp(min=_EPS).unsqueeze(2)  # [K, R, 1]
        similarity = gram_qb / (queue_norm * start_sq.sqrt().clamp(min=_EPS).unsqueeze(1))
        targets = torch.where(valid, similarity.argmax(dim=2), 0)  # first guess: against the post-fill bank
        gain = 1.0 - self.momentum
        for round_index in range(length + 1):
            decay, weights = self._update_weights(targets, valid, chain)  # [K, R+1, S], [K, R+1, S, R]
            if not early_exit and round_index == length - 1:
                break  # targets are exact after R - 1 rounds (module docstring)
            seen_decay, seen_weights = decay[:, :length], weights[:, :length]  # state before update j
            # all [K, R, S, R] -> [K, R, S]: q_j.q_l, q_l.B0[s] and q_l.q_m weighted by the EMA weights
            dots = seen_decay * gram_qb + gain * (seen_weights * gram_qq.unsqueeze(2)).sum(dim=3)
            cross = (seen_weights * gram_qb.transpose(1, 2).unsqueeze(1)).sum(dim=3)
            quadratic = (torch.matmul(seen_weights, gram_qq.unsqueeze(1)) * seen_weights).sum(dim=3)
            state_sq = seen_decay.square() * start_sq.unsqueeze(1) + 2 * gain * seen_decay * cross
            state_sq = state_sq + gain**2 * quadratic
            similarity = dots / (queue_norm * state_sq.clamp(min=0).sqrt().clamp(min=_EPS))  # eq. (4)
            new_targets = torch.where(valid, similarity.argmax(dim=2), 0)
            if early_exit and torch.equal(new_targets, targets):
                break
            targets = new_targets
        final_decay = decay[:, length].to(start.dtype).unsqueeze(2)  # [K, S, 1]
        mixed = torch.bmm(weights[:, length].to(start.dtype), queue)  # [K, S, D]
        updated = (weights[:, length] > 0).any(dim=2, keepdim=True)  # [K, S, 1]: the last update has weight 1
        return torch.where(updated, final_decay * start + gain * mixed, start)  # eq. (5), all updates applied

    def _update_weights(self, targets: Tensor, valid: Tensor, chain: "_ChainConstants") -> tuple[Tensor, Tensor]:
        """Closed form of the EMA chain for an assignment ``targets [K, R]`` (float64).

        State of slot ``s`` before update ``j`` (row ``R``: after all updates) is
        ``decay[j, s] * B0[s] + (1 - alpha) * sum_l weights[j, s, l] * q_l``.
        """
        assign = F.one_hot(targets, self.slots) * valid.unsqueeze(2)  # [K, R, S] int64
        count_incl = assign.cumsum(1)
        count_excl = count_incl - assign  # updates of slot s before update l
        count_before = torch.cat([count_excl, count_incl[:, -1:]], dim=1)  # [K, R+1, S]
        exponent = count_before.unsqueeze(3) - count_excl.transpose(1, 2).unsqueeze(1) - 1  # [K, R+1, S, R]
        mask = (assign.transpose(1, 2).unsqueeze(1) > 0) & chain.earlier[None, :, None, :]
        weights = torch.where(mask, chain.powers[exponent.clamp(min=0)], 0.0)
        return chain.powers[count_before], weights

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


class _ChainConstants:
    """Round-independent tensors of the EMA chain for ``R`` queued updates (built once per update).

    ``earlier [R+1, R]``: update ``l`` precedes state ``j`` (``l < j``); ``powers [R+1]``: ``alpha^0 ..
    alpha^R`` in float64 (the exponents are small integers).
    """

    def __init__(self, length: int, alpha: float, device: torch.device) -> None:
        steps = torch.arange(length + 1, device=device)
        self.earlier = torch.arange(length, device=device).unsqueeze(0) < steps.unsqueeze(1)
        self.powers = torch.pow(alpha, steps.double())
