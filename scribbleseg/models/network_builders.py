"""One construction path for every network: backbone and decoder settings -> modules, through the
declared families (:mod:`scribbleseg.models.families`).

>>> encoder = build_backbone(MiTBackbone(name="mit_b1"))
>>> head = build_decoder(SegFormerDecoder(), encoder, num_classes=21)
>>> logits = head.classify(head.fuse(encoder(images)))       # [N, 21, H/4, W/4]
"""

from __future__ import annotations

from torch import nn

from scribbleseg.errors import ConfigError
from scribbleseg.models.families import BACKBONES, DECODERS


def build_backbone(settings) -> nn.Module:  # type: ignore[no-untyped-def]
    """The encoder described by ``settings`` (forward -> 4 stage maps, ``out_channels``)."""
    family = BACKBONES.get(settings.type)
    if family is None:
        raise ConfigError(f"unknown backbone type {settings.type!r}; types: {', '.join(BACKBONES)}")
    return family.build(settings)


def build_decoder(settings, encoder: nn.Module, num_classes: int) -> nn.Module:  # type: ignore[no-untyped-def]
    """The decoder described by ``settings`` on ``encoder``'s stage maps (``out_channels`` channels at
    ``output_strides``), with ``num_classes`` outputs."""
    family = DECODERS.get(settings.type)
    if family is None:
        raise ConfigError(f"unknown decoder type {settings.type!r}; types: {', '.join(DECODERS)}")
    return family.build(settings, tuple(encoder.out_channels), tuple(encoder.output_strides), int(num_classes))
