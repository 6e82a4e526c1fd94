"""Hyper-parameters of the Mix Transformer variants MiT-B0 ... MiT-B5 (Xie et al., 2021, Tab. 6).

All variants share 4 stages, MLP ratio 4 and spatial-reduction ratios (8, 4, 2, 1); they differ in the
stage widths and depths. ``decoder_embed_dim`` is SegFormer's own choice for its MLP decoder (256 for
B0/B1, 768 for B2-B5); the PFA paper reports parameter counts that match 256 for every variant, which
is why :class:`~scribbleseg.models.SegFormerHead` defaults to 256.
"""

from __future__ import annotations

from dataclasses import dataclass

from scribbleseg.errors import ConfigError


@dataclass(frozen=True)
class MitVariant:
    """Architecture of one MiT variant: per-stage widths, heads, depths, MLP and reduction ratios."""

    name: str
    embed_dims: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    mlp_ratios: tuple[int, int, int, int] = (4, 4, 4, 4)
    sr_ratios: tuple[int, int, int, int] = (8, 4, 2, 1)
    decoder_embed_dim: int = 256


_WIDE = (64, 128, 320, 512)
_HEADS = (1, 2, 5, 8)

MIT_VARIANTS: dict[str, MitVariant] = {
    "mit_b0": MitVariant("mit_b0", (32, 64, 160, 256), _HEADS, (2, 2, 2, 2)),
    "mit_b1": MitVariant("mit_b1", _WIDE, _HEADS, (2, 2, 2, 2)),
    "mit_b2": MitVariant("mit_b2", _WIDE, _HEADS, (3, 4, 6, 3), decoder_embed_dim=768),
    "mit_b3": MitVariant("mit_b3", _WIDE, _HEADS, (3, 4, 18, 3), decoder_embed_dim=768),
    "mit_b4": MitVariant("mit_b4", _WIDE, _HEADS, (3, 8, 27, 3), decoder_embed_dim=768),
    "mit_b5": MitVariant("mit_b5", _WIDE, _HEADS, (3, 6, 40, 3), decoder_embed_dim=768),
}


def resolve_variant(name: str) -> MitVariant:
    """Return the variant called ``name``; accepts ``mit_b1``, ``mit-b1``, ``MiT-B1`` and ``b1``.

    Raises :class:`~scribbleseg.errors.ConfigError` naming the known variants for anything else.
    """
    key = str(name).strip().lower().replace("-", "_")
    if not key.startswith("mit_"):
        key = f"mit_{key}"
    if key not in MIT_VARIANTS:
        known = ", ".join(MIT_VARIANTS)
        raise ConfigError(f"unknown backbone {name!r}; choose one of: {known}")
    return MIT_VARIANTS[key]
