"""The released PFA code's optimiser and schedule (TranquilChan/PFA utils/trainer.py, utils/tools.py, read for
the facts only) against plain references: ``optim.decay_1d_params`` (every parameter decays; the encoder
norms at lr 0) and ``optim.lr_decay_per_epoch`` (``LambdaLR(1 - epoch / (epochs + 1))`` stepped per epoch)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.engine.config.loading import load_config
from scribbleseg.engine.config.schema import ExperimentConfig, OptimConfig
from scribbleseg.engine.training.optim import WarmupPolySchedule, build_optimizer, build_param_groups
from tiny_models import tiny_model_config

RELEASED = Path(__file__).resolve().parents[1] / "configs" / "voc_pfa_released.yaml"


def released_cfg() -> ExperimentConfig:
    cfg = load_config(RELEASED)
    return cfg.model_copy(update={"model": tiny_model_config(freeze_encoder_norms=True)})


def released_reference_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.AdamW:
    """The released four groups by hand: encoder non-norm (lr, decay), encoder 'norm' (lr 0, no decay),
    decoder and augmenters (10 x lr, decay): biases and norms decay like everything else."""
    encoder = list(model.encoder.named_parameters())
    groups = [
        {"params": [p for n, p in encoder if "norm" not in n], "lr": optim.lr, "weight_decay": optim.weight_decay},
        {"params": [p for n, p in encoder if "norm" in n], "lr": 0.0, "weight_decay": 0.0},
        {"params": list(model.head.parameters()), "lr": 10 * optim.lr, "weight_decay": optim.weight_decay},
        {"params": list(model.augmenters.parameters()), "lr": 10 * optim.lr, "weight_decay": optim.weight_decay},
    ]
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)


def test_decay_1d_params_steps_like_the_released_four_groups():
    cfg = released_cfg()
    assert cfg.optim.decay_1d_params
    torch.manual_seed(0)
    ours = build_method(cfg, 4, load_pretrained=False)
    reference = copy.deepcopy(ours)
    optimizer = build_optimizer(ours, cfg.optim, cfg.model)
    assert {g["name"] for g in optimizer.param_groups} == {"encoder_decay", "head_decay"}
    reference_optimizer = released_reference_optimizer(reference, cfg.optim)
    for model in (ours, reference):
        torch.manual_seed(1)
        for param in model.parameters():
            param.grad = torch.randn_like(param)
            param.data.add_(torch.randn_like(param))  # weight decay acts visibly on every parameter
    for param in ours.encoder.parameters():
        if not param.requires_grad:
            param.grad = None  # frozen: never receives one
    optimizer.step()
    reference_optimizer.step()
    for (name, got), want in zip(ours.named_parameters(), reference.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7, msg=name)
    biases = [p for n, p in ours.head.named_parameters() if p.ndim == 1]
    default = build_param_groups(ours, cfg.optim.model_copy(update={"decay_1d_params": False}))
    no_decay = {id(p) for g in default if g["weight_decay"] == 0 for p in g["params"]}
    assert biases and all(id(p) in no_decay for p in biases), "the default keeps 1-D parameters undecayed"


def test_lr_decay_per_epoch_is_the_released_lambda_lr_stepped_per_epoch():
    optim = released_cfg().optim
    assert optim.lr_decay_per_epoch and optim.warmup_iters == 0
    epochs, per_epoch = 200, 3
    ours = WarmupPolySchedule(optim, epochs * per_epoch, per_epoch)
    parameter = torch.nn.Parameter(torch.zeros(1))
    reference_optimizer = torch.optim.AdamW([parameter], lr=optim.lr)
    reference = torch.optim.lr_scheduler.LambdaLR(reference_optimizer, lambda epoch: 1.0 - epoch / float(epochs + 1))
    continuous = WarmupPolySchedule(optim.model_copy(update={"lr_decay_per_epoch": False}), epochs * per_epoch,
                                    per_epoch)
    gap = 0.0
    for epoch in range(epochs):
        for batch in range(per_epoch):
            step = epoch * per_epoch + batch
            assert optim.lr * ours.factor(step) == pytest.approx(reference.get_last_lr()[0], rel=1e-9, abs=0)
            gap = max(gap, abs(continuous.factor(step) - ours.factor(step)))
        reference_optimizer.step()  # no gradient: only keeps the scheduler from warning
        reference.step()
    assert gap == pytest.approx(2 / 3 / 201, rel=1e-6)  # the line runs ahead by up to 2/3 of an epoch's drop
    assert WarmupPolySchedule(optim, epochs * per_epoch).factor(1) == continuous.factor(1), \
        "without the epoch length the schedule is the continuous line"
