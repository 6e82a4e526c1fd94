"""Key layouts of pretrained-weight files and their translation into scribbleseg's parameter names.

A :class:`KeyLayout` describes one way a checkpoint names an encoder's tensors (NVlabs MiT, Hugging
Face, torchvision ResNet, ours ...): an *anchor* key every such file holds, a regex telling which keys
belong to the encoder, and renaming rules. Whatever precedes the anchor in a file (``""``,
``"segformer."``, ``"resnet."``, ``"backbone."``, ``"encoder."`` ...) is taken as the prefix of all its
encoder keys. The encoder-family tables live in :mod:`~scribbleseg.models.mit.weight_key_maps` (MiT) and
:mod:`~scribbleseg.models.resnet.weight_key_maps` (ResNet).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

# (regex on the stripped key, replacement template): ``{}`` in the template is the stage number of
# the regex's first group (made 0-based for one-based layouts), ``\\2`` etc. are ordinary back-references.
RenameRules = tuple[tuple[str, str], ...]


@dataclass
class ConvertedWeights:
    """Encoder tensors of a file under our names plus bookkeeping (see :func:`convert_state`)."""

    source_format: str
    prefix: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    source_names: dict[str, str] = field(default_factory=dict)  # our name -> name in the file
    ignored: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KeyLayout:
    """One checkpoint naming scheme of an encoder family.

    ``rules`` rename stripped keys (first match wins; keys matching no rule keep their name, so the
    loader reports them as unexpected); empty rules mean the file already uses our names. ``finish``
    may post-process the converted tensors (e.g. merge Hugging Face's separate key/value matrices).
    """

    name: str
    anchor: str
    member: str
    rules: RenameRules = ()
    one_based: bool = False
    finish: Callable[[ConvertedWeights], None] | None = None


def detect_layout(keys: Sequence[str], layouts: Sequence[KeyLayout]) -> tuple[KeyLayout, str] | None:
    """Return ``(layout, prefix)`` of the first layout whose anchor ends one of ``keys``, else None."""
    for layout in layouts:
        for key in keys:
            if key.endswith(layout.anchor):
                prefix = key[: len(key) - len(layout.anchor)]
                if prefix == "" or prefix.endswith("."):
                    return layout, prefix
    return None


def rename(key: str, rules: RenameRules, one_based: bool) -> str:
    """Rename one key with the first matching rule (see :data:`RenameRules`); unchanged if none matches."""
    for pattern, template in rules:
        match = re.match(pattern, key)
        if match:
            stage = int(match.group(1)) - (1 if one_based else 0) if match.groups() else None
            return re.sub(pattern, template.format(stage), key, count=1)
    return key


def convert_state(state: dict[str, torch.Tensor], layout: KeyLayout, prefix: str) -> ConvertedWeights:
    """Rename the encoder tensors of ``state`` (``layout`` and ``prefix`` from :func:`detect_layout`).

    Keys outside the encoder (classifier, decode head, prototype bank ...) go to ``ignored``.
    """
    converted = ConvertedWeights(source_format=layout.name, prefix=prefix)
    for key, tensor in state.items():
        stripped = key[len(prefix):] if key.startswith(prefix) else None
        if stripped is None or not re.match(layout.member, stripped):
            converted.ignored.append(key)
            continue
        ours = rename(stripped, layout.rules, layout.one_based)
        converted.tensors[ours] = tensor
        converted.source_names[ours] = key
    if layout.finish is not None:
        layout.finish(converted)
    return converted
