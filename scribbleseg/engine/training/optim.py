"""Optimiser and learning-rate schedule.

Parameter groups (paper section 4.2): the encoder at ``optim.lr``, everything else (decoder, prototype
augmenters) at ``optim.lr * optim.head_lr_mult``; biases and normalisation weights (all 1-D parameters)
get no weight decay unless ``optim.decay_1d_params`` (the released PFA code decays every parameter). AdamW.
The schedule is a linear warm-up followed by polynomial decay, computed from the iteration number alone (so
resuming only needs the step); ``optim.lr_decay_per_epoch`` holds the decay for each epoch (a staircase, as
the released code's LambdaLR stepped once per epoch).
"""

from __future__ import annotations

import torch

from scribbleseg.engine.config.schema import ModelConfig, OptimConfig

ENCODER_PREFIX = "encoder."


def freeze_encoder_norms(segmentor: torch.nn.Module) -> int:
    """Stop gradients into the encoder's LayerNorm weights (the authors' released code does this).

    Returns the number of frozen parameter tensors.
    """
    frozen = 0
    encoder = getattr(segmentor, "encoder")
    for module in encoder.modules():
        if isinstance(module, (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)):
            for param in module.parameters(recurse=False):
                param.requires_grad_(False)
                frozen += 1
    return frozen


def build_param_groups(segmentor: torch.nn.Module, optim_cfg: OptimConfig) -> list[dict]:
    """AdamW parameter groups: (encoder | head) x (decayed | not decayed).

    Each group carries ``lr_mult`` (1 for the encoder, ``head_lr_mult`` otherwise); empty groups are
    dropped. Frozen parameters (``requires_grad=False``) are left out. With ``optim.decay_1d_params`` the
    1-D parameters decay too (so only the two ``*_decay`` groups remain).
    """
    buckets: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in segmentor.named_parameters():
        if not param.requires_grad:
            continue
        is_encoder = name.startswith(ENCODER_PREFIX)
        decays = param.ndim > 1 or optim_cfg.decay_1d_params
        buckets.setdefault((is_encoder, decays), []).append(param)
    groups = []
    for (is_encoder, decays), params in sorted(buckets.items(), reverse=True):
        lr_mult = 1.0 if is_encoder else optim_cfg.head_lr_mult
        groups.append({
            "params": params,
            "lr": optim_cfg.lr * lr_mult,
            "lr_mult": lr_mult,
            "weight_decay": optim_cfg.weight_decay if decays else 0.0,
            "name": f"{'encoder' if is_encoder else 'head'}_{'decay' if decays else 'no_decay'}",
        })
    return groups


def build_optimizer(segmentor: torch.nn.Module, optim_cfg: OptimConfig, model_cfg: ModelConfig) -> torch.optim.AdamW:
    """AdamW over :func:`build_param_groups` (after freezing encoder norms if the config asks).

    ``optim.fused`` selects AdamW's fused kernel (one launch for all parameters on CUDA); otherwise
    PyTorch picks its default (the multi-tensor ``foreach`` implementation on CUDA).
    """
    if model_cfg.freeze_encoder_norms:
        freeze_encoder_norms(segmentor)
    groups = build_param_groups(segmentor, optim_cfg)
    return torch.optim.AdamW(groups, lr=optim_cfg.lr, betas=optim_cfg.betas, weight_decay=optim_cfg.weight_decay,
                             fused=True if optim_cfg.fused else None)


class WarmupPolySchedule:
    """Learning-rate factor: linear warm-up, then ``(1 - progress) ** power`` down to ``min_lr_factor``.

    ``factor(step)`` is a pure function of the 0-based iteration, so there is no state to checkpoint. With
    ``optim.lr_decay_per_epoch`` and ``iters_per_epoch`` given, the decay is evaluated at the first iteration
    of the step's epoch: constant within an epoch (the released PFA code: ``1 - epoch / (epochs + 1)`` for
    epoch ``0, 1, ...``, which ``poly_power: 1`` and ``min_lr_factor: 1 / (epochs + 1)`` give exactly).
    """

    def __init__(self, optim_cfg: OptimConfig, total_iters: int, iters_per_epoch: int | None = None) -> None:
        self.base_lr = optim_cfg.lr
        self.warmup_iters = min(optim_cfg.warmup_iters, max(total_iters - 1, 0))
        self.start_factor = optim_cfg.warmup_start_factor
        self.power = optim_cfg.poly_power
        self.min_factor = optim_cfg.min_lr_factor
        self.total_iters = max(total_iters, 1)
        self.decay_period = max(iters_per_epoch, 1) if optim_cfg.lr_decay_per_epoch and iters_per_epoch else 1

    def factor(self, step: int) -> float:
        """Multiplier of the base learning rate at iteration ``step``."""
        if step < self.warmup_iters:
            return self.start_factor + (1.0 - self.start_factor) * step / self.warmup_iters
        decay_span = max(self.total_iters - self.warmup_iters, 1)
        held = step // self.decay_period * self.decay_period  # the epoch's first iteration, or step itself
        progress = min(max(held - self.warmup_iters, 0) / decay_span, 1.0)
        return self.min_factor + (1.0 - self.min_factor) * (1.0 - progress) ** self.power

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's lr for iteration ``step``; returns the encoder (base) lr."""
        factor = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = self.base_lr * group.get("lr_mult", 1.0) * factor
        return self.base_lr * factor
