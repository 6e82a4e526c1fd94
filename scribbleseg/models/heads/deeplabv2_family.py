"""The DeepLabV2 decoder's declaration: its settings (section ``model.decoder``, ``type: deeplabv2``) and builder, in
:data:`DEEPLABV2` (listed in :mod:`scribbleseg.models.families`)."""

from __future__ import annotations

from typing import Any, Literal, Sequence

from pydantic import Field

from scribbleseg.models.declarations import DecoderFamily
from scribbleseg.models.heads.deeplabv2 import DeepLabV2Head
from scribbleseg.models.settings_base import StrictSettings


class DeepLabV2Decoder(StrictSettings):
    """DeepLabV2's ASPP: four dilated 3x3 classifiers on C5, summed (``F`` = C5)."""

    section = "model.decoder"

    type: Literal["deeplabv2"] = "deeplabv2"
    dilations: tuple[int, ...] = Field((6, 12, 18, 24), min_length=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="channel dropout on F (C5)")

    def architecture(self) -> dict[str, Any]:
        """What shapes the weights: the classifier dilations."""
        return {"type": self.type, "dilations": list(self.dilations)}


def _build_deeplabv2(settings: DeepLabV2Decoder, in_channels: Sequence[int], in_strides: Sequence[int],
                     num_classes: int) -> DeepLabV2Head:
    return DeepLabV2Head(in_channels, num_classes, in_strides=in_strides, dilations=settings.dilations,
                         dropout=settings.dropout)


DEEPLABV2 = DecoderFamily(DeepLabV2Decoder, _build_deeplabv2)
