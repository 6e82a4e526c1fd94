"""Validated settings of every backbone and decoder, one class per kind, keyed by ``type``.

The engine's config embeds them as the ``model.backbone`` and ``model.decoder`` sections (discriminated
by ``type``) and :mod:`scribbleseg.models.network_builders` turns them into modules. Each class also
states its :meth:`architecture`: the fields that shape the weights (what a checkpoint must match),
leaving out training-only knobs such as dropout.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, model_validator

from scribbleseg.errors import ConfigError
from scribbleseg.models.mit.variants import resolve_variant
from scribbleseg.models.resnet.variants import resolve_resnet_variant
from scribbleseg.models.settings_base import StrictSettings

Four = tuple[int, int, int, int]


class MiTDims(StrictSettings):
    """An explicit Mix Transformer shape (tiny test / demo models instead of a named mit_b*)."""

    section = "model.backbone.dims"

    embed_dims: Four = (16, 32, 64, 128)
    depths: Four = (1, 1, 1, 1)
    num_heads: Four = (1, 2, 4, 8)
    mlp_ratios: Four = (4, 4, 4, 4)
    sr_ratios: Four = (8, 4, 2, 1)


class MiTBackbone(StrictSettings):
    """Mix Transformer encoder: a named variant (``mit_b0`` ... ``mit_b5``) or explicit ``dims``."""

    section = "model.backbone"

    type: Literal["mit"] = "mit"
    name: str | None = Field("mit_b1", description="mit_b0 ... mit_b5; null when dims are given")
    dims: MiTDims | None = None
    strides: Four = Field((4, 2, 2, 2), description="per-stage patch-embedding strides; the PFA authors' "
                                                   "code uses (4, 2, 2, 1)")
    drop_path: float = Field(0.1, ge=0.0, lt=1.0, description="stochastic depth rate (SegFormer default)")

    @model_validator(mode="after")
    def _name_or_dims(self) -> "MiTBackbone":
        if (self.name is None) == (self.dims is None):
            raise ValueError("give exactly one of name (mit_b0 ... mit_b5) and dims")
        if self.name is not None:
            try:
                resolve_variant(self.name)
            except ConfigError as err:  # pydantic reports ValueErrors with the key path
                raise ValueError(str(err)) from None
        if any(s < 1 for s in self.strides):
            raise ValueError(f"strides must be positive, got {self.strides}")
        return self

    def architecture(self) -> dict[str, Any]:
        """What shapes the weights: the variant (or dims) and the strides."""
        shape = {"name": resolve_variant(self.name).name} if self.name else {"dims": self.dims.model_dump()}
        return {"type": self.type, **shape, "strides": list(self.strides)}


class SegFormerDecoder(StrictSettings):
    """SegFormer's all-MLP decoder (features ``F`` at the stage-1 resolution)."""

    section = "model.decoder"

    type: Literal["segformer"] = "segformer"
    embed_dim: int = Field(256, ge=1, description="decoder width E (256 for B0/B1 as in the PFA paper)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="channel dropout on F (SegFormer default)")
    init: Literal["segformer", "torch_default"] = Field(
        "segformer", description="projections and classifier initialised the SegFormer way (normal, zero biases), "
                                 "or left at PyTorch's default (uniform, biases too: the released PFA code)")

    def architecture(self) -> dict[str, Any]:
        """What shapes the weights: the decoder width."""
        return {"type": self.type, "embed_dim": self.embed_dim}


class ResNetDims(StrictSettings):
    """An explicit bottleneck ResNet shape (tiny test / demo models instead of resnet50 / resnet101)."""

    section = "model.backbone.dims"

    depths: Four = (1, 1, 1, 1)
    base_width: int = Field(8, ge=1, description="width of stage 1 (64 for ResNet-50/101)")
    stem_channels: int | None = Field(None, ge=1, description="stem width (default: base_width)")


class ResNetBackbone(StrictSettings):
    """Bottleneck ResNet v1.5 encoder (``resnet50`` / ``resnet101`` or explicit ``dims``), dilated for
    output stride 8 or 16 (DeepLab)."""

    section = "model.backbone"

    type: Literal["resnet"] = "resnet"
    name: str | None = Field("resnet101", description="resnet50 | resnet101; null when dims are given")
    dims: ResNetDims | None = None
    output_stride: Literal[8, 16, 32] = Field(8, description="stride of C5: 8 (DeepLabV2), 16 or 8 (V3+)")

    @model_validator(mode="after")
    def _name_or_dims(self) -> "ResNetBackbone":
        if (self.name is None) == (self.dims is None):
            raise ValueError("give exactly one of name (resnet50, resnet101) and dims")
        if self.name is not None:
            try:
                resolve_resnet_variant(self.name)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        return self

    def architecture(self) -> dict[str, Any]:
        """What shapes the model: the variant (or dims) and the output stride."""
        shape = ({"name": resolve_resnet_variant(self.name).name} if self.name
                 else {"dims": self.dims.model_dump()})
        return {"type": self.type, **shape, "output_stride": self.output_stride}


class DeepLabV2Decoder(StrictSettings):
    """DeepLabV2's ASPP: four dilated 3x3 classifiers on C5, summed (``F`` = C5)."""

    section = "model.decoder"

    type: Literal["deeplabv2"] = "deeplabv2"
    dilations: tuple[int, ...] = Field((6, 12, 18, 24), min_length=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="channel dropout on F (C5)")

    def architecture(self) -> dict[str, Any]:
        """What shapes the weights: the classifier dilations."""
        return {"type": self.type, "dilations": list(self.dilations)}


class DeepLabV3PlusDecoder(StrictSettings):
    """DeepLabV3+: ASPP with image pooling on C5, low-level C2 branch, two 3x3 convolutions (``F``)."""

    section = "model.decoder"

    type: Literal["deeplabv3plus"] = "deeplabv3plus"
    aspp_dilations: tuple[int, int, int] | None = Field(
        None, description="default (6, 12, 18) at output stride 16, (12, 24, 36) at 8")
    aspp_channels: int = Field(256, ge=1)
    low_level_channels: int = Field(48, ge=1)
    decoder_channels: int = Field(256, ge=1, description="channels of F")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout after the ASPP projection")

    def architecture(self) -> dict[str, Any]:
        """What shapes the weights: the widths (and the dilations when set)."""
        return {"type": self.type, "aspp_channels": self.aspp_channels,
                "low_level_channels": self.low_level_channels, "decoder_channels": self.decoder_channels,
                "aspp_dilations": list(self.aspp_dilations) if self.aspp_dilations else None}


def _type_or(default: str):  # type: ignore[no-untyped-def]
    """Discriminator: a section's ``type`` (``default`` when the YAML leaves it out)."""
    def pick(value: Any) -> str:
        found = value.get("type", default) if isinstance(value, dict) else getattr(value, "type", default)
        return found if isinstance(found, str) else default
    return pick


BackboneSettings = Annotated[
    Union[Annotated[MiTBackbone, Tag("mit")], Annotated[ResNetBackbone, Tag("resnet")]],
    Discriminator(_type_or("mit")),
]
DecoderSettings = Annotated[
    Union[Annotated[SegFormerDecoder, Tag("segformer")], Annotated[DeepLabV2Decoder, Tag("deeplabv2")],
          Annotated[DeepLabV3PlusDecoder, Tag("deeplabv3plus")]],
    Discriminator(_type_or("segformer")),
]
