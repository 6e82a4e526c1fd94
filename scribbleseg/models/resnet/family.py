"""The ResNet family's declaration: its settings (section ``model.backbone``, ``type: resnet``), builder and
weight layouts, in :data:`RESNET` (listed in :mod:`scribbleseg.models.families`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from scribbleseg.errors import ConfigError
from scribbleseg.models.declarations import BackboneFamily
from scribbleseg.models.resnet.encoder import ResNet
from scribbleseg.models.resnet.variants import resolve_resnet_variant
from scribbleseg.models.resnet.weight_key_maps import RESNET_LAYOUTS
from scribbleseg.models.settings_base import StrictSettings

Four = tuple[int, int, int, int]


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


def _build_resnet(settings: ResNetBackbone) -> ResNet:
    if settings.dims is not None:
        dims = settings.dims
        return ResNet(depths=dims.depths, base_width=dims.base_width, stem_channels=dims.stem_channels,
                      output_stride=settings.output_stride)
    return ResNet.from_name(settings.name, output_stride=settings.output_stride)


RESNET = BackboneFamily(ResNetBackbone, _build_resnet, ResNet, "ResNet", RESNET_LAYOUTS)
