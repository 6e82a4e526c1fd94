"""Hyper-parameters of PFA as one plain dataclass.

The engine's pydantic config converts into :class:`PFASettings`; the method layer never sees YAML. Every
default is the paper's (section 4.2, Tab. 5, Fig. 5, Fig. 6) unless the field's comment says otherwise.
Invalid values raise :class:`~scribbleseg.errors.ConfigError` naming the field (``pfa.<field>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scribbleseg.errors import ConfigError

CONFIDENCE_KINDS = ("softmax", "minmax")
CONSISTENCY_KINDS = ("ce", "kl", "released")
PREDICTIONS = ("basic", "local", "global")
PHASE_NAMES = ("warmup", "local", "global")


def _default_pce_target() -> dict[str, str]:
    """Which prediction the partial cross-entropy supervises in each phase (Fig. 2 colours)."""
    return {"warmup": "basic", "local": "local", "global": "global"}


@dataclass
class PFASettings:
    """Settings of the PFA method (prototypes, memory bank, augmenters, losses, schedule).

    Attributes:
        topk_ratio: fraction of the ``H/4 x W/4`` positions used per class prototype, eq. (1)-(2); Fig. 6: 8 %.
        confidence: ``"softmax"`` (class probabilities) or ``"minmax"`` (the authors' released variant: ReLU'd
            logits min-max normalised per class map).
        slots: global prototypes per class in the memory bank (Fig. 5: 5).
        momentum: alpha of the bank's EMA update, eq. (5) (section 4.2: 0.99).
        warmup_iters: training iterations with pCE only (section 3.3.3) before prototypes are used.
        lambda_local: weight of the local consistency loss (Tab. 5: 0.01).
        lambda_global: weight of the global consistency loss (Tab. 5: 0.01).
        consistency: ``"ce"`` (eq. 10), ``"kl"`` or ``"released"`` (the authors' code), see ``losses.py``.
        detach_consistency_target: the basic prediction is the consistency target and gets no gradient from
            ``ce``/``kl`` (``released`` never detaches, as in the authors' code).
        pce_target: per phase (``warmup``/``local``/``global``) the prediction pCE supervises (``basic``,
            ``local`` or ``global``); a prediction that is not computed falls back to the next simpler one.
        share_augmenter: one augmenter for local and global prototypes (as the authors) or two.
        use_local: local-prototype augmentation and its consistency loss (Tab. 2).
        use_global: global-prototype augmentation and its consistency loss (Tab. 2).
        background_always_present: class ``background_index`` counts as present in every image.
        background_index: the background class id.
        ignore_index: label value of unscribbled pixels.
    """

    topk_ratio: float = 0.08
    confidence: str = "softmax"
    slots: int = 5
    momentum: float = 0.99
    warmup_iters: int = 0
    lambda_local: float = 0.01
    lambda_global: float = 0.01
    consistency: str = "ce"
    detach_consistency_target: bool = True
    pce_target: dict[str, str] = field(default_factory=_default_pce_target)
    share_augmenter: bool = True
    use_local: bool = True
    use_global: bool = True
    background_always_present: bool = True
    background_index: int = 0
    ignore_index: int = 255

    def __post_init__(self) -> None:
        if not 0.0 < self.topk_ratio <= 1.0:
            raise ConfigError(f"pfa.topk_ratio must be in (0, 1], got {self.topk_ratio!r}")
        if self.confidence not in CONFIDENCE_KINDS:
            raise ConfigError(f"pfa.confidence must be one of {CONFIDENCE_KINDS}, got {self.confidence!r}")
        if self.slots < 1:
            raise ConfigError(f"pfa.slots must be >= 1, got {self.slots!r}")
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"pfa.momentum must be in [0, 1], got {self.momentum!r}")
        if self.warmup_iters < 0:
            raise ConfigError(f"pfa.warmup_iters must be >= 0, got {self.warmup_iters!r}")
        for name in ("lambda_local", "lambda_global"):
            if getattr(self, name) < 0:
                raise ConfigError(f"pfa.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.consistency not in CONSISTENCY_KINDS:
            raise ConfigError(f"pfa.consistency must be one of {CONSISTENCY_KINDS}, got {self.consistency!r}")
        merged = _default_pce_target()
        for phase, target in dict(self.pce_target).items():
            if phase not in PHASE_NAMES:
                raise ConfigError(f"pfa.pce_target has unknown phase {phase!r}; phases are {PHASE_NAMES}")
            if target not in PREDICTIONS:
                raise ConfigError(f"pfa.pce_target.{phase} must be one of {PREDICTIONS}, got {target!r}")
            merged[phase] = target
        self.pce_target = merged
        if self.background_index < 0:
            raise ConfigError(f"pfa.background_index must be >= 0, got {self.background_index!r}")
