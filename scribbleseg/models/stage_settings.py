"""Validation of model settings (per-stage widths, depths, strides ...) shared by every encoder and decoder.

Encoders produce 4 stage maps and decoders consume them, so each per-stage setting is a 4-tuple; a
wrong one is the user's configuration error, reported as :class:`~scribbleseg.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from scribbleseg.errors import ConfigError


def four_positive(name: str, values: Sequence[float], kind: type = int) -> tuple:
    """Return ``values`` as a tuple of 4 positive ``kind`` values; raise ConfigError naming ``name`` otherwise."""
    try:
        values = tuple(values)
        valid = len(values) == 4 and all(kind(v) == v and v > 0 for v in values)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigError(f"{name} must be 4 positive {kind.__name__}s (one per stage), got {values!r}")
    return tuple(kind(v) for v in values)


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1 (bools refused); raise ConfigError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
