"""The config's ``eval`` section as :class:`~scribbleseg.engine.inference.settings.InferenceSettings`.

``eval`` (command line), the trainer's validation and the Python API build their test-time settings here,
once: the section's ``heads``, ``ms_flip`` and ``batch_size``, with the command-line values that are given
replacing them, and the class source parsed once (:func:`~scribbleseg.methods.class_sources.parse_class_source`).
The section is read by attribute (any object with ``heads``, ``class_source``, ``extra_class_sources``,
``ms_flip``, ``batch_size``), so this room needs no import of the config.
"""

from __future__ import annotations

from typing import Any, Sequence

from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.inference.windows import SlideSettings
from scribbleseg.methods.class_sources import ClassSource, parse_class_source

__all__ = ["eval_settings", "extra_class_sources", "validation_settings"]


def eval_settings(section: Any, class_source: ClassSource, *, heads: Sequence[str] | None = None,
                  ms_flip: bool | None = None, batch_size: int | None = None, amp: bool = False,
                  slide: SlideSettings | None = None) -> InferenceSettings:
    """Settings of the ``eval`` section with the given (not ``None``) options replacing its values.

    ``class_source``: already parsed (the command line's ``--classes`` or the section's spelling).
    """
    return InferenceSettings.build(
        heads=heads if heads else section.heads, class_source=class_source,
        ms_flip=section.ms_flip if ms_flip is None else ms_flip,
        batch_size=section.batch_size if batch_size is None else batch_size, amp=amp, slide=slide)


def validation_settings(section: Any, class_names: Sequence[str] | None, *, amp: bool = False) -> InferenceSettings:
    """The trainer's validation settings: the section as it is, its class source parsed with ``class_names``."""
    return eval_settings(section, parse_class_source(section.class_source, class_names), amp=amp)


def extra_class_sources(section: Any, class_names: Sequence[str] | None) -> list[ClassSource]:
    """The section's ``extra_class_sources``, parsed."""
    return [parse_class_source(spec, class_names) for spec in section.extra_class_sources]
