"""PFASegmentor: encoder + SegFormer decoder + prototype augmenters + global prototype bank (Fig. 2).

Forward (section 3.1): ``F = head.fuse(encoder(x))`` ``[N, D, H/4, W/4]``, basic logits ``P = head.classify(F)``.
Local prototypes (eq. 1-3) come from ``F`` and the confidence of ``P`` for the present classes; the local
augmenter (eq. 6-8) turns ``F`` into ``F_local`` and the *same* classifier gives the local prediction. Once
the bank is full, the global augmenter does the same with the bank's prototypes of the present classes.

``forward`` never changes the bank. Training uses :meth:`training_step` (or the parts :meth:`encode`,
:meth:`local_prototypes`, :meth:`update_bank`, :meth:`augment`, :meth:`training_loss`) in the authors'
order: basic prediction, local prototypes, bank update, then the phase (bank full?) decides whether the
global branch runs. Host syncs per training step: the largest number of present classes per image (one
sync, reused to pack the present maps / allowed prototypes in extraction and both augmenters),
``bank.is_full`` until the bank is first full (cached afterwards), one check for EMA work and 1-2
``torch.equal`` in the bank's EMA fixed point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from scribbleseg.errors import ConfigError
from scribbleseg.pfa.augmenter import EmbeddedFeatures, PrototypeAugmenter
from scribbleseg.pfa.class_sources import ClassSource
from scribbleseg.pfa.confidence import confidence_map
from scribbleseg.pfa.local_prototypes import count_max, extract_local_prototypes
from scribbleseg.pfa.losses import consistency_loss, partial_cross_entropy
from scribbleseg.pfa.memory_bank import PrototypeMemoryBank
from scribbleseg.pfa.phases import Phase, phase_for, prototypes_active
from scribbleseg.pfa.settings import PFASettings

AUGMENT_CHOICES = ("none", "local", "global", "both")


@dataclass
class SegmentorOutput:
    """Predictions of one forward pass; logits are ``[N, K, H/4, W/4]``.

    Attributes:
        basic: prediction of the un-augmented features.
        local: prediction after local-prototype augmentation, or ``None`` (not asked / no classes).
        global_: prediction after global-prototype augmentation, or ``None`` (not asked / bank not full).
        features: fused decoder features ``F`` ``[N, D, H/4, W/4]``.
        local_prototypes: ``[N, K, D]`` local prototypes (no gradient), or ``None``.
        present: ``[N, K]`` bool classes used for augmentation, or ``None``.
    """

    basic: Tensor
    local: Tensor | None = None
    global_: Tensor | None = None
    features: Tensor | None = None
    local_prototypes: Tensor | None = None
    present: Tensor | None = None


@dataclass
class TrainingStepResult:
    """What :meth:`PFASegmentor.training_step` returns: total loss (with graph), its parts, phase, output."""

    loss: Tensor
    parts: dict[str, Tensor]
    phase: Phase
    output: SegmentorOutput


def _feature_dim(head: nn.Module, feature_dim: int | None) -> int:
    if feature_dim is not None:
        return int(feature_dim)
    for name in ("embed_dim", "embedding_dim", "channels"):
        value = getattr(head, name, None)
        if isinstance(value, int):
            return value
    raise ConfigError("cannot tell the decoder's feature width: pass feature_dim= to PFASegmentor")


class PFASegmentor(nn.Module):
    """The PFA model. ``seg(images [N, 3, H, W], present [N, K] | None, augment) -> SegmentorOutput``."""

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        num_classes: int,
        settings: PFASettings | None = None,
        feature_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else PFASettings()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        if self.settings.background_index >= num_classes:
            raise ConfigError(f"pfa.background_index {self.settings.background_index} >= num_classes {num_classes}")
        self.num_classes = num_classes
        self.encoder = encoder
        self.head = head
        dim = _feature_dim(head, feature_dim)
        self.feature_dim = dim
        augmenters = {"local": PrototypeAugmenter(dim)}
        if not self.settings.share_augmenter:
            augmenters["global"] = PrototypeAugmenter(dim)
        # one entry per distinct module: a shared augmenter is stored once (safetensors rejects aliases)
        self.augmenters = nn.ModuleDict(augmenters)
        self.bank = PrototypeMemoryBank(num_classes, self.settings.slots, dim, self.settings.momentum)

    # ----------------------------------------------------------------------------------------- parts
    def augmenter(self, kind: str) -> PrototypeAugmenter:
        """The augmenter for ``"local"`` or ``"global"`` prototypes (the same module when shared)."""
        if kind == "global" and "global" in self.augmenters:
            return self.augmenters["global"]  # type: ignore[return-value]
        return self.augmenters["local"]  # type: ignore[return-value]

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Fused features ``[N, D, H/4, W/4]`` and basic logits ``[N, K, H/4, W/4]``."""
        features = self.head.fuse(self.encoder(images))
        return features, self.head.classify(features)

    def prepare_present(self, present: Tensor) -> Tensor:
        """``[N, K]`` bool on the model's device, with the background forced on when configured."""
        present = present.to(device=self.bank.filled.device, dtype=torch.bool)
        if present.dim() != 2 or present.shape[1] != self.num_classes:
            raise ValueError(f"present must be [N, {self.num_classes}] bool, got {tuple(present.shape)}")
        if self.settings.background_always_present:
            background = torch.zeros_like(present)
            background[:, self.settings.background_index] = True
            present = present | background
        return present

    def local_prototypes(
        self, features: Tensor, basic: Tensor, present: Tensor, max_present: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Eq. (1)-(3): prototypes ``[N, K, D]`` and the mask ``[N, K]`` of usable (present, non-zero) ones."""
        confidence = confidence_map(basic, self.settings.confidence)
        prototypes = extract_local_prototypes(
            features, confidence, present, self.settings.topk_ratio, max_present=max_present
        )
        usable = present & (prototypes.abs().sum(dim=2) > 0)
        return prototypes, usable

    @torch.no_grad()
    def update_bank(self, prototypes: Tensor, usable: Tensor) -> None:
        """Eq. (4)-(5): put local prototypes into the bank (all-gathered across ranks under DDP)."""
        self.bank.update_distributed(prototypes, usable)

    def embed(self, features: Tensor, kind: str, shared: EmbeddedFeatures | None = None) -> EmbeddedFeatures:
        """Prototype-independent augmenter input for ``kind``; reuses ``shared`` when one augmenter serves both."""
        if shared is not None and self.augmenter(kind) is self.augmenter("local"):
            return shared
        return self.augmenter(kind).embed(features)

    def augment_local(
        self, embedded: EmbeddedFeatures, prototypes: Tensor, usable: Tensor, max_present: int | None = None
    ) -> Tensor:
        """Local-prototype prediction ``[N, K, H/4, W/4]`` (section 3.3.1)."""
        return self.head.classify(self.augmenter("local").augment(embedded, prototypes, usable, max_present))

    def augment_global(self, embedded: EmbeddedFeatures, present: Tensor, max_present: int | None = None) -> Tensor:
        """Global-prototype prediction ``[N, K, H/4, W/4]`` from the bank's slots of the present classes."""
        batch = present.shape[0]
        slots = self.bank.slots
        prototypes = self.bank.flat_prototypes().unsqueeze(0).expand(batch, -1, -1)
        mask = present.repeat_interleave(slots, dim=1)
        bound = None if max_present is None else max_present * slots
        return self.head.classify(self.augmenter("global").augment(embedded, prototypes, mask, bound))

    # --------------------------------------------------------------------------------------- forward
    def _wanted(self, augment: bool | str) -> tuple[bool, bool]:
        if isinstance(augment, bool):
            choice = "both" if augment else "none"
        else:
            choice = augment
        if choice not in AUGMENT_CHOICES:
            raise ConfigError(f"augment must be a bool or one of {AUGMENT_CHOICES}, got {augment!r}")
        return choice in ("local", "both"), choice in ("global", "both")

    def forward(self, images: Tensor, present: Tensor | None = None, augment: bool | str = True) -> SegmentorOutput:
        """Basic prediction, plus the augmented ones when asked for and possible.

        ``augment``: ``True`` / ``"both"`` (every enabled branch), ``"local"``, ``"global"``, ``False`` /
        ``"none"``. Augmentation needs ``present``; the global branch also needs a full bank. The bank is
        never updated here.
        """
        want_local, want_global = self._wanted(augment)
        features, basic = self.encode(images)
        output = SegmentorOutput(basic=basic, features=features)
        if present is None or not (want_local or want_global):
            return output
        return self._augment(output, self.prepare_present(present), want_local, want_global)

    def _augment(self, output: SegmentorOutput, present: Tensor, want_local: bool, want_global: bool) -> SegmentorOutput:
        if output.features is None:
            raise ValueError("augmentation needs the fused features of the basic forward")
        output.present = present
        embedded = None
        max_present = count_max(present)
        if want_local and self.settings.use_local:
            prototypes, usable = self.local_prototypes(output.features, output.basic, present, max_present)
            output.local_prototypes = prototypes
            embedded = self.embed(output.features, "local")
            output.local = self.augment_local(embedded, prototypes, usable, max_present)
        if want_global and self.settings.use_global and self.bank.is_full:
            embedded = self.embed(output.features, "global", embedded)
            output.global_ = self.augment_global(embedded, present, max_present)
        return output

    @torch.no_grad()
    def infer(
        self,
        images: Tensor,
        class_source: ClassSource,
        names: list[str] | None = None,
        given: Tensor | None = None,
        augment: bool | str = True,
    ) -> SegmentorOutput:
        """Inference with classes from ``class_source`` (appendix A.2); ``output.present`` holds them."""
        want_local, want_global = self._wanted(augment)
        features, basic = self.encode(images)
        output = SegmentorOutput(basic=basic, features=features)
        present = class_source.classes(basic, tuple(images.shape[-2:]), names=names, given=given)
        if present is None or not (want_local or want_global):
            return output
        return self._augment(output, self.prepare_present(present), want_local, want_global)

    # -------------------------------------------------------------------------------------- training
    def phase_for(self, iteration: int) -> Phase:
        """Phase at ``iteration`` (0-based) from the warm-up length and the bank state (sections 3.3.3, 3.4)."""
        settings = self.settings
        needs_bank = iteration >= settings.warmup_iters and settings.use_global
        return phase_for(iteration, self.bank.is_full if needs_bank else False, settings)

    def training_loss(
        self, output: SegmentorOutput, scribbles: Tensor, phase: Phase
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss of ``phase`` (section 3.4) and its detached parts ``pce``, ``con_local``, ``con_global``.

        pCE (eq. 9) supervises the prediction ``settings.pce_target[phase]``; a prediction that was not
        computed falls back to ``local``, then ``basic``. Consistency terms (eq. 10) are added for the
        augmented predictions that exist in this phase: local from ``LOCAL`` on, global in ``GLOBAL``.
        """
        settings = self.settings
        predictions = {"basic": output.basic, "local": output.local, "global": output.global_}
        target_name = settings.pce_target[phase.value]
        for candidate in (target_name, "local", "basic"):
            if predictions[candidate] is not None:
                target_name = candidate
                break
        pce = partial_cross_entropy(predictions[target_name], scribbles, settings.ignore_index)  # type: ignore[arg-type]
        loss = pce
        zero = pce.detach() * 0
        parts = {"pce": pce.detach(), "con_local": zero, "con_global": zero}
        if phase is not Phase.WARMUP and output.local is not None:
            con_local = consistency_loss(
                output.basic, output.local, settings.consistency, settings.detach_consistency_target
            )
            loss = loss + settings.lambda_local * con_local
            parts["con_local"] = con_local.detach()
        if phase is Phase.GLOBAL and output.global_ is not None:
            con_global = consistency_loss(
                output.basic, output.global_, settings.consistency, settings.detach_consistency_target
            )
            loss = loss + settings.lambda_global * con_global
            parts["con_global"] = con_global.detach()
        parts["total"] = loss.detach()
        return loss, parts

    def training_step(self, images: Tensor, scribbles: Tensor, present: Tensor, iteration: int) -> TrainingStepResult:
        """One training forward in the authors' order; the caller does ``result.loss.backward()``.

        ``present [N, K]``: classes of the scribbles. After warm-up the local prototypes of the batch
        update the bank *before* the phase is decided, so the step that fills the bank already uses it.
        """
        features, basic = self.encode(images)
        output = SegmentorOutput(basic=basic, features=features)
        present = self.prepare_present(present)
        output.present = present
        if prototypes_active(iteration, self.settings):
            max_present = count_max(present)  # one host sync, reused by extraction and both augmenters
            prototypes, usable = self.local_prototypes(features, basic, present, max_present)
            output.local_prototypes = prototypes
            self.update_bank(prototypes, usable)
            phase = self.phase_for(iteration)
            embedded = None
            if self.settings.use_local:
                embedded = self.embed(features, "local")
                output.local = self.augment_local(embedded, prototypes, usable, max_present)
            if phase is Phase.GLOBAL:
                embedded = self.embed(features, "global", embedded)
                output.global_ = self.augment_global(embedded, present, max_present)
        else:
            phase = Phase.WARMUP
        loss, parts = self.training_loss(output, scribbles, phase)
        return TrainingStepResult(loss=loss, parts=parts, phase=phase, output=output)
