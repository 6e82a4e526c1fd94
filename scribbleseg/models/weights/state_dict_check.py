"""The one key-mismatch reporter: what is missing, unexpected or mis-shaped between two state dicts.

Used for pretrained encoder weights (:mod:`scribbleseg.models.weights.loading`) and for the engine's
checkpoints, so both say the same thing the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from torch import Tensor

LIST_LIMIT = 6


def abbreviate(items: list[str], limit: int = LIST_LIMIT) -> str:
    """The first ``limit`` items joined, then ``(+N more)``."""
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


@dataclass
class StateDictMismatch:
    """Keys of ``given`` that do not fit ``expected`` (each list in the expected / given order)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    misshaped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.misshaped)

    def describe(self) -> str:
        """``"2 mis-shaped: a (file [3] vs model [4]); 1 missing: b"`` (empty when nothing differs)."""
        parts = []
        if self.misshaped:
            parts.append(f"{len(self.misshaped)} mis-shaped: {abbreviate(self.misshaped)}")
        if self.missing:
            parts.append(f"{len(self.missing)} missing: {abbreviate(self.missing)}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected: {abbreviate(self.unexpected)}")
        return "; ".join(parts)


def compare_state_dicts(expected: Mapping[str, Tensor], given: Mapping[str, Tensor],
                        source_name: Callable[[str], str] = str) -> StateDictMismatch:
    """Compare ``given`` (e.g. a file's tensors, in the model's names) with the model's ``expected``.

    ``source_name`` maps a key of ``given`` to the name shown to the user (e.g. its name in the file).
    """
    return StateDictMismatch(
        missing=[key for key in expected if key not in given],
        unexpected=[source_name(key) for key in given if key not in expected],
        misshaped=[f"{source_name(key)} (file {list(given[key].shape)} vs model {list(value.shape)})"
                   for key, value in expected.items() if key in given and given[key].shape != value.shape],
    )


def describe_mismatch(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> str:
    """:meth:`StateDictMismatch.describe` of :func:`compare_state_dicts` (empty when they fit)."""
    return compare_state_dicts(expected, given).describe()
