"""Reading experiment configs: YAML files with ``_base_`` inheritance, ``--set`` overrides, clear errors.

``load_config(path, ["optim.lr=3e-5", "pfa.slots=10"])`` reads a file (which may inherit from another via
``_base_: other.yaml``), applies the overrides (values parsed as YAML scalars) and validates it against
:mod:`scribbleseg.engine.config.schema`. A misspelt key is an error that names the key and the nearest
valid one; a bad value names the key and what was expected.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import BaseModel, Tag, ValidationError

from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.errors import ConfigError
from scribbleseg.yaml_reading import read_yaml_file

BASE_KEY = "_base_"


def _other_suffix_hint(path: Path) -> str:
    """``"; did you mean x.yaml?"`` when ``x.yml`` is missing and ``x.yaml`` exists (and the other way round)."""
    swap = {".yml": ".yaml", ".yaml": ".yml"}.get(path.suffix.lower())
    other = path.with_suffix(swap) if swap else None
    return f"; did you mean {other}?" if other is not None and other.is_file() else ""


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read one YAML file that must contain a mapping; ``{}`` for an empty file."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}{_other_suffix_hint(path)}")
    loaded = read_yaml_file(path, ConfigError)  # a repeated key is an error naming it and its line
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must contain a mapping of sections, got {type(loaded).__name__}")
    return loaded


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update`` recursively (mappings merge, everything else replaces).

    A mapping whose ``type`` differs from the base's (e.g. a ResNet backbone over an MiT one) replaces the
    base's mapping whole: the keys of one kind mean nothing to another.
    """
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value.get("type", old.get("type")) == old.get("type"):
            merged[key] = _deep_merge(old, value)
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


def _section_models(annotation: Any, tag: str = "") -> dict[str, type[BaseModel]]:
    """Section classes inside ``annotation``: ``{"": Model}`` for a plain or optional section,
    ``{tag: Model, ...}`` for a union discriminated by ``type``, ``{}`` for a plain value."""
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        tags = [item.tag for item in metadata if isinstance(item, Tag)]
        return _section_models(base, tags[0] if tags else tag)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {tag: annotation}
    found: dict[str, type[BaseModel]] = {}
    for arg in get_args(annotation):
        found.update(_section_models(arg))
    return found


def _member(models: dict[str, type[BaseModel]], node: Any) -> type[BaseModel] | None:
    """The section class for the mapping ``node``: a union member chosen by ``node["type"]`` (first by default)."""
    if not models:
        return None
    tag = node.get("type") if isinstance(node, dict) else None
    return models.get(tag, next(iter(models.values()))) if isinstance(tag, str) else next(iter(models.values()))


def _walk(parts: list[str], raw: Any = None) -> tuple[list[str], type[BaseModel] | None]:
    """Follow ``parts`` through the schema (``raw`` picks union members by their ``type``).

    Returns the path without the union tags pydantic puts into error locations, and the section class
    that holds the last key (``None`` when a part above it is not a section).
    """
    model: type[BaseModel] | None = ExperimentConfig
    node, clean, index = raw, [], 0
    while index < len(parts):
        part = parts[index]
        clean.append(part)
        if index == len(parts) - 1:
            return clean, model
        field = _keys_of(model).get(part) if model is not None else None
        models = _section_models(field.annotation) if field is not None else {}
        node = node.get(part) if isinstance(node, dict) else None
        if len(models) > 1 and parts[index + 1] in models:
            model, index = models[parts[index + 1]], index + 2
            if index >= len(parts):  # the error is about the section itself (e.g. its own validator)
                return clean, model
            continue
        model, index = _member(models, node), index + 1
    return clean, model


def _unknown_key_message(dotted: list[str], where: str, raw: Any = None) -> str:
    """'unknown key optim.lrr in <where>; did you mean optim.lr?' (nearest valid key by difflib)."""
    dotted, section = _walk(dotted, raw)
    key = ".".join(dotted)
    message = f"unknown config key '{key}' in {where}"
    if section is not None:
        valid = list(_keys_of(section))
        close = difflib.get_close_matches(dotted[-1], valid, n=1, cutoff=0.0)
        if close:
            prefix = ".".join(dotted[:-1])
            message += f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?"
        message += f" (valid keys here: {', '.join(valid)})"
    return message


Overrides = list[tuple[list[str], str]]  # (dotted key, the "--set" text) of each override


def _source_of(key: list[str], overrides: Overrides, where: str) -> str:
    """``--set <text>`` of the last override that set ``key`` (or a key inside it, or its section), else
    ``where`` (the file)."""
    for dotted, text in reversed(overrides):
        depth = min(len(dotted), len(key))
        if depth and dotted[:depth] == key[:depth]:
            return f"--set {text}"
    return where


def _validation_error_to_config_error(err: ValidationError, where: str, raw: Any = None,
                                      overrides: Overrides | None = None) -> ConfigError:
    """Turn pydantic's error list into one ConfigError naming each bad key, what was expected, and where
    the value came from (the file, or the ``--set`` override that set it)."""
    lines = []
    for item in err.errors():
        loc = [str(part) for part in item["loc"]]
        if item["type"] == "extra_forbidden":
            lines.append(_unknown_key_message(loc, where, raw))
            continue
        clean = _walk(loc, raw)[0] if loc else []
        key = ".".join(clean) if loc else "(top level)"
        source = _source_of(clean, overrides or [], where)
        if item["type"] == "union_tag_invalid":  # a section's ``type`` names no known kind
            context = item.get("ctx", {})
            lines.append(f"bad value for config key '{key}.type' in {source}: {context.get('tag')!r} is not one of "
                         f"{str(context.get('expected_tags', '')).replace(chr(39), '')}")
            continue
        got = item.get("input")
        got_text = "" if isinstance(got, dict) else f", got {got!r}"
        lines.append(f"bad value for config key '{key}' in {source}: {item['msg']}{got_text}")
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


def _check_override_key(dotted: list[str], text: str, raw: dict[str, Any]) -> None:
    """Reject an override whose key does not exist, naming the nearest valid key."""
    for depth in range(len(dotted)):
        _, section = _walk(dotted[: depth + 1], raw)
        if section is None:
            raise ConfigError(f"--set {text}: '{'.'.join(dotted[:depth])}' is a value, not a section")
        if dotted[depth] not in _keys_of(section):
            raise ConfigError(_unknown_key_message(dotted[: depth + 1], f"--set {text}", raw))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``raw`` with each ``section.key=value`` override set (keys checked against the schema)."""
    result = json.loads(json.dumps(raw, default=str)) if raw else {}
    for text in overrides:
        dotted, value = parse_override(text)
        _check_override_key(dotted, text, result)
        node = result
        for part in dotted[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[dotted[-1]] = value
    return result


def config_from_mapping(raw: dict[str, Any], where: str = "config", overrides: list[str] | None = None,
                        ) -> ExperimentConfig:
    """Validate a raw mapping into an :class:`ExperimentConfig` (ConfigError names each bad key, and the
    ``--set`` text of ``overrides`` when one of them set the bad value)."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        parsed = [(parse_override(text)[0], text) for text in overrides or []]
        raise _validation_error_to_config_error(err, where, raw, parsed) from None


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
    return config_from_mapping(raw, where=str(path), overrides=list(overrides or []))


def config_from_json(text: str, where: str = "checkpoint") -> ExperimentConfig:
    """Parse the JSON stored in a checkpoint back into a config."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: stored config is not valid JSON: {err}") from err
    return config_from_mapping(raw, where=where)
