"""Hyper-parameters of PFA: one validated field list, used as the ``pfa`` section of the YAML config.

Every default is the paper's (section 4.2, Tab. 5, Fig. 5, Fig. 6) unless the field's description says
otherwise; ``configs/voc_pfa_mit_b1.yaml`` marks where the authors' released code differs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scribbleseg.errors import ConfigError
from scribbleseg.models.settings_base import StrictSettings

Prediction = Literal["basic", "local", "global"]


class PceTargets(StrictSettings):
    """Which prediction the partial cross-entropy supervises in each phase (Fig. 2 colours, Tab. 2).

    A prediction that is not computed at a step falls back to ``local``, then ``basic``.
    """

    section = "pfa.pce_target"

    warmup: Prediction = "basic"
    local: Prediction = "local"
    global_: Prediction = Field("global", alias="global")

    def for_phase(self, phase: str) -> str:
        """The supervised prediction in ``phase`` (``"warmup"``, ``"local"`` or ``"global"``)."""
        return {"warmup": self.warmup, "local": self.local, "global": self.global_}[phase]


class PFASettings(StrictSettings):
    """Settings of the PFA method (prototypes, memory bank, augmenters, losses, schedule).

    ``use_local`` / ``use_global`` both false is the pCE baseline of Tab. 2 trained by the PFA model
    (the ``pce`` method is the same baseline without PFA's modules).
    """

    section = "pfa"

    use_local: bool = Field(True, description="local-prototype augmentation and its consistency loss (Tab. 2)")
    use_global: bool = Field(True, description="global-prototype augmentation and its consistency loss (Tab. 2)")
    warmup_iters: int = Field(1000, ge=0, description="iterations with pCE only before prototypes are used "
                                                      "(section 3.3.3; not in the paper)")
    warmup_fraction: float | None = Field(
        None, gt=0.0, lt=1.0, description="the warm-up as a fraction of the run's iterations (the released "
                                          "recipe: 30 of 200 epochs = 0.15); when set it replaces warmup_iters")
    slots: int = Field(5, ge=1, description="global prototypes per class in the memory bank (Fig. 5)")
    topk_ratio: float = Field(0.08, gt=0.0, le=1.0, description="fraction of the h x w positions used per "
                                                                "class prototype, eq. (1)-(2) (Fig. 6)")
    confidence: Literal["softmax", "minmax"] = Field(
        "softmax", description="class probabilities, or the released code's ReLU'd logits min-max "
                               "normalised per class map (its formula exactly, see confidence.py)")
    dead_maps: Literal["skip", "released"] = Field(
        "skip", description="a present class whose top-k weights sum to <= 0 (minmax: no positive logit "
                            "anywhere): a zero prototype kept out of attention and bank, or the released "
                            "code's normalised weighted mean, attended to and written into the bank")
    momentum: float = Field(0.99, ge=0.0, le=1.0, description="alpha of the bank's EMA update, eq. (5)")
    lambda_local: float = Field(0.01, ge=0.0, description="weight of the local consistency loss (Tab. 5)")
    lambda_global: float = Field(0.01, ge=0.0, description="weight of the global consistency loss (Tab. 5)")
    consistency: Literal["ce", "kl", "released"] = Field(
        "ce", description="eq. (10), its KL form, or the released code's variant (see losses.py)")
    detach_consistency_target: bool = Field(
        True, description="the basic prediction is the consistency target and gets no gradient from "
                          "ce / kl ('released' never detaches)")
    lambda_local_before_global: float | None = Field(
        None, ge=0.0, description="weight of the local consistency loss in the local phase (before the "
                                  "global phase starts); null = lambda_local (released code: 0.02)")
    pce_target: PceTargets = Field(default_factory=PceTargets)
    present_from: Literal["crop", "image"] = Field(
        "crop", description="classes whose prototypes are extracted and attended to in training: those "
                            "scribbled inside the crop, or anywhere in the whole image (released code)")
    global_start: Literal["all_full", "seen_full"] = Field(
        "all_full", description="when the global phase starts: once every class has all its bank slots "
                                "(the paper; stalls while a class is never scribbled), or once every class "
                                "seen so far has (never stalls; only filled slots augment)")
    share_augmenter: bool = Field(True, description="one augmenter for local and global prototypes (as the "
                                                    "authors) or two")
    background_always_present: bool = Field(True, description="class background_index counts as present "
                                                              "in every image")
    background_index: int = Field(0, ge=0, description="the background class id")

    def uses_prototypes(self) -> bool:
        """Whether any prototype augmentation follows the warm-up."""
        return self.use_local or self.use_global

    def for_run(self, total_iterations: int, length: str) -> "PFASettings":
        """These settings with ``warmup_fraction`` turned into ``warmup_iters`` for a run of
        ``total_iterations``; ConfigError when the warm-up would last the whole run (``length`` names the
        key that set the run's length, e.g. ``train.max_iters=100``)."""
        resolved = self.model_copy()
        if self.warmup_fraction is not None:
            resolved.warmup_iters = int(round(self.warmup_fraction * total_iterations))
        if self.uses_prototypes() and resolved.warmup_iters >= total_iterations:
            given = (f"pfa.warmup_fraction={self.warmup_fraction} ({resolved.warmup_iters} iterations)"
                     if self.warmup_fraction is not None else f"pfa.warmup_iters={self.warmup_iters}")
            raise ConfigError(f"{given} is not shorter than the run ({length}: {total_iterations} iterations): "
                              "PFA would stay in its warm-up for the whole run and its local / global heads "
                              "would never train; lower pfa.warmup_iters, set pfa.warmup_fraction (e.g. 0.15), "
                              "or train longer")
        return resolved

    def architecture(self) -> dict[str, object]:
        """The fields that shape the weights (what a checkpoint must match).

        ``global_start`` joins only when it is not ``all_full``: other policies keep a ``global_started``
        buffer, and checkpoints written before the field existed stay compatible.
        """
        shape: dict[str, object] = {"slots": self.slots, "share_augmenter": self.share_augmenter}
        if self.global_start != "all_full":
            shape["global_start"] = self.global_start
        return shape
