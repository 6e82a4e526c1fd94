"""Step-level regression of the released recipe (configs/voc_pfa_released.yaml) on a tiny MiT: one batch, one
training step per phase (warm-up, local, global: the step that fills the bank), each with the released
optimiser. Every loss part, the gradient norm and the norm of the optimiser's update of every parameter
group are compared with the values recorded here, so a later change that moves the released recipe (pCE's
corner-aligned resize, the exact min-max, dead maps banked, decay on 1-D parameters, the per-epoch lr
staircase, the decoder's default init, ...) fails this test. An "epoch" is 2 iterations here, so the
staircase holds the lr where the continuous line would already have dropped by 0.25 %.

The values were recorded once with this code (torch 2.13, CPU). If a change moves them on purpose, say
why in the commit and record them again with ``python tests/test_pfa_released_step.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.engine.config.loading import load_config
from scribbleseg.engine.training.optim import WarmupPolySchedule, build_optimizer
from scribbleseg.methods import TrainBatch

RELEASED = Path(__file__).resolve().parents[1] / "configs" / "voc_pfa_released.yaml"
CLASSES = 4
DEAD_CLASS = 3  # its classifier bias starts at -5: no positive logit anywhere, a dead map in the local step
TINY_BACKBONE = {"name": None, "dims": {"embed_dims": [8, 16, 32, 64], "depths": [1, 1, 1, 1],
                                         "num_heads": [1, 2, 4, 8]}}
GROUPS = ("encoder", "head", "augmenters")  # each split into 1-D ("vectors": biases, norms) and the rest
ITERS_PER_EPOCH = 2
# The decoder's projection biases feed BatchNorm (training mode), so their gradient is 0 in exact arithmetic
# and float noise (1e-10) in practice, which Adam scales to steps of +-lr: left out of the update norms.
NOISE_ONLY = ("projections.",)

# phase, loss parts, gradient and update norms per group: recorded with run_released_steps() below
RECORDED = [
    ("warmup",
     {"pce": 1.9620245695114136, "con_local": 0.0, "con_global": 0.0, "total": 1.9620245695114136},
     {"encoder_matrices": 1.535872220993042, "encoder_matrices_update": 0.019383138045668602,
      "encoder_vectors": 0.1191711276769638, "encoder_vectors_update": 0.0023683069739490747,
      "head_matrices": 1.058598518371582, "head_matrices_update": 0.03290681540966034,
      "head_vectors": 0.402878999710083, "head_vectors_update": 0.0035958269145339727, "augmenters_matrices": 0.0,
      "augmenters_matrices_update": 0.0, "augmenters_vectors": 0.0, "augmenters_vectors_update": 0.0},
     ),
    ("local",
     {"pce": 1.9073914289474487, "con_local": 1.2914561033248901, "con_global": 0.0, "total": 1.9332205057144165},
     {"encoder_matrices": 1.4320430755615234, "encoder_matrices_update": 0.017685992643237114,
      "encoder_vectors": 0.1111338660120964, "encoder_vectors_update": 0.0021885777823626995,
      "head_matrices": 1.0696998834609985, "head_matrices_update": 0.03030448965728283,
      "head_vectors": 0.40396156907081604, "head_vectors_update": 0.003500403370708227,
      "augmenters_matrices": 0.0874631404876709, "augmenters_matrices_update": 0.013019022531807423,
      "augmenters_vectors": 0.1424374282360077, "augmenters_vectors_update": 0.003747635753825307},
     ),
    ("global",
     {"pce": 1.8823858499526978, "con_local": 1.2937734127044678, "con_global": 1.2937819957733154,
      "total": 1.9082614183425903},
     {"encoder_matrices": 1.4313724040985107, "encoder_matrices_update": 0.017069566994905472,
      "encoder_vectors": 0.11238517612218857, "encoder_vectors_update": 0.002099105855450034,
      "head_matrices": 1.069765567779541, "head_matrices_update": 0.0296796765178442,
      "head_vectors": 0.39808645844459534, "head_vectors_update": 0.0034104844089597464,
      "augmenters_matrices": 0.08291905373334885, "augmenters_matrices_update": 0.012162331491708755,
      "augmenters_vectors": 0.1396830528974533, "augmenters_vectors_update": 0.00364675372838974},
     ),
]
RECORDED_BANK_SUM = 35.29011917114258


def released_tiny_config():
    """The released preset with a tiny MiT (its strides, drop path, decoder dropout and init kept), a 1-step
    warm-up and 3 slots (2 images x 4 classes fill them in two prototype steps)."""
    cfg = load_config(RELEASED, ["pfa.warmup_iters=1", "pfa.slots=3", "model.decoder.embed_dim=16"])
    model = cfg.model.model_dump()
    model["backbone"].update(TINY_BACKBONE)
    model["pretrained"] = None
    return cfg.model_copy(update={"model": type(cfg.model).model_validate(model)})


def one_batch() -> TrainBatch:
    generator = torch.Generator().manual_seed(5)
    images = torch.randn(2, 3, 32, 32, generator=generator)
    scribbles = torch.full((2, 32, 32), 255, dtype=torch.long)
    scribbles[0, 2:4, 3:29] = 0
    scribbles[0, 10:12, 5:20] = 1
    scribbles[0, 20:30, 14] = 2
    scribbles[1, 29:31, :] = 0
    scribbles[1, 4:24, 25:27] = 3
    scribbles[1, 15, 2:12] = 2
    crop_classes = torch.tensor([[True, True, True, False], [True, False, True, True]])
    image_classes = torch.ones(2, CLASSES, dtype=torch.bool)  # present_from: image
    return TrainBatch(images, scribbles, crop_classes, image_classes)


def norm_of(tensors: list[torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack([t.norm() for t in tensors]))) if tensors else 0.0


def group_norms(model: torch.nn.Module, before: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """Per group ``<module>_<matrices|vectors>``: the gradient norm and (``..._update``) the norm of the step's
    parameter change."""
    norms = {}
    for name in GROUPS:
        for kind, is_vector in (("matrices", False), ("vectors", True)):
            triples = [(key, p, old) for (key, p), old in zip(getattr(model, name).named_parameters(), before[name])
                       if (p.ndim == 1) is is_vector]
            norms[f"{name}_{kind}"] = norm_of([p.grad for _, p, _ in triples if p.grad is not None])
            norms[f"{name}_{kind}_update"] = norm_of([
                p.detach() - old for key, p, old in triples
                if not (is_vector and name == "head" and key.startswith(NOISE_ONLY))])
    return norms


def run_released_steps() -> tuple[list[tuple[str, dict[str, float], dict[str, float]]], float, list[int]]:
    """(phase, loss parts, gradient and update norms) of the three steps, the bank's sum and fill counts."""
    cfg = released_tiny_config()
    torch.manual_seed(cfg.train.seed)
    model = build_method(cfg, CLASSES, load_pretrained=False).train()
    with torch.no_grad():
        model.head.classifier.bias[DEAD_CLASS] = -5.0
    optimizer = build_optimizer(model, cfg.optim, cfg.model)
    schedule = WarmupPolySchedule(cfg.optim, cfg.train.epochs * ITERS_PER_EPOCH, ITERS_PER_EPOCH)
    batch = one_batch()
    steps = []
    for iteration in range(3):
        schedule.apply(optimizer, iteration)
        optimizer.zero_grad(set_to_none=True)
        result = model.training_step(batch, iteration)
        result.loss.backward()
        before = {name: [p.detach().clone() for p in getattr(model, name).parameters()] for name in GROUPS}
        optimizer.step()
        steps.append((result.phase, {k: float(v) for k, v in result.parts.items()}, group_norms(model, before)))
    return steps, float(model.bank.prototypes.sum()), model.bank.filled.tolist()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_released_recipe_steps_match_the_recorded_values(one_thread):
    cfg = released_tiny_config()
    assert (cfg.train.pce_align_corners, cfg.pfa.dead_maps, cfg.pfa.confidence, cfg.optim.decay_1d_params,
            cfg.optim.lr_decay_per_epoch, cfg.model.decoder.init) == (True, "released", "minmax", True, True,
                                                                       "torch_default")
    steps, bank_sum, filled = run_released_steps()
    assert filled == [3] * CLASSES, "the global step fills the bank (with dead_maps: skip class 3 stays empty)"
    for (phase, parts, norms), (want_phase, want_parts, want_norms) in zip(steps, RECORDED):
        assert phase == want_phase
        assert parts == pytest.approx(want_parts, rel=1e-4, abs=1e-7), phase
        assert norms == pytest.approx(want_norms, rel=1e-4, abs=1e-7), phase
    assert bank_sum == pytest.approx(RECORDED_BANK_SUM, rel=1e-4)


if __name__ == "__main__":  # print the values to record
    torch.set_num_threads(1)
    recorded_steps, recorded_bank, _ = run_released_steps()
    for step in recorded_steps:
        print(step)
    print(repr(recorded_bank))
