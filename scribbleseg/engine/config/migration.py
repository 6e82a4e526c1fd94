"""Configs stored by older scribbleseg versions, brought to today's schema before validation.

Format 1 (scribbleseg 0.1) had a flat ``model`` section (``backbone: mit_b1`` or ``custom`` + ``dims``,
``strides``, ``drop_path``, ``embed_dim``, ``dropout``) and no ``method`` (every model was a PFA model,
the baseline being PFA with ``use_local = use_global = false``).
"""

from __future__ import annotations

import copy
from typing import Any

LEGACY_MODEL_KEYS = ("dims", "strides", "drop_path", "embed_dim", "dropout")


def migrate_format_1(raw: dict[str, Any]) -> dict[str, Any]:
    """A format-1 config mapping in today's layout (the input is not modified)."""
    config = copy.deepcopy(raw)
    config.setdefault("method", "pfa")
    model = config.get("model")
    if not isinstance(model, dict) or not (isinstance(model.get("backbone"), str)
                                           or any(key in model for key in LEGACY_MODEL_KEYS)):
        return config
    name = model.pop("backbone", "mit_b1")
    dims = model.pop("dims", None)
    backbone: dict[str, Any] = {"type": "mit", "name": None if dims else name, "dims": dims}
    for key in ("strides", "drop_path"):
        if key in model:
            backbone[key] = model.pop(key)
    decoder: dict[str, Any] = {"type": "segformer"}
    for key in ("embed_dim", "dropout"):
        if key in model:
            decoder[key] = model.pop(key)
    model["backbone"], model["decoder"] = backbone, decoder
    return config
