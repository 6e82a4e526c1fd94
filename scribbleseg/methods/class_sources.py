"""Where the classes present in an image come from at inference (appendix A.2, Tab. 4).

At training time the scribbles tell which classes an image holds; at inference the augmenters need the
same ``[N, K]`` bool mask from somewhere else. One pluggable choice, built with :func:`parse_class_source`:

* ``"oracle"``: the ground-truth class labels given by the caller (Tab. 4 "Category Labels", an upper bound).
* ``"threshold:N"``: classes with at least ``N`` pixels in the basic prediction at full image resolution
  (Tab. 4 "Prediction Map Filtering"; ``N = 500`` is the paper's best; ``"threshold"`` alone means 500).
* ``"file:PATH"``: a JSON object mapping image name (with or without extension) to a list of class ids or
  class names, e.g. the output of an external multi-label classifier (Tab. 4 Q2L / MCAR rows).
* ``"none"``: no class information, so no prototype augmentation (Tab. 4 "Without Augmented").

The background class (index 0) is always present for every source except ``none``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from scribbleseg.errors import ConfigError, DataError
from scribbleseg.methods.contract import Evidence
from scribbleseg.methods.logit_resizing import upsample_logits

DEFAULT_MIN_PIXELS = 500


class ClassSource(ABC):
    """Turns the basic prediction (and whatever the caller knows) into a present-class mask."""

    background_index: int = 0

    needs_ground_truth: bool = False

    @abstractmethod
    def classes(
        self,
        evidence: Evidence,
        image_size: tuple[int, int],
        names: Sequence[str] | None = None,
        given: Tensor | None = None,
    ) -> Tensor | None:
        """``[N, K]`` bool present classes, or ``None`` for "do not augment".

        Args:
            evidence: the basic pass: ``basic [N, K, h, w]`` logits (and the image classifier's logits).
            image_size: ``(H, W)`` of the input images (full resolution).
            names: image names of the batch (needed by the file source).
            given: ``[N, K]`` bool ground-truth classes (needed by the oracle source).
        """

    def _with_background(self, present: Tensor) -> Tensor:
        present = present.clone()
        present[:, self.background_index] = True
        return present


class OracleClassSource(ClassSource):
    """Ground-truth class labels passed in as ``given``."""

    needs_ground_truth = True

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        basic_logits = evidence.basic
        if given is None:
            raise ConfigError("class source 'oracle' needs ground-truth class labels, but none were given")
        if given.shape != basic_logits.shape[:2]:
            raise ValueError(f"given classes must be {tuple(basic_logits.shape[:2])}, got {tuple(given.shape)}")
        return self._with_background(given.to(device=basic_logits.device, dtype=torch.bool))


class PredictionThresholdClassSource(ClassSource):
    """Classes with at least ``min_pixels`` argmax pixels of the basic prediction at full resolution
    (``evidence.pixel_counts`` when given, else counted on ``evidence.basic`` upsampled to the image)."""

    def __init__(self, min_pixels: int = DEFAULT_MIN_PIXELS) -> None:
        if min_pixels < 0:
            raise ConfigError(f"class source threshold must be >= 0 pixels, got {min_pixels}")
        self.min_pixels = min_pixels

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        if evidence.pixel_counts is not None:  # counted by the caller at full resolution
            return self._with_background(evidence.pixel_counts.to(evidence.basic.device) >= self.min_pixels)
        basic_logits = evidence.basic
        batch, num_classes = basic_logits.shape[:2]
        labels = upsample_logits(basic_logits.detach().float(), tuple(image_size)).argmax(1).flatten(1)
        counts = torch.zeros(batch, num_classes, dtype=torch.long, device=labels.device)
        counts.scatter_add_(1, labels, torch.ones_like(labels))
        return self._with_background(counts >= self.min_pixels)


class FileClassSource(ClassSource):
    """Per-image class lists from a JSON file ``{"image name": [id or class name, ...], ...}``."""

    def __init__(self, path: str | Path, class_names: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"class source file not found: {self.path}")
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"class source file {self.path} is not valid JSON: {error}") from error
        if not isinstance(raw, dict):
            raise ConfigError(f"class source file {self.path} must hold a JSON object image name -> class list")
        self.class_names = list(class_names) if class_names is not None else None
        self.entries: dict[str, list[int | str]] = {}
        for name, items in raw.items():
            if not isinstance(items, list) or not all(isinstance(i, (int, str)) for i in items):
                raise ConfigError(f"class source file {self.path}: entry {name!r} must be a list of ids or names")
            self.entries[str(name)] = items
            if self.class_names is not None:
                self._resolve(name, len(self.class_names))

    def _resolve(self, name: str, num_classes: int) -> list[int]:
        ids = []
        for item in self.entries[name]:
            if isinstance(item, str) and not item.lstrip("-").isdigit():
                if self.class_names is None or item not in self.class_names:
                    known = "no class names were given" if self.class_names is None else f"known: {self.class_names}"
                    raise ConfigError(f"class source file {self.path}: image {name!r} names unknown class {item!r} ({known})")
                ids.append(self.class_names.index(item))
                continue
            index = int(item)
            if not 0 <= index < num_classes:
                raise ConfigError(f"class source file {self.path}: image {name!r} has class id {index} outside [0, {num_classes})")
            ids.append(index)
        return ids

    def _lookup(self, name: str) -> str:
        if name in self.entries:
            return name
        stem = Path(name).stem
        if stem in self.entries:
            return stem
        for key in self.entries:
            if Path(key).stem == stem:
                return key
        raise DataError(f"class source file {self.path} has no entry for image {name!r}")

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        basic_logits = evidence.basic
        batch, num_classes = basic_logits.shape[:2]
        if names is None or len(names) != batch:
            raise ValueError(f"class source 'file' needs the {batch} image names of the batch")
        present = torch.zeros(batch, num_classes, dtype=torch.bool)
        rows = [self._resolve(self._lookup(name), num_classes) for name in names]
        for row, ids in enumerate(rows):
            present[row, ids] = True
        return self._with_background(present.to(basic_logits.device))


class NoClassSource(ClassSource):
    """No class information: predictions are not augmented."""

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        return None


def parse_class_source(spec: str, class_names: Sequence[str] | None = None) -> ClassSource:
    """Build a source from ``"oracle" | "threshold[:N]" | "file:PATH" | "none"`` (ConfigError otherwise)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"class source must be 'oracle', 'threshold:N', 'file:PATH' or 'none', got {spec!r}")
    kind, _, argument = spec.strip().partition(":")
    kind = kind.lower()
    if kind == "oracle" and not argument:
        return OracleClassSource()
    if kind == "none" and not argument:
        return NoClassSource()
    if kind == "threshold":
        if not argument:
            return PredictionThresholdClassSource()
        try:
            return PredictionThresholdClassSource(int(argument))
        except ValueError:
            raise ConfigError(f"class source {spec!r}: threshold must be a whole number of pixels") from None
    if kind == "file":
        if not argument:
            raise ConfigError(f"class source {spec!r}: give the JSON path as 'file:PATH'")
        return FileClassSource(argument, class_names)
    raise ConfigError(f"class source must be 'oracle', 'threshold:N', 'file:PATH' or 'none', got {spec!r}")
