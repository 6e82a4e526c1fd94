"""The DeepLabV3+ decoder's declaration: its settings (section ``model.decoder``, ``type: deeplabv3plus``) and builder, in
:data:`DEEPLABV3PLUS` (listed in :mod:`scribbleseg.models.families`)."""

from __future__ import annotations

from typing import Any, Literal, Sequence

from pydantic import Field

from scribbleseg.models.declarations import DecoderFamily
from scribbleseg.models.heads.deeplabv3plus import DeepLabV3PlusHead
from scribbleseg.models.settings_base import StrictSettings


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


def _build_deeplabv3plus(settings: DeepLabV3PlusDecoder, in_channels: Sequence[int], in_strides: Sequence[int],
                         num_classes: int) -> DeepLabV3PlusHead:
    return DeepLabV3PlusHead(in_channels, num_classes, in_strides=in_strides, aspp_dilations=settings.aspp_dilations,
                             aspp_channels=settings.aspp_channels, low_level_channels=settings.low_level_channels,
                             decoder_channels=settings.decoder_channels, dropout=settings.dropout)


DEEPLABV3PLUS = DecoderFamily(DeepLabV3PlusDecoder, _build_deeplabv3plus)
