"""The one device resolver of the engine (training, evaluation, prediction, the CLI)."""

from __future__ import annotations

import torch

from scribbleseg.errors import ConfigError


def resolve_device(spec: str | torch.device, local_rank: int | None = None, what: str = "--device") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cpu``, ``cuda``, ``cuda:N`` as given.

    ``local_rank`` (a ``torchrun`` process) picks the GPU of an unnumbered ``cuda`` / ``auto``. Raises
    :class:`ConfigError` naming ``what`` (the option or config key) for an unknown name or a CUDA device
    that is not there.
    """
    if isinstance(spec, torch.device):
        return spec
    text = str(spec).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"{what} must be auto, cpu, cuda or cuda:N, got {spec!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{what} must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{what} {spec!r} asks for CUDA but no CUDA device is available (use auto or cpu)")
        if device.index is None and local_rank is not None:
            device = torch.device("cuda", local_rank)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{what} {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return device
