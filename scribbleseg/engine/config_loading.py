"""Reading experiment configs: YAML files with ``_base_`` inheritance, ``--set`` overrides, clear errors.

``load_config(path, ["optim.lr=3e-5", "pfa.slots=10"])`` reads a file (which may inherit from another via
``_base_: other.yaml``), applies the overrides (values parsed as YAML scalars) and validates it against
:mod:`scribbleseg.engine.config_schema`. A misspelt key is an error that names the key and the nearest
valid one; a bad value names the key and what was expected.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from scribbleseg.engine.config_schema import ExperimentConfig
from scribbleseg.errors import ConfigError

BASE_KEY = "_base_"


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read one YAML file that must contain a mapping; ``{}`` for an empty file."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must contain a mapping of sections, got {type(loaded).__name__}")
    return loaded


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update`` recursively (mappings merge, everything else replaces)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_tree(path: str | os.PathLike[str], _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Raw mapping of a config file with its ``_base_`` chain resolved (base first, file on top)."""
    file = Path(path).resolve()
    if file in _seen:
        raise ConfigError(f"{file}: circular {BASE_KEY} chain")
    raw = _read_yaml_mapping(file)
    base_name = raw.pop(BASE_KEY, None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise ConfigError(f"{file}: {BASE_KEY} must be a file name, got {base_name!r}")
    base = read_config_tree(file.parent / base_name, _seen + (file,))
    return _deep_merge(base, raw)


def _keys_of(model: type[BaseModel]) -> dict[str, Any]:
    """The keys a section accepts in YAML (aliases where set) mapped to their field infos."""
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _section_model(dotted: list[str]) -> type[BaseModel] | None:
    """The pydantic model class that holds the key at the end of ``dotted`` (None if not a model)."""
    model: type[BaseModel] = ExperimentConfig
    for part in dotted[:-1]:
        field = _keys_of(model).get(part)
        if field is None:
            return None
        inner = _model_in_annotation(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _model_in_annotation(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel subclass inside ``annotation`` (handles ``X | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _unknown_key_message(dotted: list[str], where: str) -> str:
    """'unknown key optim.lrr in <where>; did you mean optim.lr?' (nearest valid key by difflib)."""
    key = ".".join(dotted)
    section = _section_model(dotted)
    message = f"unknown config key '{key}' in {where}"
    if section is not None:
        valid = list(_keys_of(section))
        close = difflib.get_close_matches(dotted[-1], valid, n=1, cutoff=0.0)
        if close:
            prefix = ".".join(dotted[:-1])
            message += f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?"
        message += f" (valid keys here: {', '.join(valid)})"
    return message


def _validation_error_to_config_error(err: ValidationError, where: str) -> ConfigError:
    """Turn pydantic's error list into one ConfigError naming each bad key and what was expected."""
    lines = []
    for item in err.errors():
        loc = [str(part) for part in item["loc"]]
        if item["type"] == "extra_forbidden":
            lines.append(_unknown_key_message(loc, where))
            continue
        key = ".".join(loc) if loc else "(top level)"
        got = item.get("input")
        got_text = "" if isinstance(got, dict) else f", got {got!r}"
        lines.append(f"bad value for config key '{key}' in {where}: {item['msg']}{got_text}")
    return ConfigError("\n".join(lines))


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"optim.lr=3e-5"`` into (["optim", "lr"], 3e-05); the value is parsed as a YAML scalar."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    key, raw_value = text.split("=", 1)
    dotted = [part for part in key.strip().split(".")]
    if not all(dotted):
        raise ConfigError(f"override '{text}' has an empty key part")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override '{text}': value is not valid YAML: {err}") from err
    if isinstance(value, str):
        value = _maybe_float(value)
    return dotted, value


def _maybe_float(text: str) -> Any:
    """YAML 1.1 reads ``3e-5`` as a string; return it as a float when it is one."""
    try:
        return float(text) if any(ch.isdigit() for ch in text) and text.strip().lower() not in ("nan",) else text
    except ValueError:
        return text


def _check_override_key(dotted: list[str], text: str) -> None:
    """Reject an override whose key does not exist, naming the nearest valid key."""
    model: type[BaseModel] = ExperimentConfig
    for depth, part in enumerate(dotted):
        keys = _keys_of(model)
        if part not in keys:
            raise ConfigError(_unknown_key_message(dotted[: depth + 1], f"--set {text}"))
        inner = _model_in_annotation(keys[part].annotation)
        if depth < len(dotted) - 1:
            if inner is None:
                raise ConfigError(
                    f"--set {text}: '{'.'.join(dotted[: depth + 1])}' is a value, not a section"
                )
            model = inner


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``raw`` with each ``section.key=value`` override set (keys checked against the schema)."""
    result = json.loads(json.dumps(raw, default=str)) if raw else {}
    for text in overrides:
        dotted, value = parse_override(text)
        _check_override_key(dotted, text)
        node = result
        for part in dotted[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[dotted[-1]] = value
    return result


def config_from_mapping(raw: dict[str, Any], where: str = "config") -> ExperimentConfig:
    """Validate a raw mapping into an :class:`ExperimentConfig` (ConfigError names each bad key)."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise _validation_error_to_config_error(err, where) from None


def load_config(path: str | os.PathLike[str], overrides: list[str] | None = None) -> ExperimentConfig:
    """Read, override and validate a config file.

    Args:
        path: YAML file (may name a base file with ``_base_: base.yaml``, relative to itself).
        overrides: ``["section.key=value", ...]`` applied on top, values parsed as YAML scalars.

    Raises:
        ConfigError: missing / unreadable file, unknown key (with the nearest valid key) or a value of
            the wrong type (with the key and the expected type).
    """
    raw = read_config_tree(path)
    raw = apply_overrides(raw, list(overrides or []))
    return config_from_mapping(raw, where=str(path))


def config_from_json(text: str, where: str = "checkpoint") -> ExperimentConfig:
    """Parse the JSON stored in a checkpoint back into a config."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: stored config is not valid JSON: {err}") from err
    return config_from_mapping(raw, where=where)
