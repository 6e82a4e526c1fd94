"""The one small protocol every inference of the engine runs a model through, and its PyTorch side.

:class:`InferenceModel` is what evaluation, prediction, the trainer's validation, the figures and the
Python API need from a model, whatever runs it:

* ``heads() -> {name: HeadInfo}`` (default head first for a method) and ``infer(images [N, 3, H, W],
  heads, classes) -> Prediction`` (logits ``[N, K, h, w]`` per head), as in the method contract;
* ``num_classes``, ``device`` (where inputs go), ``class_names`` (``K`` names or ``None``), ``palette``
  (``K`` RGB triples), ``has_image_classifier``;
* ``default_head`` (what ``predict`` runs without ``--head``) and ``class_source(asked)`` (the class source
  to use: the asked one, checked against the model, or the model's default);
* ``in_graph_classes``: True when the model chooses the class set of its class-dependent head itself (an
  exported graph), so no other class source can be scored with it;
* ``eval_mode()``: a context in which the model predicts (a PyTorch module in eval mode, its previous
  mode restored afterwards).

:class:`MethodModel` puts a :class:`~scribbleseg.methods.SegmentationMethod` (a checkpoint's, or the one
being trained) behind it; :class:`scribbleseg.deploy.onnx.runtime_model.OnnxRuntimeModel` implements it
for ONNX Runtime. :func:`as_inference_model` is the one place a bare method is adapted.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Iterator, Protocol, Sequence

import torch
from torch import Tensor, nn

from scribbleseg.data.voc_classes import voc_color
from scribbleseg.methods import BASIC_HEAD, ClassChooser, HeadInfo, Prediction, SegmentationMethod
from scribbleseg.methods.class_sources import ClassSource, check_source_fits, default_class_source, parse_class_source

__all__ = ["InferenceModel", "MethodModel", "as_inference_model", "palette_for"]


class InferenceModel(Protocol):
    """What the engine's inference needs from a model (see the module docstring)."""

    num_classes: int
    class_names: tuple[str, ...] | None
    palette: list[tuple[int, int, int]]
    default_head: str
    in_graph_classes: bool

    @property
    def device(self) -> torch.device:
        """Where ``infer`` takes its inputs."""

    @property
    def has_image_classifier(self) -> bool:
        """Whether ``infer`` returns image-level logits (the ``head`` class source reads them)."""

    def heads(self) -> dict[str, HeadInfo]:
        """Head name -> what it is, whether it needs classes, why it cannot run (``None``: it can)."""

    def infer(self, images: Tensor, heads: Sequence[str] = (BASIC_HEAD,),
              classes: Tensor | ClassChooser | None = None) -> Prediction:
        """Logits of ``heads`` for normalised ``images [N, 3, H, W]`` (the method contract's ``infer``)."""

    def class_source(self, asked: ClassSource | None = None) -> ClassSource:
        """The class source to run with: ``asked`` (ConfigError when the model cannot use it), or the
        model's own default when ``None``."""

    def eval_mode(self) -> ContextManager[None]:
        """A context in which the model predicts."""


def palette_for(stored: Sequence[Sequence[int]] | None, num_classes: int) -> list[tuple[int, int, int]]:
    """``stored`` RGB triples when there is one per class, else VOC-style colours for ``num_classes``."""
    if stored is not None and len(stored) >= num_classes:
        return [tuple(int(c) for c in colour[:3]) for colour in stored]  # type: ignore[misc]
    return [voc_color(index) for index in range(num_classes)]


class MethodModel:
    """A :class:`~scribbleseg.methods.SegmentationMethod` behind :class:`InferenceModel`.

    Args:
        method: the method (not a DDP wrapper; unwrap it first).
        class_names: ``K`` names (a checkpoint's meta), or ``None``.
        palette: ``K`` RGB triples, or ``None`` (VOC-style colours).
    """

    default_head = BASIC_HEAD
    in_graph_classes = False

    def __init__(self, method: SegmentationMethod, class_names: Sequence[str] | None = None,
                 palette: Sequence[Sequence[int]] | None = None) -> None:
        self.method = method
        self.num_classes = int(method.num_classes)
        self.class_names = tuple(str(name) for name in class_names) if class_names is not None else None
        self.palette = palette_for(palette, self.num_classes)

    @property
    def device(self) -> torch.device:
        return next(self.method.parameters()).device

    @property
    def has_image_classifier(self) -> bool:
        return bool(self.method.has_image_classifier)

    def heads(self) -> dict[str, HeadInfo]:
        return self.method.heads()

    def infer(self, images: Tensor, heads: Sequence[str] = (BASIC_HEAD,),
              classes: Tensor | ClassChooser | None = None) -> Prediction:
        return self.method.infer(images, heads=heads, classes=classes)

    def class_source(self, asked: ClassSource | None = None) -> ClassSource:
        """``asked`` (checked: ``head`` needs the image classifier), else ``head`` for a method with an image
        classifier and ``threshold`` for one without (:func:`~scribbleseg.methods.default_class_source`)."""
        source = asked if asked is not None else parse_class_source(default_class_source(self.method),
                                                                    self.class_names)
        check_source_fits(source, self.method)
        return source

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        was_training = self.method.training
        self.method.eval()
        try:
            yield
        finally:
            self.method.train(was_training)

    def to(self, device: torch.device | str) -> "MethodModel":
        """Move the method to ``device`` (returns ``self``)."""
        self.method.to(torch.device(device))
        return self


def as_inference_model(model: "InferenceModel | nn.Module") -> InferenceModel:
    """``model`` itself when it already implements :class:`InferenceModel`, a bare method wrapped in a
    :class:`MethodModel` (without class names; VOC-style palette)."""
    return MethodModel(model) if isinstance(model, nn.Module) else model  # type: ignore[arg-type]
