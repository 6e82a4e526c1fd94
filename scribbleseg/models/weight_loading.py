"""Load pretrained MiT encoder weights from a local file or folder into a :class:`MixTransformer`.

A Hugging Face Hub id (``nvidia/mit-b1``) is first turned into its cached snapshot folder, downloading
it if needed (:func:`scribbleseg.models.hub_weights.resolve_weights_path`; an existing path always wins).

Accepted (see :mod:`scribbleseg.models.weight_key_maps` for the key layouts):

* NVlabs ImageNet files ``mit_b*.pth`` (plain state dict or wrapped in ``{"state_dict": ...}`` /
  ``{"model": ...}``);
* a Hugging Face ``nvidia/mit-b*`` folder (``model.safetensors`` preferred over ``pytorch_model.bin``;
  a sharded ``model.safetensors.index.json`` also works) or one of those files;
* scribbleseg safetensors (our names, possibly under a prefix such as ``encoder.``).

Pickle-based files are read only with ``torch.load(..., weights_only=True)``. Anything that does not
fit (missing path, unreadable or truncated file, other variant, partial file) raises one
:class:`~scribbleseg.errors.WeightsError` that lists the offending keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from scribbleseg.errors import WeightsError
from scribbleseg.models.hub_weights import resolve_weights_path
from scribbleseg.models.weight_key_maps import LAYOUTS, convert_to_scribbleseg, detect_layout

_HF_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_LIST_LIMIT = 6


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


def _resolve_file(path: Path) -> Path:
    """Return the weight file for ``path``; a folder must hold one of the Hugging Face file names."""
    if not path.exists():
        raise WeightsError(f"weight file not found: {path}")
    if path.is_dir():
        for name in _HF_FILES:
            if (path / name).is_file():
                return path / name
        raise WeightsError(f"folder {path} holds none of {', '.join(_HF_FILES)}")
    return path


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Read all tensors of one safetensors file, or of every shard named by an ``.index.json``."""
    from safetensors.torch import load_file

    if path.name.endswith(".index.json"):
        weight_map = json.loads(path.read_text())["weight_map"]
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            state.update(load_file(str(path.parent / shard)))
        return state
    return load_file(str(path))


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Return the tensor dict inside a loaded pickle (``state_dict`` / ``model`` wrappers allowed)."""
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{path} holds no tensors")
    return tensors


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], Path]:
    """Read every tensor of a weight file / HF folder / Hub id on the CPU; returns ``(tensors, file read)``.

    Raises :class:`WeightsError` naming the path when it is missing, unreadable or truncated.
    """
    file = _resolve_file(resolve_weights_path(path))
    try:
        if file.suffix == ".safetensors" or file.name.endswith(".index.json"):
            state = _read_safetensors(file)
        else:
            state = _unwrap(torch.load(file, map_location="cpu", weights_only=True), file)
    except WeightsError:
        raise
    except Exception as err:  # any reader failure on a user file is a bad-file error, not a bug
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"cannot read weight file {file} (corrupt, truncated or not a weight file): "
                           f"{reason}") from err
    if not state:
        raise WeightsError(f"{file} holds no tensors")
    return state, file


def _abbreviate(items: list[str]) -> str:
    """Join the first few items, then ``(+N more)``."""
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f" (+{len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else "")


def _describe(encoder: nn.Module) -> str:
    """Short name of the encoder for messages, e.g. ``mit_b1`` or its stage widths."""
    name = getattr(encoder, "variant_name", None)
    return name or f"MixTransformer(embed_dims={getattr(encoder, 'embed_dims', '?')}, depths={getattr(encoder, 'depths', '?')})"


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> WeightLoadReport:
    """Copy pretrained MiT weights from ``path`` (a file, folder or Hub id) into ``encoder`` (all or nothing).

    Raises :class:`WeightsError` listing missing, unexpected and mis-shaped keys when the file does
    not fit (e.g. an MiT-B0 file for an MiT-B1 model); the encoder is left untouched in that case.
    """
    state, file = read_state_dict(path)
    keys = list(state)
    layout = detect_layout(keys)
    if layout is None:
        anchors = ", ".join(anchor for _, anchor, _ in LAYOUTS)
        raise WeightsError(f"{file} holds no MiT encoder weights: no key ends in one of {anchors}; "
                           f"first keys: {_abbreviate(keys)}")
    converted = convert_to_scribbleseg(state, layout)

    expected = encoder.state_dict()
    missing = [k for k in expected if k not in converted.tensors]
    unexpected = [converted.source_names[k] for k in converted.tensors if k not in expected]
    mis_shaped = [  # in the model's order: stage 1 first
        f"{converted.source_names[k]} (file {list(converted.tensors[k].shape)} vs model {list(t.shape)})"
        for k, t in expected.items() if k in converted.tensors and converted.tensors[k].shape != t.shape
    ]
    if missing or unexpected or mis_shaped:
        parts = []
        if mis_shaped:
            parts.append(f"{len(mis_shaped)} mis-shaped: {_abbreviate(mis_shaped)}")
        if missing:
            parts.append(f"{len(missing)} missing: {_abbreviate(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {_abbreviate(unexpected)}")
        hint = " (a checkpoint of another MiT variant?)" if mis_shaped or unexpected else ""
        raise WeightsError(f"weights in {file} ({converted.source_format} layout) do not fit encoder "
                           f"{_describe(encoder)}{hint}; " + "; ".join(parts))

    with torch.no_grad():
        encoder.load_state_dict(converted.tensors, strict=True)
    return WeightLoadReport(path=file, source_format=converted.source_format, loaded=len(converted.tensors),
                            ignored=tuple(converted.ignored))
