"""What a method family declares, once, beside its method class: :class:`MethodFamily` (a plain frozen
record; the engine's table :mod:`scribbleseg.engine.config.method_table` lists them).

The family's config name (``method: pfa``) is its class's :attr:`~scribbleseg.methods.contract.SegmentationMethod.method_name`;
its own settings class, if any, is a section of the experiment config named by the class's ``section``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from torch import nn

from scribbleseg.methods.contract import SegmentationMethod
from scribbleseg.methods.image_classification import ImageClassification
from scribbleseg.methods.regularisers import Regulariser
from scribbleseg.models.settings_base import StrictSettings


@dataclass(frozen=True)
class MethodFamily:
    """One method family.

    Attributes:
        method: the :class:`SegmentationMethod` subclass; it is the builder, called as
            ``method(encoder, head, num_classes, [settings=...,] ignore_index=, regularisers=, classifier=)``.
        settings: its own settings class (a config section, e.g. ``pfa``), or ``None`` (pce has none).
    """

    method: type[SegmentationMethod]
    settings: type[StrictSettings] | None = None

    @property
    def name(self) -> str:
        """The config name (``method``)."""
        return self.method.method_name

    @property
    def section(self) -> str | None:
        """The experiment config's section holding :attr:`settings` (``None`` without settings)."""
        return None if self.settings is None else self.settings.section

    def build(self, encoder: nn.Module, head: nn.Module, num_classes: int, settings: Any = None, *,
              ignore_index: int = 255, regularisers: Sequence[Regulariser] = (),
              classifier: ImageClassification | None = None) -> SegmentationMethod:
        """The method on ``encoder`` + ``head`` (``settings``: the section's value, ignored without one)."""
        own = {} if self.settings is None else {"settings": settings}
        return self.method(encoder, head, num_classes, ignore_index=ignore_index, regularisers=regularisers,
                           classifier=classifier, **own)
