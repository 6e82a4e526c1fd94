"""The network settings unions: ``model.backbone`` and ``model.decoder`` sections, discriminated by ``type``.

The members are the settings classes of the declared families (:mod:`scribbleseg.models.families`; each
class lives in its family's folder and states its :meth:`architecture`: the fields that shape the weights,
what a checkpoint must match, leaving out training-only knobs such as dropout). A section without a
``type`` is the table's first family. :mod:`scribbleseg.models.network_builders` turns them into modules.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

from scribbleseg.models.families import BACKBONES, DECODERS


def _type_or(default: str):  # type: ignore[no-untyped-def]
    """Discriminator: a section's ``type`` (``default`` when the YAML leaves it out)."""
    def pick(value: Any) -> str:
        found = value.get("type", default) if isinstance(value, dict) else getattr(value, "type", default)
        return found if isinstance(found, str) else default
    return pick


def _union(families: dict[str, Any]) -> Any:
    """``Annotated[Union[Annotated[Settings, Tag(type)], ...], Discriminator(type, first by default)]``."""
    members = tuple(Annotated[family.settings, Tag(name)] for name, family in families.items())
    return Annotated[Union[members], Discriminator(_type_or(next(iter(families))))]  # type: ignore[valid-type]


BackboneSettings = _union(BACKBONES)
DecoderSettings = _union(DECODERS)
DEFAULT_BACKBONE = next(iter(BACKBONES.values())).settings
DEFAULT_DECODER = next(iter(DECODERS.values())).settings
