"""One construction path for every network: backbone and decoder settings -> modules (dicts of builders).

>>> encoder = build_backbone(MiTBackbone(name="mit_b1"))
>>> head = build_decoder(SegFormerDecoder(), encoder.out_channels, num_classes=21)
>>> logits = head.classify(head.fuse(encoder(images)))       # [N, 21, H/4, W/4]

To add a backbone or decoder: a settings class in ``network_settings.py`` (with a new ``type``), a
builder here, and the class in the union of the engine's ``ModelConfig``.
"""

from __future__ import annotations

from typing import Callable, Sequence

from torch import nn

from scribbleseg.errors import ConfigError
from scribbleseg.models.mix_transformer import MixTransformer
from scribbleseg.models.network_settings import MiTBackbone, SegFormerDecoder
from scribbleseg.models.segformer_head import SegFormerHead


def _build_mit(settings: MiTBackbone) -> MixTransformer:
    if settings.dims is not None:
        dims = settings.dims
        return MixTransformer(embed_dims=dims.embed_dims, depths=dims.depths, num_heads=dims.num_heads,
                              mlp_ratios=dims.mlp_ratios, sr_ratios=dims.sr_ratios, strides=settings.strides,
                              drop_path_rate=settings.drop_path)
    return MixTransformer.from_name(settings.name, strides=settings.strides, drop_path_rate=settings.drop_path)


def _build_segformer(settings: SegFormerDecoder, in_channels: Sequence[int], num_classes: int) -> SegFormerHead:
    return SegFormerHead(in_channels=in_channels, num_classes=num_classes, embed_dim=settings.embed_dim,
                         dropout=settings.dropout)


BACKBONE_BUILDERS: dict[str, Callable[..., nn.Module]] = {"mit": _build_mit}
DECODER_BUILDERS: dict[str, Callable[..., nn.Module]] = {"segformer": _build_segformer}


def build_backbone(settings) -> nn.Module:  # type: ignore[no-untyped-def]
    """The encoder described by ``settings`` (forward -> 4 stage maps, ``out_channels``)."""
    builder = BACKBONE_BUILDERS.get(settings.type)
    if builder is None:
        raise ConfigError(f"unknown backbone type {settings.type!r}; types: {', '.join(BACKBONE_BUILDERS)}")
    return builder(settings)


def build_decoder(settings, in_channels: Sequence[int], num_classes: int) -> nn.Module:  # type: ignore[no-untyped-def]
    """The decoder described by ``settings`` on stage maps of ``in_channels`` channels, ``num_classes`` outputs."""
    builder = DECODER_BUILDERS.get(settings.type)
    if builder is None:
        raise ConfigError(f"unknown decoder type {settings.type!r}; types: {', '.join(DECODER_BUILDERS)}")
    return builder(settings, tuple(in_channels), int(num_classes))
