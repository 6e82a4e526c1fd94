"""Where the classes present in an image come from at inference (appendix A.2, Tab. 4).

At training time the scribbles tell which classes an image holds; at inference the augmenters need the
same ``[N, K]`` bool mask from somewhere else. One pluggable choice, built with :func:`parse_class_source`:

* ``"oracle"``: the ground-truth class labels given by the caller (Tab. 4 "Category Labels", an upper bound).
* ``"head[:TAU]"``: classes whose probability from the model's own image classifier (the ``classifier``
  section, :mod:`scribbleseg.methods.image_classification`) is at least ``TAU`` (default
  :data:`DEFAULT_HEAD_THRESHOLD`); the honest built-in counterpart of Tab. 4's Q2L / MCAR rows.
* ``"threshold:N"``: classes with at least ``N`` pixels in the basic prediction at full image resolution
  (Tab. 4 "Prediction Map Filtering"; ``N = 500`` is the paper's best on VOC). ``"threshold"`` alone scales
  those 500 pixels to the image's area: 500 on a 500x375 image (the typical VOC size), 44 on a 128x128 one
  (:func:`default_min_pixels`). predict, plot and the demo all use this one default.
* ``"file:PATH"``: a JSON object mapping image name (with or without extension) to a list of class ids or
  class names, e.g. the output of an external multi-label classifier (Tab. 4 Q2L / MCAR rows).
* ``"none"``: no class information, so no prototype augmentation (Tab. 4 "Without Augmented").

The background class (index 0) is always present for every source except ``none``.
:func:`default_class_source` is what predict and plot use when no source is given: ``head`` for a model
with an image classifier, else ``threshold``.

:func:`parse_class_source` is the one place that reads a spelling: the command line and the config are
parsed once into a :class:`ClassSource`, which travels as such and knows its own ``kind`` and ``spec``
(its spelling, e.g. ``"threshold:500"``); :func:`class_source_kind` checks a spelling without building the
source (no file is read: the config schema, and ``export``'s refusal of ``file:``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from scribbleseg.errors import ConfigError, DataError
from scribbleseg.methods.contract import Evidence, SegmentationMethod
from scribbleseg.methods.logit_resizing import upsample_logits

DEFAULT_MIN_PIXELS = 500  # Tab. 4's best pixel threshold on VOC ...
REFERENCE_IMAGE_PIXELS = 500 * 375  # ... whose typical image is 500 x 375
DEFAULT_HEAD_THRESHOLD = 0.5  # class probability of the image classifier (docs/pfa.md: the sweep behind it)
SOURCE_SPECS = "'oracle', 'head[:TAU]', 'threshold[:N]', 'file:PATH' or 'none'"
NO_CLASSIFIER_MESSAGE = ("class source 'head' needs the model's image classifier, but this model has none (it was "
                         "trained without a 'classifier' config section); use threshold[:N], file:PATH or oracle")


def default_min_pixels(image_size: tuple[int, int]) -> int:
    """The default pixel threshold for an ``(H, W)`` image: Tab. 4's 500 px per 500 x 375 px, at least 1."""
    height, width = image_size
    return max(1, round(DEFAULT_MIN_PIXELS * height * width / REFERENCE_IMAGE_PIXELS))


class ClassSource(ABC):
    """Turns the basic prediction (and whatever the caller knows) into a present-class mask.

    ``kind``: ``oracle`` | ``head`` | ``threshold`` | ``file`` | ``none``; ``spec``: the spelling it was
    parsed from (normalised: lower-case kind, no surrounding blanks), or for a source built directly the
    spelling that parses back to it.
    """

    background_index: int = 0
    kind: str = ""

    needs_ground_truth: bool = False
    needs_image_classifier: bool = False
    _spelling: str | None = None

    @property
    def spec(self) -> str:
        """The spelling of this source (``"oracle"``, ``"head:0.3"``, ``"threshold"``, ``"file:q2l.json"``, ...)."""
        return self._spelling if self._spelling is not None else self._default_spec()

    def _default_spec(self) -> str:
        return self.kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

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

    kind = "oracle"
    needs_ground_truth = True

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        basic_logits = evidence.basic
        if given is None:
            raise ConfigError("class source 'oracle' needs ground-truth class labels, but none were given")
        if given.shape != basic_logits.shape[:2]:
            raise ValueError(f"given classes must be {tuple(basic_logits.shape[:2])}, got {tuple(given.shape)}")
        return self._with_background(given.to(device=basic_logits.device, dtype=torch.bool))


class HeadClassSource(ClassSource):
    """Classes whose image-classifier probability ``sigmoid(logit)`` is at least ``threshold``."""

    kind = "head"
    needs_image_classifier = True

    def __init__(self, threshold: float = DEFAULT_HEAD_THRESHOLD) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"class source head:TAU needs 0 < TAU < 1, got {threshold}")
        self.threshold = float(threshold)

    def _default_spec(self) -> str:
        return "head" if self.threshold == DEFAULT_HEAD_THRESHOLD else f"head:{self.threshold:g}"

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        if evidence.image_logits is None:
            raise ConfigError(NO_CLASSIFIER_MESSAGE)
        probabilities = torch.sigmoid(evidence.image_logits.detach().float())
        return self._with_background(probabilities >= self.threshold)


