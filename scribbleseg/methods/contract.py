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
    method.training_warnings(step, total)   # problems worth one printed warning (e.g. a stalled phase)

Inference::

    method.heads()                          # {name: HeadInfo}; the first head is the default
    prediction = method.infer(images, heads=("basic", ...), classes=chooser_or_mask_or_None)
    prediction.logits[head]                 # [N, K, h, w] at the decoder's resolution
    prediction.present                      # [N, K] bool class set the class-dependent heads used
    prediction.image_logits                 # [N, K] the image classifier's logits, or None

A head with ``uses_classes`` needs an image-level class set: ``classes`` is either a ``[N, K]`` bool
mask, a :data:`ClassChooser` that picks it from the :class:`Evidence` of the basic pass (the engine's
class sources: oracle labels, prediction-map threshold, file, image classifier), or ``None`` (no class
information: such heads are not computed and the engine reports the basic prediction for them).

Image classifier: a method built with ``classifier=`` (:class:`~scribbleseg.methods.image_classification.ImageClassification`)
adds ``lambda_cls * BCE`` (loss part ``"cls"``) to its training loss through :meth:`SegmentationMethod.add_classifier_loss`
and returns image-level logits at inference (:attr:`Prediction.image_logits`, :attr:`Evidence.image_logits`),
which the class source ``head`` thresholds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Sequence

import torch
from torch import Tensor, nn

from scribbleseg.errors import ConfigError

if TYPE_CHECKING:
    from scribbleseg.methods.image_classification import ImageClassification

BASIC_HEAD = "basic"
TOTAL_LOSS = "total"
CLASSIFIER_LOSS = "cls"


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
class NetworkOutput:
    """One forward of encoder and decoder.

    Attributes:
        stages: the encoder's stage maps, stage 1 first (``[N, C_i, H_i, W_i]``).
        features: fused features ``F [N, D, h, w]``.
        basic: basic logits ``[N, K, h, w]``.
    """

    stages: Sequence[Tensor]
    features: Tensor
    basic: Tensor


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
    methods with more heads than ``basic`` override :meth:`heads` and :meth:`infer_heads`. A subclass
    that accepts a ``classifier`` calls :meth:`add_classifier_loss` in its training step and lists
    :meth:`classifier_loss_names` in its loss names.

    Args:
        encoder: backbone, ``encoder(images [N, 3, H, W]) -> 4 stage maps``.
        head: decoder with ``fuse(stage_maps) -> F [N, D, h, w]`` and ``classify(F) -> [N, K, h, w]``.
        num_classes: ``K``, background included.
        ignore_index: label value of unscribbled pixels.
        classifier: the multi-label image classifier trained with the method, or ``None``.
    """

    method_name: ClassVar[str] = "method"

    #: When True, :meth:`infer` keeps every shape a function of the input's shape (no host syncs, no
    #: data-dependent packing), as tracing for graph export needs; the results are the same. Set by
    #: :meth:`traceable`.
    static_shapes: bool = False

    def __init__(self, encoder: nn.Module, head: nn.Module, num_classes: int, ignore_index: int = 255,
                 classifier: "ImageClassification | None" = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.encoder = encoder
        self.head = head
        self.image_classifier = classifier
        self._snapshot: StateSnapshot | None = None

    # ----------------------------------------------------------------------------------- network
    @property
    def feature_dim(self) -> int:
        """Channels ``D`` of the decoder's fused features."""
        return int(self.head.feature_channels)

    def run_network(self, images: Tensor) -> NetworkOutput:
        """Encoder stage maps, fused features ``F [N, D, h, w]`` and basic logits ``[N, K, h, w]``."""
        stages = self.encoder(images)
        features = self.head.fuse(stages)
        return NetworkOutput(stages, features, self.head.classify(features))

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Fused features ``F [N, D, h, w]`` and basic logits ``[N, K, h, w]``."""
        network = self.run_network(images)
        return network.features, network.basic

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

    def training_warnings(self, iteration: int, total_iterations: int) -> dict[str, str]:
        """Problems with the training state at ``iteration`` of ``total_iterations``: stable key -> message.

        None by default. The trainer prints each key's message once per run, so a method may return the
        same key at every call.
        """
        return {}

    def classifier_loss_names(self) -> tuple[str, ...]:
        """``("cls",)`` when the method carries an image classifier, else ``()``."""
        return (CLASSIFIER_LOSS,) if self.image_classifier is not None else ()

    def add_classifier_loss(self, network: NetworkOutput, batch: TrainBatch, loss: Tensor,
                            parts: dict[str, Tensor]) -> Tensor:
        """``loss`` plus the image classifier's weighted BCE (its detached value in ``parts["cls"]``)."""
        classifier = self.image_classifier
        if classifier is None:
            return loss
        logits = classifier.logits(network, batch.valid)
        term = classifier.loss(logits, classifier.targets(batch.crop_classes, batch.image_classes))
        parts[CLASSIFIER_LOSS] = term.detach()
        return loss + term

    # --------------------------------------------------------------------------------- inference
    def heads(self) -> dict[str, HeadInfo]:
        """The prediction heads of this model, the default one first."""
        return {BASIC_HEAD: HeadInfo(BASIC_HEAD, "the decoder's prediction")}

    def untrained_heads(self, step: int) -> dict[str, str]:
        """Heads that had not trained yet after ``step`` training iterations (a checkpoint's ``step``), each
        with why; ``{}`` by default (every head trains from the first step)."""
        return {}

    @property
    def has_image_classifier(self) -> bool:
        """Whether :meth:`image_logits` gives logits (the model was built with a classifier)."""
        return self.image_classifier is not None

    def image_logits(self, network: NetworkOutput) -> Tensor | None:
        """``[N, K]`` image-level class logits of one forward, or ``None`` (no image classifier)."""
        if self.image_classifier is None:
            return None
        return self.image_classifier.logits(network)

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
        network = self.run_network(images)
        features, basic = network.features, network.basic
        prediction = Prediction(logits={BASIC_HEAD: basic}, image_logits=self.image_logits(network))
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
        return {"method": self.method_name, "num_classes": self.num_classes, "heads": list(self.heads()),
                "image_classifier": self.has_image_classifier}
