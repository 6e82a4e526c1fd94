"""Load pretrained encoder weights from a local file or folder into an encoder of a declared backbone family.

The encoder's family (:data:`~scribbleseg.models.families.BACKBONES`, found by its encoder class) selects
the accepted key layouts, the ``weight_layouts`` its folder declares (e.g. NVlabs, Hugging Face and
scribbleseg files for MiT in ``models/mit/weight_key_maps.py``). A file is a plain state dict or one
wrapped in ``{"state_dict": ...}`` / ``{"model": ...}``; a Hugging Face folder with ``model.safetensors``,
preferred over ``pytorch_model.bin``, or a sharded ``model.safetensors.index.json``.

Files are read by :func:`~scribbleseg.models.weights.files.read_state_dict` (pickles only with
``torch.load(..., weights_only=True)``). Anything that does not fit (missing path, unreadable or
truncated file, other variant, partial file) raises one :class:`~scribbleseg.errors.WeightsError`
that lists the offending keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from scribbleseg.errors import WeightsError
from scribbleseg.models.declarations import BackboneFamily
from scribbleseg.models.families import BACKBONES
from scribbleseg.models.weights.files import read_state_dict
from scribbleseg.models.weights.layouts import ConvertedWeights, convert_state, detect_layout
from scribbleseg.models.weights.state_dict_check import abbreviate, compare_state_dicts


@dataclass(frozen=True)
class WeightLoadReport:
    """What :func:`load_encoder_weights` did: the file read, its layout, tensors loaded, keys ignored."""

    path: Path
    source_format: str
    loaded: int
    ignored: tuple[str, ...]

    def __str__(self) -> str:
        return (f"loaded {self.loaded} encoder tensors from {self.path} ({self.source_format} layout), "
                f"ignored {len(self.ignored)} other keys")


def _describe(encoder: nn.Module) -> str:
    """Short name of the encoder for messages, e.g. ``mit_b1`` or its stage widths and depths."""
    name = getattr(encoder, "variant_name", None)
    return name or (f"{type(encoder).__name__}(out_channels={getattr(encoder, 'out_channels', '?')}, "
                    f"depths={getattr(encoder, 'depths', '?')})")


_OPTIONAL_SUFFIX = ".num_batches_tracked"  # BatchNorm's step counter: absent from older torchvision files


def _family_of(encoder: nn.Module) -> BackboneFamily:
    for family in BACKBONES.values():
        if isinstance(encoder, family.encoder):
            return family
    known = ", ".join(f.encoder.__name__ for f in BACKBONES.values())
    raise TypeError(f"cannot load encoder weights into a {type(encoder).__name__} (supported: {known})")


def _no_layout_error(file: Path, keys: list[str], family: BackboneFamily) -> WeightsError:
    """The error for a file none of ``family``'s layouts recognises (says so if it fits another family)."""
    anchors = ", ".join(layout.anchor for layout in family.weight_layouts)
    other = ""
    for candidate in BACKBONES.values():
        found = detect_layout(keys, candidate.weight_layouts) if candidate is not family else None
        if found is not None:
            other = f" (it holds {candidate.display_name} weights in {found[0].name} layout)"
            break
    return WeightsError(f"{file} holds no {family.display_name} encoder weights{other}: no key ends in one of "
                        f"{anchors}; first keys: {abbreviate(keys)}")


def _fit_to_encoder(converted: ConvertedWeights, encoder: nn.Module, file: Path, family: BackboneFamily
                    ) -> dict[str, torch.Tensor]:
    """The complete state dict to load, or one WeightsError listing mis-shaped, missing, unexpected keys.

    Missing BatchNorm ``num_batches_tracked`` counters are not an error: the encoder's own are kept.
    """
    expected = encoder.state_dict()
    tensors = dict(converted.tensors)
    for key, value in expected.items():
        if key.endswith(_OPTIONAL_SUFFIX) and key not in tensors:
            tensors[key] = value.clone()
    mismatch = compare_state_dicts(expected, tensors, lambda key: converted.source_names.get(key, key))
    if not mismatch:
        return tensors
    if mismatch.misshaped or mismatch.unexpected:
        hint = f" (a checkpoint of another {family.display_name} variant?)"
    else:
        hint = f" (a partial file or a shallower {family.display_name} variant?)"
    raise WeightsError(f"weights in {file} ({converted.source_format} layout) do not fit encoder "
                       f"{_describe(encoder)}{hint}; {mismatch.describe()}")


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> WeightLoadReport:
    """Copy pretrained weights from ``path`` into ``encoder`` (all encoder tensors or nothing).

    ``encoder`` is an encoder of a declared family (MiT, ResNet, ...); its family selects the key layouts.
    Raises :class:`WeightsError` listing missing, unexpected and mis-shaped keys when the file does not
    fit (e.g. an MiT-B0 file for an MiT-B1 model, a ResNet-50 file for a ResNet-101); the encoder is left
    untouched in that case.
    """
    family = _family_of(encoder)
    state, file = read_state_dict(path)
    keys = list(state)
    found = detect_layout(keys, family.weight_layouts)
    if found is None:
        raise _no_layout_error(file, keys, family)
    converted = convert_state(state, *found)
    tensors = _fit_to_encoder(converted, encoder, file, family)
    with torch.no_grad():
        encoder.load_state_dict(tensors, strict=True)
    return WeightLoadReport(path=file, source_format=converted.source_format, loaded=len(converted.tensors),
                            ignored=tuple(converted.ignored))