class PredictionThresholdClassSource(ClassSource):
    """Classes with at least ``min_pixels`` argmax pixels of the basic prediction at full resolution
    (``evidence.pixel_counts`` when given, else counted on ``evidence.basic`` upsampled to the image).

    ``min_pixels=None``: :func:`default_min_pixels` of each image's size.
    """

    kind = "threshold"

    def __init__(self, min_pixels: int | None = None) -> None:
        if min_pixels is not None and min_pixels < 0:
            raise ConfigError(f"class source threshold must be >= 0 pixels, got {min_pixels}")
        self.min_pixels = min_pixels

    def _default_spec(self) -> str:
        return "threshold" if self.min_pixels is None else f"threshold:{self.min_pixels}"

    def pixels_for(self, image_size: tuple[int, int]) -> int:
        """The pixel count a class needs in an image of ``(H, W)``."""
        return default_min_pixels(image_size) if self.min_pixels is None else self.min_pixels

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        if evidence.pixel_counts is not None:  # counted by the caller at full resolution
            return self._with_background(evidence.pixel_counts.to(evidence.basic.device)
                                         >= self.pixels_for(tuple(image_size)))
        basic_logits = evidence.basic
        batch, num_classes = basic_logits.shape[:2]
        labels = upsample_logits(basic_logits.detach().float(), tuple(image_size)).argmax(1).flatten(1)
        counts = torch.zeros(batch, num_classes, dtype=torch.long, device=labels.device)
        counts.scatter_add_(1, labels, torch.ones_like(labels))
        return self._with_background(counts >= self.pixels_for(tuple(image_size)))


class FileClassSource(ClassSource):
    """Per-image class lists from a JSON file ``{"image name": [id or class name, ...], ...}``."""

    kind = "file"

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

    def _default_spec(self) -> str:
        return f"file:{self.path}"

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

    kind = "none"

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        return None


def _number(spec: str, argument: str, convert, what: str):  # type: ignore[no-untyped-def]
    """``convert(argument)``, or a ConfigError naming ``spec`` and saying ``what`` it must be."""
    try:
        return convert(argument)
    except ValueError:
        raise ConfigError(f"class source {spec!r}: {what}") from None


def _read_spelling(spec: str) -> tuple[str, str, object]:
    """``(kind, normalised spelling, argument)`` of a spelling: the one reader of class-source spellings.

    The argument is converted (``head``: float, ``threshold``: int, ``file``: the path text, else ``None``)
    but nothing is built and no file is read. Raises ConfigError for anything that is no spelling.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"class source must be {SOURCE_SPECS}, got {spec!r}")
    kind, colon, argument = spec.strip().partition(":")
    kind = kind.lower()
    spelling = f"{kind}{colon}{argument}"
    if colon and not argument:
        raise ConfigError(f"class source {spec!r}: nothing after ':' (give e.g. head:0.5, threshold:500, file:PATH)")
    if kind in ("oracle", "none") and not argument:
        return kind, spelling, None
    if kind == "head":
        value = _number(spec, argument, float, "TAU must be a probability between 0 and 1") if argument else None
        if value is not None and not 0.0 < value < 1.0:
            raise ConfigError(f"class source head:TAU needs 0 < TAU < 1, got {value}")
        return kind, spelling, value
    if kind == "threshold":
        value = _number(spec, argument, int, "threshold must be a whole number of pixels") if argument else None
        if value is not None and value < 0:
            raise ConfigError(f"class source threshold must be >= 0 pixels, got {value}")
        return kind, spelling, value
    if kind == "file" and argument:
        return kind, spelling, argument
    raise ConfigError(f"class source must be {SOURCE_SPECS}, got {spec!r}")


def class_source_kind(spec: str) -> str:
    """The kind (``oracle`` | ``head`` | ``threshold`` | ``file`` | ``none``) of a valid spelling, without
    building the source (a ``file:`` source's JSON is not read). Raises ConfigError for a bad spelling."""
    return _read_spelling(spec)[0]


def parse_class_source(spec: str, class_names: Sequence[str] | None = None) -> ClassSource:
    """Build a source from ``"oracle" | "head[:TAU]" | "threshold[:N]" | "file:PATH" | "none"``.

    ``class_names``: the names a ``file:`` source's JSON may use instead of ids. The source's ``spec`` is
    the normalised spelling. Raises ConfigError for anything else (and for an unreadable ``file:`` JSON).
    """
    kind, spelling, value = _read_spelling(spec)
    source: ClassSource
    if kind == "oracle":
        source = OracleClassSource()
    elif kind == "none":
        source = NoClassSource()
    elif kind == "head":
        source = HeadClassSource() if value is None else HeadClassSource(float(value))  # type: ignore[arg-type]
    elif kind == "threshold":
        source = PredictionThresholdClassSource(value)  # type: ignore[arg-type]
    else:
        source = FileClassSource(str(value), class_names)
    source._spelling = spelling
    return source


def check_source_fits(source: ClassSource, method: SegmentationMethod) -> None:
    """ConfigError when ``source`` needs an image classifier that ``method`` does not have."""
    if source.needs_image_classifier and not method.has_image_classifier:
        raise ConfigError(NO_CLASSIFIER_MESSAGE)


def default_class_source(method: SegmentationMethod) -> str:
    """``"head"`` for a model with an image classifier, else ``"threshold"`` (predict's and plot's default)."""
    return "head" if method.has_image_classifier else "threshold"
