"""The SegFormer MLP decoder's declaration: its settings (section ``model.decoder``, ``type: segformer``) and builder, in
:data:`SEGFORMER` (listed in :mod:`scribbleseg.models.families`)."""

from __future__ import annotations

from typing import Any, Literal, Sequence

from pydantic import Field

from scribbleseg.models.declarations import DecoderFamily
from scribbleseg.models.heads.segformer import SegFormerHead
from scribbleseg.models.settings_base import StrictSettings


class SegFormerDecoder(StrictSettings):
    """SegFormer's all-MLP decoder (features ``F`` at the stage-1 resolution)."""

    section = "model.decoder"

    type: Literal["segformer"] = "segformer"
    embed_dim: int = Field(256, ge=1, description="decoder width E (256 for B0/B1 as in the PFA paper)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="channel dropout on F (SegFormer default)")

    def architecture(self) -> dict[str, Any]:
        """What shapes the weights: the decoder width."""
        return {"type": self.type, "embed_dim": self.embed_dim}


def _build_segformer(settings: SegFormerDecoder, in_channels: Sequence[int], in_strides: Sequence[int],
                     num_classes: int) -> SegFormerHead:
    return SegFormerHead(in_channels=in_channels, num_classes=num_classes, embed_dim=settings.embed_dim,
                         dropout=settings.dropout, in_strides=in_strides)


SEGFORMER = DecoderFamily(SegFormerDecoder, _build_segformer)
