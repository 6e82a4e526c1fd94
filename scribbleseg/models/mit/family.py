"""The MiT family's declaration: its settings (section ``model.backbone``, ``type: mit``), builder and weight
layouts, in :data:`MIT` (listed in :mod:`scribbleseg.models.families`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from scribbleseg.errors import ConfigError
from scribbleseg.models.declarations import BackboneFamily
from scribbleseg.models.mit.mix_transformer import MixTransformer
from scribbleseg.models.mit.variants import resolve_variant
from scribbleseg.models.mit.weight_key_maps import MIT_LAYOUTS
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


def _build_mit(settings: MiTBackbone) -> MixTransformer:
    if settings.dims is not None:
        dims = settings.dims
        return MixTransformer(embed_dims=dims.embed_dims, depths=dims.depths, num_heads=dims.num_heads,
                              mlp_ratios=dims.mlp_ratios, sr_ratios=dims.sr_ratios, strides=settings.strides,
                              drop_path_rate=settings.drop_path)
    return MixTransformer.from_name(settings.name, strides=settings.strides, drop_path_rate=settings.drop_path)


MIT = BackboneFamily(MiTBackbone, _build_mit, MixTransformer, "MiT", MIT_LAYOUTS)
