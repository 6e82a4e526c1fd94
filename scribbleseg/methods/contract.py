"""The contract between the engine and a training method (pCE baseline, PFA, ...).

The engine trains, checkpoints, evaluates and predicts every method through the calls below and
nothing else; it never looks inside a method (no bank, no loss names, no head names of its own).

Training::

    batch = TrainBatch(images, scribbles, crop_classes, image_classes)   # on the model's device
    snapshot = method.snapshot()            # every buffer a skipped step must undo (BN stats, bank, ...)
    result = method.training_step(batch, iteration)                      # StepResult
    if not finite(result.loss): method.restore(snapshot)                 # the step leaves no trace
    result.loss.backward()
    result.parts                            # detached scalars, keys = method.loss_names()
    result.phase                            # e.g. "warmup" / "local" / "global", or None
    method.training_summary()               # extra numbers for metrics.jsonl (e.g. bank fill state)

Inference::

    method.heads()                          # {name: HeadInfo}; the first head is the default
    prediction = method.infer(images, heads=("basic", ...), classes=chooser_or_mask_or_None)
    prediction.logits[head]                 # [N, K, h, w] at the decoder's resolution
    prediction.present                      # [N, K] bool class set the class-dependent heads used

A head with ``uses_classes`` needs an image-level class set: ``classes`` is either a ``[N, K]`` bool
mask, a :data:`ClassChooser` that picks it from the :class:`Evidence` of the basic pass (the engine's
class sources: oracle labels, prediction-map threshold, file, image classifier), or ``None`` (no class
information: such heads are not computed and the engine reports the basic prediction for them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Iterator, Sequence

import torch
from torch import Tensor, nn

from scribbleseg.errors import ConfigError

BASIC_HEAD = "basic"
TOTAL_LOSS = "total"


@dataclass
class TrainBatch:
    """One training batch.

    Attributes:
        images: ``[N, 3, H, W]`` float, normalised crops.
        scribbles: ``[N, H, W]`` int64 class ids, ``ignore_index`` = unlabeled.
        crop_classes: ``[N, K]`` bool, classes with a scribbled pixel inside the crop.
        image_classes: ``[N, K]`` bool, classes scribbled anywhere in the whole image (image-level
            labels; equal to ``crop_classes`` when the data set cannot tell).
        valid: ``[N, H, W]`` bool, False where the crop shows no image (padding, rotation corners), or
            ``None`` (all valid).
    """

    images: Tensor
    scribbles: Tensor
    crop_classes: Tensor
    image_classes: Tensor
    valid: Tensor | None = None

    @classmethod
    def from_loader(cls, batch: dict[str, Tensor]) -> "TrainBatch":
        """From a collated batch of the data layer's ``ScribbleDataset`` items."""
        return cls(batch["image"], batch["scribble"], batch["crop_classes"], batch["image_classes"],
                   batch.get("valid"))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TrainBatch":
        """The same batch on ``device``."""
        moved = {item.name: getattr(self, item.name) for item in fields(self)}
        return TrainBatch(**{name: None if value is None else value.to(device, non_blocking=non_blocking)
                             for name, value in moved.items()})


@dataclass
class StepResult:
    """What :meth:`SegmentationMethod.training_step` returns.

    Attributes:
        loss: the total loss, a scalar with its graph.
        parts: detached scalars, one per name of :meth:`SegmentationMethod.loss_names` (``"total"`` first).
        phase: the method's training phase at this step (``None`` for methods without phases).
        outputs: head -> ``[N, K, h, w]`` logits computed in this step (for inspection and tests).
    """

    loss: Tensor
    parts: dict[str, Tensor]
    phase: str | None = None
    outputs: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class HeadInfo:
    """One prediction head of a method.

    Attributes:
        name: the head's name (``"basic"`` is the un-augmented prediction every method has).
        description: one line for tables and help texts.
        uses_classes: the head needs the image-level class set (see the module docstring).
        unavailable: why the head cannot run with this model now, or ``None``.
    """

    name: str
    description: str
    uses_classes: bool = False
    unavailable: str | None = None


@dataclass
class Evidence:
    """What a class chooser may look at: the basic pass of a batch.

    Attributes:
        basic: ``[N, K, h, w]`` basic logits.
        image_logits: ``[N, K]`` logits of the method's image-level classifier, or ``None``.
        pixel_counts: ``[N, K]`` int64 arg-max pixel counts of the basic prediction at full image
            resolution, when the caller counted them (sliding-window inference of a large image, where
            ``basic`` is only a subsampled summary); ``None``: count on ``basic`` itself.
    """

    basic: Tensor
    image_logits: Tensor | None = None
    pixel_counts: Tensor | None = None


ClassChooser = Callable[[Evidence], "Tensor | None"]


@dataclass
class Prediction:
    """What :meth:`SegmentationMethod.infer` returns.

    Attributes:
        logits: head -> ``[N, K, h, w]`` logits; class-dependent heads are missing when no class set
            was available.
        present: ``[N, K]`` bool class set used by the class-dependent heads, or ``None``.
        image_logits: ``[N, K]`` image-level classifier logits, or ``None``.
    """

    logits: dict[str, Tensor]
    present: Tensor | None = None
    image_logits: Tensor | None = None


@dataclass
class StateSnapshot:
    """Copies of every buffer of a method (see :meth:`SegmentationMethod.snapshot`)."""

    tensors: list[Tensor] = field(default_factory=list)


