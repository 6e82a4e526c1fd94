"""One construction path for every network: backbone and decoder settings -> modules (dicts of builders).

>>> encoder = build_backbone(MiTBackbone(name="mit_b1"))
>>> head = build_decoder(SegFormerDecoder(), encoder, num_classes=21)
>>> logits = head.classify(head.fuse(encoder(images)))       # [N, 21, H/4, W/4]

To add a backbone or decoder: a settings class in ``network_settings.py`` (with a new ``type``), a
builder here, and the class in the union of the engine's ``ModelConfig``.
"""

from __future__ import annotations

from typing import Callable, Sequence

from torch import nn

from scribbleseg.errors import ConfigError
from scribbleseg.models.heads.deeplabv2 import DeepLabV2Head
from scribbleseg.models.heads.deeplabv3plus import DeepLabV3PlusHead
from scribbleseg.models.mit.mix_transformer import MixTransformer
from scribbleseg.models.network_settings import (
    DeepLabV2Decoder,
    DeepLabV3PlusDecoder,
    MiTBackbone,
    ResNetBackbone,
    SegFormerDecoder,
)
from scribbleseg.models.resnet.encoder import ResNet
from scribbleseg.models.heads.segformer import SegFormerHead


def _build_mit(settings: MiTBackbone) -> MixTransformer:
    if settings.dims is not None:
        dims = settings.dims
        return MixTransformer(embed_dims=dims.embed_dims, depths=dims.depths, num_heads=dims.num_heads,
                              mlp_ratios=dims.mlp_ratios, sr_ratios=dims.sr_ratios, strides=settings.strides,
                              drop_path_rate=settings.drop_path)
    return MixTransformer.from_name(settings.name, strides=settings.strides, drop_path_rate=settings.drop_path)


def _build_resnet(settings: ResNetBackbone) -> ResNet:
    if settings.dims is not None:
        dims = settings.dims
        return ResNet(depths=dims.depths, base_width=dims.base_width, stem_channels=dims.stem_channels,
                      output_stride=settings.output_stride)
    return ResNet.from_name(settings.name, output_stride=settings.output_stride)


def _build_segformer(settings: SegFormerDecoder, in_channels: Sequence[int], in_strides: Sequence[int],
                     num_classes: int) -> SegFormerHead:
    return SegFormerHead(in_channels=in_channels, num_classes=num_classes, embed_dim=settings.embed_dim,
                         dropout=settings.dropout, in_strides=in_strides, init=settings.init)


def _build_deeplabv2(settings: DeepLabV2Decoder, in_channels: Sequence[int], in_strides: Sequence[int],
                     num_classes: int) -> DeepLabV2Head:
    return DeepLabV2Head(in_channels, num_classes, in_strides=in_strides, dilations=settings.dilations,
                         dropout=settings.dropout)


def _build_deeplabv3plus(settings: DeepLabV3PlusDecoder, in_channels: Sequence[int], in_strides: Sequence[int],
                         num_classes: int) -> DeepLabV3PlusHead:
    return DeepLabV3PlusHead(in_channels, num_classes, in_strides=in_strides, aspp_dilations=settings.aspp_dilations,
                             aspp_channels=settings.aspp_channels, low_level_channels=settings.low_level_channels,
                             decoder_channels=settings.decoder_channels, dropout=settings.dropout)


BACKBONE_BUILDERS: dict[str, Callable[..., nn.Module]] = {"mit": _build_mit, "resnet": _build_resnet}
DECODER_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "segformer": _build_segformer, "deeplabv2": _build_deeplabv2, "deeplabv3plus": _build_deeplabv3plus,
}


def build_backbone(settings) -> nn.Module:  # type: ignore[no-untyped-def]
    """The encoder described by ``settings`` (forward -> 4 stage maps, ``out_channels``)."""
    builder = BACKBONE_BUILDERS.get(settings.type)
    if builder is None:
        raise ConfigError(f"unknown backbone type {settings.type!r}; types: {', '.join(BACKBONE_BUILDERS)}")
    return builder(settings)


def build_decoder(settings, encoder: nn.Module, num_classes: int) -> nn.Module:  # type: ignore[no-untyped-def]
    """The decoder described by ``settings`` on ``encoder``'s stage maps (``out_channels`` channels at
    ``output_strides``), with ``num_classes`` outputs."""
    builder = DECODER_BUILDERS.get(settings.type)
    if builder is None:
        raise ConfigError(f"unknown decoder type {settings.type!r}; types: {', '.join(DECODER_BUILDERS)}")
    return builder(settings, tuple(encoder.out_channels), tuple(encoder.output_strides), int(num_classes))
