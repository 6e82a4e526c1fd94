"""Read every tensor of a local weight file or Hugging Face folder, whatever model it belongs to.

Accepted: ``.safetensors`` files, sharded ``model.safetensors.index.json``, and pickle files (``.pth``,
``.bin``, ``.pt``) holding a state dict, plain or wrapped in ``{"state_dict": ...}`` / ``{"model": ...}``;
pickles are read only with ``torch.load(..., weights_only=True)``. A folder must hold one of the
Hugging Face file names (``model.safetensors`` preferred over ``pytorch_model.bin``). A missing,
unreadable or truncated file raises one :class:`~scribbleseg.errors.WeightsError` naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from scribbleseg.errors import WeightsError
from scribbleseg.models.weights.hub import resolve_weights_path

_HF_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


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

    A Hugging Face Hub id (``nvidia/mit-b1``) is first turned into its cached snapshot folder, downloading
    it if needed (:func:`scribbleseg.models.weights.hub.resolve_weights_path`; an existing path always
    wins). Raises :class:`WeightsError` naming the path when it is missing, unreadable or truncated.
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
