"""Build the configured method (``pce`` | ``pfa`` | ...) on the configured network, from an experiment config.

``build_method(cfg, num_classes)``: backbone and decoder from ``model`` (one construction path,
:mod:`scribbleseg.models.network_builders`), the encoder's pretrained weights, the regularisers and the
image classifier, then the method through its declared family
(:data:`~scribbleseg.engine.config.method_table.METHODS`). :func:`model_descriptor` is what a checkpoint
records to check later that it fits a config.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from scribbleseg.engine.config.method_table import METHODS
from scribbleseg.engine.config.schema import ExperimentConfig, ModelConfig
from scribbleseg.data import IMAGENET_MEAN, IMAGENET_STD
from scribbleseg.methods import GatedCRFRegulariser, ImageClassification, Regulariser, SegmentationMethod
from scribbleseg.models import load_encoder_weights
from scribbleseg.models.network_builders import build_backbone, build_decoder


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


def method_settings(cfg: ExperimentConfig) -> Any:
    """The settings section of ``cfg.method`` (``cfg.pfa`` for pfa), or ``None`` for a method without one."""
    section = METHODS[cfg.method].section
    return None if section is None else getattr(cfg, section)


def build_method(cfg: ExperimentConfig, num_classes: int, load_pretrained: bool = True,
                 ignore_index: int = 255) -> SegmentationMethod:
    """A fresh method of ``cfg.method`` for ``num_classes`` classes (``ignore_index`` = unscribbled)."""
    encoder, head = build_network(cfg.model, num_classes, load_pretrained)
    regularisers = build_regularisers(cfg)
    classifier = build_classifier(cfg, encoder, head, num_classes)
    return METHODS[cfg.method].build(encoder, head, num_classes, method_settings(cfg), ignore_index=ignore_index,
                                     regularisers=regularisers, classifier=classifier,
                                     pce_align_corners=cfg.train.pce_align_corners)


def settings_for_run(cfg: ExperimentConfig, total_steps: int, length: str) -> ExperimentConfig:
    """``cfg`` with the method's schedule fitted to a run of ``total_steps`` iterations (PFA: the warm-up
    fraction as iterations; a warm-up that lasts the whole run is a ConfigError naming both keys;
    ``length`` names the key that set the run's length)."""
    settings = method_settings(cfg)
    if settings is None:
        return cfg
    resolved = cfg.model_copy(deep=True)
    setattr(resolved, METHODS[cfg.method].section, settings.for_run(total_steps, length))
    return resolved


def model_descriptor(cfg: ExperimentConfig) -> dict[str, Any]:
    """What shapes a model's weights: method, backbone and decoder architecture, method-specific sizes."""
    descriptor: dict[str, Any] = {
        "method": cfg.method,
        "backbone": cfg.model.backbone.architecture(),
        "decoder": cfg.model.decoder.architecture(),
    }
    settings = method_settings(cfg)
    if settings is not None:
        descriptor[METHODS[cfg.method].section] = settings.architecture()
    if cfg.classifier is not None:  # absent key = no classifier, as in checkpoints written before it existed
        descriptor["classifier"] = cfg.classifier.architecture()
    return descriptor