class SegmentationMethod(nn.Module, ABC):
    """Base of every method: an encoder + decoder (``encoder``, ``head``) and the contract above.

    Subclasses set :attr:`method_name` and implement :meth:`loss_names` and :meth:`training_step`;
    methods with more heads than ``basic`` override :meth:`heads` and :meth:`infer_heads`.

    Args:
        encoder: backbone, ``encoder(images [N, 3, H, W]) -> 4 stage maps``.
        head: decoder with ``fuse(stage_maps) -> F [N, D, h, w]`` and ``classify(F) -> [N, K, h, w]``.
        num_classes: ``K``, background included.
        ignore_index: label value of unscribbled pixels.
    """

    method_name: ClassVar[str] = "method"

    #: When True, :meth:`infer` keeps every shape a function of the input's shape (no host syncs, no
    #: data-dependent packing), as tracing for graph export needs; the results are the same. Set by
    #: :meth:`traceable`.
    static_shapes: bool = False

    def __init__(self, encoder: nn.Module, head: nn.Module, num_classes: int, ignore_index: int = 255) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.encoder = encoder
        self.head = head
        self._snapshot: StateSnapshot | None = None

    # ----------------------------------------------------------------------------------- network
    @property
    def feature_dim(self) -> int:
        """Channels ``D`` of the decoder's fused features."""
        return int(self.head.feature_channels)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Fused features ``F [N, D, h, w]`` and basic logits ``[N, K, h, w]``."""
        features = self.head.fuse(self.encoder(images))
        return features, self.head.classify(features)

    # ---------------------------------------------------------------------------------- training
    @abstractmethod
    def loss_names(self) -> tuple[str, ...]:
        """Names of the loss parts :meth:`training_step` reports, ``"total"`` first (fixed per model)."""

    @abstractmethod
    def training_step(self, batch: TrainBatch, iteration: int) -> StepResult:
        """One training forward at 0-based ``iteration``; the caller runs ``result.loss.backward()``."""

    def training_summary(self) -> dict[str, Any]:
        """Extra numbers about the method's state for the training log (none by default)."""
        return {}

    # --------------------------------------------------------------------------------- inference
    def heads(self) -> dict[str, HeadInfo]:
        """The prediction heads of this model, the default one first."""
        return {BASIC_HEAD: HeadInfo(BASIC_HEAD, "the decoder's prediction")}

    def image_logits(self, features: Tensor) -> Tensor | None:
        """``[N, K]`` image-level class logits from ``features``, or ``None`` (no image classifier)."""
        return None

    def infer_heads(self, features: Tensor, basic: Tensor, present: Tensor, heads: Sequence[str]) -> dict[str, Tensor]:
        """Logits ``[N, K, h, w]`` of the class-dependent ``heads`` given the class set ``present [N, K]``."""
        if heads:
            raise ConfigError(f"{self.method_name} has no head {heads[0]!r}; heads: {', '.join(self.heads())}")
        return {}

    @torch.no_grad()
    def infer(self, images: Tensor, heads: Sequence[str] = (BASIC_HEAD,),
              classes: Tensor | ClassChooser | None = None) -> Prediction:
        """Logits of ``heads`` for ``images [N, 3, H, W]`` (see the module docstring)."""
        infos = self.heads()
        unknown = [head for head in heads if head not in infos]
        if unknown:
            raise ConfigError(f"unknown head {unknown[0]!r}; this model has {', '.join(infos)}")
        features, basic = self.encode(images)
        prediction = Prediction(logits={BASIC_HEAD: basic}, image_logits=self.image_logits(features))
        dependent = [head for head in heads if infos[head].uses_classes]
        if not dependent:
            return prediction
        present = classes(Evidence(basic, prediction.image_logits)) if callable(classes) else classes
        if present is None:
            return prediction
        prediction.present = present.to(device=basic.device, dtype=torch.bool)
        prediction.logits.update(self.infer_heads(features, basic, prediction.present, dependent))
        return prediction

    @contextmanager
    def traceable(self) -> Iterator[None]:
        """A block in which :meth:`infer` can be traced into a graph (ONNX export) with the same results.

        Shapes depend on the input's shape only (:attr:`static_shapes`), and the head table is read once
        on entry: a traced graph cannot ask the buffers which heads are available (e.g. PFA's "is the
        bank full?"), so :meth:`heads` returns that table until the block ends.
        """
        table = self.heads()
        self.static_shapes = True
        self.heads = lambda: dict(table)  # type: ignore[method-assign]  # instance attribute, removed below
        try:
            yield
        finally:
            del self.heads
            del self.static_shapes

    # ------------------------------------------------------------------------------------- state
    def snapshot(self) -> StateSnapshot:
        """Copies of every buffer (BatchNorm statistics, prototype bank, ...) into reused storage.

        One fused multi-tensor copy per call; :meth:`restore` puts them back, so a skipped step leaves
        no trace in the model's state. The returned snapshot is overwritten by the next call.
        """
        buffers = list(self.buffers())
        snap = self._snapshot
        if snap is None or len(snap.tensors) != len(buffers) or any(
                a.shape != b.shape or a.dtype != b.dtype or a.device != b.device
                for a, b in zip(snap.tensors, buffers)):
            snap = StateSnapshot([torch.empty_like(buffer) for buffer in buffers])
            self._snapshot = snap
        if buffers:
            torch._foreach_copy_(snap.tensors, buffers)
        return snap

    def restore(self, snapshot: StateSnapshot) -> None:
        """Put back the buffers saved by :meth:`snapshot`."""
        buffers = list(self.buffers())
        if len(buffers) != len(snapshot.tensors):
            raise ValueError(f"snapshot holds {len(snapshot.tensors)} buffers, the model has {len(buffers)}")
        if buffers:
            torch._foreach_copy_(buffers, snapshot.tensors)
        self.after_restore()

    def after_restore(self) -> None:
        """Hook for subclasses that cache something derived from their buffers."""

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description of the method for checkpoint metadata."""
        return {"method": self.method_name, "num_classes": self.num_classes, "heads": list(self.heads())}
