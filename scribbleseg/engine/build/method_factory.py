"""Build the configured method (``pce`` | ``pfa``) on the configured network, from an experiment config.

``build_method(cfg, num_classes)``: backbone and decoder from ``model`` (one construction path,
:mod:`scribbleseg.models.network_builders`), the encoder's pretrained weights, then the method from the
dict :data:`METHOD_BUILDERS`. :func:`model_descriptor` is what a checkpoint records to check later that
it fits a config. To add a method: a :class:`~scribbleseg.methods.SegmentationMethod` subclass, a
builder here, and its name in ``ExperimentConfig.method``.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from scribbleseg.engine.config.schema import ExperimentConfig, ModelConfig
from scribbleseg.data import IMAGENET_MEAN, IMAGENET_STD
from scribbleseg.methods import (
    GatedCRFRegulariser,
    ImageClassification,
    PartialCEMethod,
    Regulariser,
    SegmentationMethod,
)
from scribbleseg.models import load_encoder_weights
from scribbleseg.models.network_builders import build_backbone, build_decoder
from scribbleseg.pfa import PFAMethod

MethodBuilder = Callable[[ExperimentConfig, nn.Module, nn.Module, int, int], SegmentationMethod]


def build_network(model_cfg: ModelConfig, num_classes: int, load_pretrained: bool = True) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of ``model``; the encoder gets ``model.pretrained`` when ``load_pretrained``."""
    encoder = build_backbone(model_cfg.backbone)
    if load_pretrained and model_cfg.pretrained:
        load_encoder_weights(encoder, model_cfg.pretrained)  # a path or a Hugging Face Hub id
    head = build_decoder(model_cfg.decoder, encoder, num_classes)
    return encoder, head


def build_regularisers(cfg: ExperimentConfig) -> list[Regulariser]:
    """The extra loss terms of ``cfg`` (the Gated CRF loss when ``gated_crf`` is set)."""
    if cfg.gated_crf is None:
        return []
    return [GatedCRFRegulariser(cfg.gated_crf, IMAGENET_MEAN, IMAGENET_STD)]


def build_classifier(cfg: ExperimentConfig, encoder: nn.Module, head: nn.Module,
                     num_classes: int) -> ImageClassification | None:
    """The image classifier of ``cfg`` (section ``classifier``; ``None`` when the section is null)."""
    if cfg.classifier is None:
        return None
    return ImageClassification(cfg.classifier, tuple(encoder.out_channels), int(head.feature_channels), num_classes)


def _build_pce(cfg: ExperimentConfig, encoder: nn.Module, head: nn.Module, num_classes: int,
               ignore_index: int) -> SegmentationMethod:
    return PartialCEMethod(encoder, head, num_classes, ignore_index=ignore_index,
                           regularisers=build_regularisers(cfg),
                           classifier=build_classifier(cfg, encoder, head, num_classes))


def _build_pfa(cfg: ExperimentConfig, encoder: nn.Module, head: nn.Module, num_classes: int,
               ignore_index: int) -> SegmentationMethod:
    return PFAMethod(encoder, head, num_classes, settings=cfg.pfa, ignore_index=ignore_index,
                     regularisers=build_regularisers(cfg),
                     classifier=build_classifier(cfg, encoder, head, num_classes))


METHOD_BUILDERS: dict[str, MethodBuilder] = {"pce": _build_pce, "pfa": _build_pfa}


def build_method(cfg: ExperimentConfig, num_classes: int, load_pretrained: bool = True,
                 ignore_index: int = 255) -> SegmentationMethod:
    """A fresh method of ``cfg.method`` for ``num_classes`` classes (``ignore_index`` = unscribbled)."""
    encoder, head = build_network(cfg.model, num_classes, load_pretrained)
    return METHOD_BUILDERS[cfg.method](cfg, encoder, head, num_classes, ignore_index)


def settings_for_run(cfg: ExperimentConfig, total_steps: int, length: str) -> ExperimentConfig:
    """``cfg`` with the method's schedule fitted to a run of ``total_steps`` iterations (PFA: the warm-up
    fraction as iterations; a warm-up that lasts the whole run is a ConfigError naming both keys;
    ``length`` names the key that set the run's length)."""
    if cfg.method != "pfa":
        return cfg
    resolved = cfg.model_copy(deep=True)
    resolved.pfa = cfg.pfa.for_run(total_steps, length)
    return resolved


def model_descriptor(cfg: ExperimentConfig) -> dict[str, Any]:
    """What shapes a model's weights: method, backbone and decoder architecture, method-specific sizes."""
    descriptor: dict[str, Any] = {
        "method": cfg.method,
        "backbone": cfg.model.backbone.architecture(),
        "decoder": cfg.model.decoder.architecture(),
    }
    if cfg.method == "pfa":
        descriptor["pfa"] = cfg.pfa.architecture()
    if cfg.classifier is not None:  # absent key = no classifier, as in checkpoints written before it existed
        descriptor["classifier"] = cfg.classifier.architecture()
    return descriptor
