"""What a conversion or import did: the report every converter returns and the CLI prints.

The contract shared by ``convert-scribblesup``, ``import-cvat`` and ``import-labelstudio``: whatever
can be converted is written; problems that only lose part of an annotation (an unknown label, a
point outside the image, an unsupported shape) are ``warnings``; items that could not be written
at all (an unreadable file, a missing image) are ``failed`` and make the command exit with code 2
after the others are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ConversionReport:
    """Outcome of a folder conversion: files written, warnings, files that could not be converted."""

    converted: int = 0
    warnings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
