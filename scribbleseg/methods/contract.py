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

The records (``TrainBatch``, ``NetworkOutput``, ``StepResult``, ``StateSnapshot``; ``HeadInfo``,
``Evidence``, ``ClassChooser``, ``Prediction``) live in :mod:`scribbleseg.methods.training_types` and
:mod:`scribbleseg.methods.inference_types`; this module holds only the base class.

A subclass implements :meth:`SegmentationMethod.own_loss_names` and :meth:`SegmentationMethod.own_step`
(its own loss on one forward of the network); the base's :meth:`SegmentationMethod.training_step` runs
the network, calls ``own_step`` and adds what every method shares. Image classifier: a method built with
``classifier=`` (:class:`~scribbleseg.methods.image_classification.ImageClassification`) gets
``lambda_cls * BCE`` (loss part ``"cls"``) added to its loss by the base, so no method can forget it, and
returns image-level logits at inference (:attr:`Prediction.image_logits`, :attr:`Evidence.image_logits`),
which the class source ``head`` thresholds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import Any, ClassVar, Iterator, Sequence

import torch
from torch import Tensor, nn

from scribbleseg.errors import ConfigError
from scribbleseg.methods.image_classification import CLASSIFIER_LOSS, ImageClassification
from scribbleseg.methods.inference_types import BASIC_HEAD, ClassChooser, Evidence, HeadInfo, Prediction
from scribbleseg.methods.training_types import TOTAL_LOSS, NetworkOutput, StateSnapshot, StepResult, TrainBatch

#: What a subclass implements instead of overriding (the base composes them with the shared terms).
_TEMPLATE_METHODS = {"training_step": "own_step", "loss_names": "own_loss_names"}


class SegmentationMethod(nn.Module, ABC):
    """Base of every method: an encoder + decoder (``encoder``, ``head``) and the contract above.

    Subclasses set :attr:`method_name` and implement :meth:`own_loss_names` and :meth:`own_step`; they may
    not override :meth:`training_step` or :meth:`loss_names` (a ``TypeError`` at class creation), which
    add the image classifier's term around them. Methods with more heads than ``basic`` override
    :meth:`heads` and :meth:`infer_heads`.

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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for composed, own in _TEMPLATE_METHODS.items():
            if composed in cls.__dict__:
                raise TypeError(f"{cls.__name__} overrides {composed}; implement {own} instead (the base adds "
                                "the image classifier's loss around it)")

    def __init__(self, encoder: nn.Module, head: nn.Module, num_classes: int, ignore_index: int = 255,
                 classifier: ImageClassification | None = None) -> None:
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
    def own_loss_names(self) -> tuple[str, ...]:
        """Names of the loss parts :meth:`own_step` reports, ``"total"`` first (fixed per model)."""

    @abstractmethod
    def own_step(self, network: NetworkOutput, batch: TrainBatch, iteration: int) -> StepResult:
        """The method's own loss on one forward ``network`` of ``batch.images`` at 0-based ``iteration``.

        ``parts`` holds the detached values of :meth:`own_loss_names` (``"total"`` may be left out: the
        base sets it).
        """

    def loss_names(self) -> tuple[str, ...]:
        """:meth:`own_loss_names`, then ``"cls"`` when the method carries an image classifier."""
        return self.own_loss_names() + ((CLASSIFIER_LOSS,) if self.image_classifier is not None else ())

    def training_step(self, batch: TrainBatch, iteration: int) -> StepResult:
        """One training forward: the network, the method's :meth:`own_step`, plus the image classifier's
        weighted BCE (detached in ``parts["cls"]``); the caller runs ``result.loss.backward()``."""
        network = self.run_network(batch.images)
        result = self.own_step(network, batch, iteration)
        if self.image_classifier is not None:
            term = self.image_classifier.training_loss(network, batch)
            result.parts[CLASSIFIER_LOSS] = term.detach()
            result.loss = result.loss + term
        result.parts[TOTAL_LOSS] = result.loss.detach()
        return result

    def training_summary(self) -> dict[str, Any]:
        """Extra numbers about the method's state for the training log (none by default)."""
        return {}

    def training_warnings(self, iteration: int, total_iterations: int) -> dict[str, str]:
        """Problems with the training state at ``iteration`` of ``total_iterations``: stable key -> message.

        None by default. The trainer prints each key's message once per run, so a method may return the
        same key at every call.
        """
        return {}

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
