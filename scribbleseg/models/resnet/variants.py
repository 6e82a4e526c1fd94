"""Depths of the bottleneck ResNet variants ResNet-50 and ResNet-101 (He et al., 2016, Tab. 1).

Both use a 64-channel stem and bottleneck widths 64, 128, 256, 512 (outputs 4x wider: 256 ... 2048);
they differ only in how many bottleneck blocks each of the 4 stages holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from scribbleseg.errors import ConfigError


@dataclass(frozen=True)
class ResNetVariant:
    """Architecture of one ResNet variant: blocks per stage and the bottleneck width of stage 1."""

    name: str
    depths: tuple[int, int, int, int]
    base_width: int = 64


RESNET_VARIANTS: dict[str, ResNetVariant] = {
    "resnet50": ResNetVariant("resnet50", (3, 4, 6, 3)),
    "resnet101": ResNetVariant("resnet101", (3, 4, 23, 3)),
}


def resolve_resnet_variant(name: str) -> ResNetVariant:
    """Return the variant called ``name``; accepts ``resnet101``, ``ResNet-101`` and ``resnet_101``.

    Raises :class:`~scribbleseg.errors.ConfigError` naming the known variants for anything else.
    """
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key not in RESNET_VARIANTS:
        known = ", ".join(RESNET_VARIANTS)
        raise ConfigError(f"unknown backbone {name!r}; choose one of: {known}")
    return RESNET_VARIANTS[key]
