"""The optional ONNX packages (the ``[onnx]`` extra): imported on demand, with a clear error when missing.

Export needs ``onnx`` and ``onnxscript`` (torch's dynamo-based exporter), ONNX Runtime inference needs
``onnxruntime`` only. Nothing here is imported by the rest of the package at import time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from scribbleseg.errors import ScribblesegError

INSTALL_HINT = 'pip install "scribbleseg[onnx]"'

EXPORT_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
RUNTIME_PACKAGES = ("onnxruntime",)


class MissingExtraError(ScribblesegError):
    """An optional dependency of the asked feature is not installed (the message says how to install it)."""


def require_packages(names: tuple[str, ...], feature: str) -> dict[str, ModuleType]:
    """``{name: module}`` for ``names``; MissingExtraError naming the missing ones and the extra otherwise."""
    modules, missing = {}, []
    for name in names:
        try:
            modules[name] = importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(f"{feature} needs the optional package(s) {', '.join(missing)}: {INSTALL_HINT}")
    return modules
