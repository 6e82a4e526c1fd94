"""PFAMethod: encoder + decoder + prototype augmenters + global prototype bank (Fig. 2), behind the
engine's method contract (:mod:`scribbleseg.methods.contract`).

Forward (section 3.1): ``F = head.fuse(encoder(x))`` ``[N, D, h, w]``, basic logits ``P = head.classify(F)``.
Local prototypes (eq. 1-3) come from ``F`` and the confidence of ``P`` for the present classes; the local
augmenter (eq. 6-8) turns ``F`` into ``F_local`` and the *same* classifier gives the local prediction. Once
the bank is full, the global augmenter does the same with the bank's prototypes of the present classes.

Heads: ``basic`` (no augmentation), ``local`` and ``global`` (both need the image's class set; ``global``
also a started global phase, see :mod:`scribbleseg.pfa.global_start`). Inference never changes the bank.
:meth:`training_step` runs the authors' order: basic prediction, local prototypes, bank update, then the
phase (may the global phase start, ``pfa.global_start``?) decides whether the global branch runs. Host
syncs per training step (:mod:`scribbleseg.pfa.sync_policy`): on an accelerator only the global-start
check (``bank.is_full``, or the ``seen_full`` latch) until the global phase first starts (cached
afterwards); extraction and both augmenters use the static bound ``K`` on the present classes per image
and the bank update reads nothing. On the CPU, where reading is free, the exact count packs the present
maps / allowed prototypes (one read, reused) and the bank stops early (a check for EMA work, 1-2
``torch.equal``); the results are the same.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from scribbleseg.errors import ConfigError
from scribbleseg.methods.contract import SegmentationMethod
from scribbleseg.methods.image_classification import ImageClassification
from scribbleseg.methods.inference_types import BASIC_HEAD, HeadInfo
from scribbleseg.methods.partial_ce import partial_cross_entropy
from scribbleseg.methods.regularisers import Regulariser, add_regularisers
from scribbleseg.methods.training_types import TOTAL_LOSS, NetworkOutput, StepResult, TrainBatch
from scribbleseg.pfa.augmenter import EmbeddedFeatures, PrototypeAugmenter
from scribbleseg.pfa.confidence import confidence_map
from scribbleseg.pfa.global_start import bank_ready, filled_slot_mask, stall_deadline, stall_message
from scribbleseg.pfa.local_prototypes import extract_local_prototypes
from scribbleseg.pfa.losses import consistency_loss
from scribbleseg.pfa.memory_bank import PrototypeMemoryBank
from scribbleseg.pfa.phases import Phase, phase_for, prototypes_active
from scribbleseg.pfa.settings import PFASettings
from scribbleseg.pfa.sync_policy import count_bound

LOCAL_HEAD = "local"
GLOBAL_HEAD = "global"
PFA_LOSSES = (TOTAL_LOSS, "pce", "con_local", "con_global")


class PFAMethod(SegmentationMethod):
    """The PFA model (see the module docstring).

    Args:
        encoder / head / num_classes / ignore_index / classifier: as :class:`SegmentationMethod`.
        settings: PFA hyper-parameters (defaults: the paper's).
        regularisers: extra loss terms on the pCE-supervised prediction (e.g. the Gated CRF loss).
        pce_align_corners: upsample the logits for pCE with ``align_corners=True`` in every phase, as the
            released code (``train.pce_align_corners``).
    """

    method_name = "pfa"

    def __init__(self, encoder: nn.Module, head: nn.Module, num_classes: int, settings: PFASettings | None = None,
                 ignore_index: int = 255, regularisers: Sequence[Regulariser] = (),
                 classifier: ImageClassification | None = None, pce_align_corners: bool = False) -> None:
        super().__init__(encoder, head, num_classes, ignore_index, classifier)
        self.settings = settings if settings is not None else PFASettings()
        self.pce_align_corners = pce_align_corners
        if self.settings.background_index >= num_classes:
            raise ConfigError(f"pfa.background_index {self.settings.background_index} >= num_classes {num_classes}")
        dim = self.feature_dim
        augmenters = {"local": PrototypeAugmenter(dim)}
        if not self.settings.share_augmenter:
            augmenters["global"] = PrototypeAugmenter(dim)
        # one entry per distinct module: a shared augmenter is stored once (safetensors rejects aliases)
        self.augmenters = nn.ModuleDict(augmenters)
        self.bank = PrototypeMemoryBank(num_classes, self.settings.slots, dim, self.settings.momentum)
        if self.settings.global_start != "all_full":  # a latch: seen_full is not monotone in the bank state
            self.register_buffer("global_started", torch.zeros((), dtype=torch.bool))
        self._known_started = False
        self.regularisers = list(regularisers)

    # ----------------------------------------------------------------------------------------- parts
    def augmenter(self, kind: str) -> PrototypeAugmenter:
        """The augmenter for ``"local"`` or ``"global"`` prototypes (the same module when shared)."""
        if kind == "global" and "global" in self.augmenters:
            return self.augmenters["global"]  # type: ignore[return-value]
        return self.augmenters["local"]  # type: ignore[return-value]

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
        """Eq. (1)-(3): prototypes ``[N, K, D]`` and the mask ``[N, K]`` of usable (present, non-zero) ones.

        With ``pfa.dead_maps: released`` a dead map's prototype is non-zero, so it is usable (attended to and
        written into the bank, as in the released code).
        """
        confidence = confidence_map(basic, self.settings.confidence)
        prototypes = extract_local_prototypes(
            features, confidence, present, self.settings.topk_ratio, max_present=max_present,
            dead_maps=self.settings.dead_maps,
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
        """Local-prototype prediction ``[N, K, h, w]`` (section 3.3.1)."""
        return self.head.classify(self.augmenter("local").augment(embedded, prototypes, usable, max_present))

    def augment_global(self, embedded: EmbeddedFeatures, present: Tensor, max_present: int | None = None) -> Tensor:
        """Global-prototype prediction ``[N, K, h, w]`` from the bank's filled slots of the present classes."""
        batch = present.shape[0]
        slots = self.bank.slots
        prototypes = self.bank.flat_prototypes().unsqueeze(0).expand(batch, -1, -1)
        filled = filled_slot_mask(self.bank.filled, slots).reshape(1, -1)  # [1, K*slots], all True once full
        mask = present.repeat_interleave(slots, dim=1) & filled
        bound = None if max_present is None else max_present * slots
        return self.head.classify(self.augmenter("global").augment(embedded, prototypes, mask, bound))

    # ------------------------------------------------------------------------------------- inference
    def heads(self) -> dict[str, HeadInfo]:
        """``basic``, ``local`` and ``global`` with the reason when one cannot run with this model."""
        settings = self.settings
        local_reason = global_reason = None
        if not settings.use_local:
            local_reason = "the model was trained without local-prototype augmentation (pfa.use_local=false)"
        if not settings.use_global:
            global_reason = "the model was trained without global-prototype augmentation (pfa.use_global=false)"
        elif not self.global_phase_started():
            filled = int((self.bank.filled >= self.bank.slots).sum())
            global_reason = (f"its prototype memory bank is not full ({filled} of {self.num_classes} classes have "
                             f"all their slots, pfa.global_start={settings.global_start}), so global "
                             "augmentation never ran")
        return {
            BASIC_HEAD: HeadInfo(BASIC_HEAD, "the decoder's prediction, no prototype augmentation"),
            LOCAL_HEAD: HeadInfo(LOCAL_HEAD, "augmented with the image's local prototypes", True, local_reason),
            GLOBAL_HEAD: HeadInfo(GLOBAL_HEAD, "augmented with the bank's global prototypes", True, global_reason),
        }

    def untrained_heads(self, step: int) -> dict[str, str]:
        """``local`` / ``global`` when ``step`` is still within the warm-up: their augmenter never trained."""
        settings = self.settings
        if step > settings.warmup_iters:
            return {}
        why = (f"it never trained: the checkpoint is from step {step}, inside PFA's warm-up "
               f"(pfa.warmup_iters={settings.warmup_iters}), which trains the basic head only")
        heads = [head for head, on in ((LOCAL_HEAD, settings.use_local), (GLOBAL_HEAD, settings.use_global)) if on]
        return {head: why for head in heads}

    def infer_heads(self, features: Tensor, basic: Tensor, present: Tensor, heads: Sequence[str]) -> dict[str, Tensor]:
        """``local`` / ``global`` logits ``[N, K, h, w]`` for the class set ``present [N, K]``."""
        infos = self.heads()
        for head in heads:
            if head not in (LOCAL_HEAD, GLOBAL_HEAD):
                raise ConfigError(f"unknown head {head!r}; this model has {', '.join(infos)}")
            if infos[head].unavailable:
                raise ConfigError(f"head {head!r} cannot run: {infos[head].unavailable}")
        present = self.prepare_present(present)
        # a bound >= the true count gives the same result; K needs no host sync (graph export, accelerators)
        max_present = self.num_classes if self.static_shapes else count_bound(present)
        logits: dict[str, Tensor] = {}
        embedded = None
        if LOCAL_HEAD in heads:
            prototypes, usable = self.local_prototypes(features, basic, present, max_present)
            embedded = self.embed(features, "local")
            logits[LOCAL_HEAD] = self.augment_local(embedded, prototypes, usable, max_present)
        if GLOBAL_HEAD in heads:
            embedded = self.embed(features, "global", embedded)
            logits[GLOBAL_HEAD] = self.augment_global(embedded, present, max_present)
        return logits

    # -------------------------------------------------------------------------------------- training
    def global_phase_started(self) -> bool:
        """Whether the bank lets the global phase run (``pfa.global_start``); one host sync until it does."""
        if self.settings.global_start == "all_full":
            return self.bank.is_full
        if not self._known_started:
            self._known_started = bool(self.global_started)
        return self._known_started

    @torch.no_grad()
    def _latch_global_start(self) -> None:
        """Set the ``global_started`` latch once the policy's condition holds (policies other than all_full)."""
        if self.settings.global_start == "all_full" or self._known_started:
            return
        ready = bank_ready(self.bank.filled, self.bank.slots, self.settings.global_start)
        self.global_started.logical_or_(ready)  # read back (one host sync) by global_phase_started

    def phase_for(self, iteration: int) -> Phase:
        """Phase at ``iteration`` (0-based) from the warm-up length and the bank state (sections 3.3.3, 3.4)."""
        settings = self.settings
        needs_bank = iteration >= settings.warmup_iters and settings.use_global
        return phase_for(iteration, self.global_phase_started() if needs_bank else False, settings)

    def own_loss_names(self) -> tuple[str, ...]:
        """``total``, ``pce``, ``con_local``, ``con_global`` and one per regulariser (the base adds ``cls``)."""
        return PFA_LOSSES + tuple(regulariser.name for regulariser in self.regularisers)

    def training_loss(self, outputs: dict[str, Tensor], batch: TrainBatch, phase: Phase,
                      iteration: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss of ``phase`` (section 3.4) and its detached parts (see :meth:`loss_names`).

        pCE (eq. 9) supervises the prediction ``settings.pce_target`` names for the phase; a prediction that
        was not computed falls back to ``local``, then ``basic``. Consistency terms (eq. 10) are added for
        the augmented predictions that exist in this phase: local from ``LOCAL`` on, global in ``GLOBAL``.
        Regularisers (e.g. the Gated CRF loss) act on the prediction pCE supervises, as they do in the pCE
        baseline: they propagate the scribbles' labels together with it.
        """
        settings = self.settings
        target_name = settings.pce_target.for_phase(phase.value)
        for candidate in (target_name, LOCAL_HEAD, BASIC_HEAD):
            if candidate in outputs:
                target_name = candidate
                break
        basic = outputs[BASIC_HEAD]
        pce = partial_cross_entropy(outputs[target_name], batch.scribbles, self.ignore_index, self.pce_align_corners)
        loss = pce
        zero = pce.detach() * 0
        parts = {"pce": pce.detach(), "con_local": zero, "con_global": zero}
        if phase is not Phase.WARMUP and LOCAL_HEAD in outputs:
            con_local = consistency_loss(basic, outputs[LOCAL_HEAD], settings.consistency,
                                         settings.detach_consistency_target)
            lambda_local = settings.lambda_local
            if phase is Phase.LOCAL and settings.lambda_local_before_global is not None:
                lambda_local = settings.lambda_local_before_global
            loss = loss + lambda_local * con_local
            parts["con_local"] = con_local.detach()
        if phase is Phase.GLOBAL and GLOBAL_HEAD in outputs:
            con_global = consistency_loss(basic, outputs[GLOBAL_HEAD], settings.consistency,
                                          settings.detach_consistency_target)
            loss = loss + settings.lambda_global * con_global
            parts["con_global"] = con_global.detach()
        loss = add_regularisers(self.regularisers, outputs[target_name], batch, iteration, loss, parts)
        parts[TOTAL_LOSS] = loss.detach()
        return loss, parts

    def own_step(self, network: NetworkOutput, batch: TrainBatch, iteration: int) -> StepResult:
        """One training step in the authors' order on the forward ``network`` (the base adds the classifier).

        The class set of each image is ``batch.crop_classes`` (the classes scribbled in the crop) or, with
        ``pfa.present_from=image``, ``batch.image_classes`` (scribbled anywhere in the image, as the released
        code). After warm-up the local prototypes of the batch update the bank *before* the phase is
        decided, so the step that fills the bank already uses it.
        """
        features, basic = network.features, network.basic
        outputs = {BASIC_HEAD: basic}
        present = self.prepare_present(
            batch.image_classes if self.settings.present_from == "image" else batch.crop_classes)
        if prototypes_active(iteration, self.settings):
            max_present = count_bound(present)  # reused by extraction and both augmenters (no sync off CPU)
            prototypes, usable = self.local_prototypes(features, basic, present, max_present)
            self.update_bank(prototypes, usable)
            self._latch_global_start()
            phase = self.phase_for(iteration)
            embedded = None
            if self.settings.use_local:
                embedded = self.embed(features, "local")
                outputs[LOCAL_HEAD] = self.augment_local(embedded, prototypes, usable, max_present)
            if phase is Phase.GLOBAL:
                embedded = self.embed(features, "global", embedded)
                outputs[GLOBAL_HEAD] = self.augment_global(embedded, present, max_present)
        else:
            phase = Phase.WARMUP
        loss, parts = self.training_loss(outputs, batch, phase, iteration)
        return StepResult(loss=loss, parts=parts, phase=phase.value, outputs=outputs)

    def training_summary(self) -> dict[str, Any]:
        """The bank's fill state: classes with all slots filled, classes seen at least once, total."""
        filled = self.bank.filled
        return {"bank_full_classes": int((filled >= self.bank.slots).sum()),
                "bank_seen_classes": int((filled > 0).sum()), "bank_classes": self.num_classes}

    def training_warnings(self, iteration: int, total_iterations: int) -> dict[str, str]:
        """``{"pfa_global_stalled": message}`` once the global phase is late (warm-up + 10 % of training)."""
        settings = self.settings
        deadline = stall_deadline(settings.warmup_iters, total_iterations)
        if not settings.use_global or iteration < deadline or self.global_phase_started():
            return {}
        summary = self.training_summary()
        return {"pfa_global_stalled": stall_message(
            settings.global_start, deadline, total_iterations, summary["bank_full_classes"],
            summary["bank_seen_classes"], self.num_classes)}

    def after_restore(self) -> None:
        """A restored bank may be less full than the cached ``is_full`` says (and the latch less set)."""
        self.bank.forget_fill_state()
        self._known_started = False

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self._known_started = False  # the loaded latch decides
        super()._load_from_state_dict(*args, **kwargs)
