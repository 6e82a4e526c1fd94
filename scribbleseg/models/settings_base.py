"""The base of every validated settings section (backbones, decoders, methods, engine config).

Each layer declares the settings of what it builds next to the code (as Hugging Face keeps a config
class beside each model), and the engine's YAML schema embeds those classes directly: one field list,
one validation. Unknown keys are rejected and assignments validated. Constructing a section with a bad
value raises pydantic's ``ValidationError`` (naming the field); :meth:`StrictSettings.build` raises a
:class:`~scribbleseg.errors.ConfigError` naming ``<section>.<field>`` instead, for command-line code. The
engine validates whole YAML files itself and reports every bad key with its path.
"""

from __future__ import annotations

from typing import Any, ClassVar

from typing_extensions import Self

from pydantic import BaseModel, ConfigDict, ValidationError

from scribbleseg.errors import ConfigError


def describe_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``<prefix.key>: <what is wrong>`` (unknown keys named as such)."""
    lines = []
    for item in err.errors():
        key = ".".join(str(part) for part in (prefix, *item["loc"]) if str(part))
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        else:
            lines.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


class StrictSettings(BaseModel):
    """Pydantic base: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)
    section: ClassVar[str] = ""

    @classmethod
    def build(cls, **data: Any) -> Self:
        """``cls(**data)``, with a :class:`ConfigError` naming ``<section>.<field>`` for a bad value."""
        try:
            return cls(**data)
        except ValidationError as err:
            raise ConfigError(describe_validation_error(err, cls.section)) from None

    def for_run(self, total_iterations: int, length: str) -> Self:
        """These settings fitted to a training run of ``total_iterations`` (``length`` names the config key
        that set it, for messages): unchanged here; a method whose schedule depends on the run's length
        (PFA's warm-up fraction) overrides it."""
        return self
