"""``train.compile``: compile a method's network parts with ``torch.compile``, or fall back to eager.

What gets compiled (in place, so parameter names, state dicts, checkpoints and DDP are unchanged):

* the encoder's ``forward`` (``nn.Module.compile``);
* the decoder's ``fuse`` (features ``F``; every decoder has it by the method contract);
* every submodule that lists method names in a ``compile_methods`` attribute (a method declares its
  own compilable parts that way, e.g. PFA's augmenters, and its prototype bank where the update is
  sync-free), so the engine needs no knowledge of a method's internals.

Before compiling anything, the backend is tried on a two-op function on the training device. If that
fails (no C++ compiler for inductor on the CPU, no Triton for CUDA, ...), training runs eagerly and
one warning says why; an unknown backend name is a ``ConfigError``. Failures of the real parts later
are not masked: they are bugs to see, and ``train.compile: false`` turns compilation off.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from scribbleseg.engine.config.schema import TrainConfig
from scribbleseg.errors import ConfigError

COMPILE_METHODS_ATTRIBUTE = "compile_methods"


@dataclass
class CompileReport:
    """What :func:`compile_method_parts` did.

    Attributes:
        compiled: names of the compiled parts (``encoder``, ``head.fuse``, ``augmenters.local.embed``, ...).
        fallback: why nothing was compiled (the backend failed its probe), or ``None``.
    """

    compiled: list[str] = field(default_factory=list)
    fallback: str | None = None


def compile_for_training(method: nn.Module, train_cfg: TrainConfig, device: torch.device) -> CompileReport | None:
    """:func:`compile_method_parts` with the ``train.compile*`` settings; ``None`` when compilation is off."""
    if not train_cfg.compile:
        return None
    return compile_method_parts(method, device, train_cfg.compile_backend, train_cfg.compile_mode)


def compile_method_parts(method: nn.Module, device: torch.device, backend: str = "inductor",
                         mode: str | None = None) -> CompileReport:
    """Compile ``method.encoder``, ``method.head.fuse`` and declared ``compile_methods`` (module docstring).

    Args:
        method: a :class:`~scribbleseg.methods.SegmentationMethod` already on ``device``.
        device: where training runs (the backend is probed there).
        backend / mode: as ``torch.compile`` (``mode`` ``None`` = the backend's default).
    """
    report = CompileReport()
    reason = backend_failure(backend, mode, device)
    if reason is not None:
        report.fallback = reason
        warnings.warn(f"train.compile: backend {backend!r} is unavailable on {device} ({reason}); "
                      "training runs eagerly", RuntimeWarning, stacklevel=2)
        return report
    options: dict[str, Any] = {"backend": backend, "mode": mode}
    encoder = getattr(method, "encoder", None)
    if isinstance(encoder, nn.Module):
        encoder.compile(**options)
        report.compiled.append("encoder")
    head = getattr(method, "head", None)
    if isinstance(head, nn.Module) and callable(getattr(head, "fuse", None)):
        head.fuse = torch.compile(head.fuse, **options)  # type: ignore[method-assign]
        report.compiled.append("head.fuse")
    for name, module in method.named_modules():
        for method_name in getattr(module, COMPILE_METHODS_ATTRIBUTE, ()):
            setattr(module, method_name, torch.compile(getattr(module, method_name), **options))
            report.compiled.append(f"{name}.{method_name}" if name else method_name)
    return report


def backend_failure(backend: str, mode: str | None, device: torch.device) -> str | None:
    """Why ``backend`` cannot compile and run a tiny function on ``device``, or ``None`` when it can.

    Raises ConfigError for a backend name ``torch.compile`` does not know.
    """
    try:
        probe: Callable[[torch.Tensor], torch.Tensor] = torch.compile(_probe, backend=backend, mode=mode)
    except Exception as err:  # InvalidBackend, or a mode the backend rejects
        raise ConfigError(f"train.compile_backend / train.compile_mode: {err}") from err
    try:
        value = probe(torch.arange(4.0, device=device))
        ok = bool(torch.equal(value.cpu(), torch.tensor([1.0, 3.0, 5.0, 7.0])))
    except Exception as err:  # the backend's compiler or runtime is missing or broken
        return _describe(err)
    return None if ok else "the probe function returned a wrong value"


def _describe(err: BaseException) -> str:
    """``Type: first line`` of the innermost cause of ``err`` (the backend's own error, not dynamo's wrapper)."""
    while True:
        inner = getattr(err, "inner_exception", None) or err.__cause__  # dynamo wraps backend errors
        if not isinstance(inner, BaseException):
            break
        err = inner
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200] if lines else ''}"


def _probe(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + 1
