"""Experiment configuration: YAML files validated by pydantic v2, overridable from the command line.

A config has six sections (``data``, ``model``, ``pfa``, ``optim``, ``train``, ``eval``); every section is
a strict model (``extra="forbid"``), so a misspelt key is an error that names the key and the nearest
valid one. ``load_config(path, ["optim.lr=3e-5", "pfa.slots=10"])`` reads a file (which may inherit from
another via ``_base_: other.yaml``), applies the overrides (values parsed as YAML scalars) and validates.
The resolved config is written into every run folder as ``config.yaml``.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scribbleseg.errors import ConfigError

BASE_KEY = "_base_"


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are rejected, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SyntheticDataConfig(StrictModel):
    """Parameters of the built-in synthetic set, generated into ``data.root`` when it is missing."""

    seed: int = 0
    num_train: int = Field(48, ge=1)
    num_val: int = Field(16, ge=1)
    size: int = Field(64, ge=32)


class DataConfig(StrictModel):
    """Where the images and scribbles are and how training crops are made."""

    layout: Literal["folder", "voc"] = "folder"
    root: str = "data/synthetic"
    train_split: str = "train"
    val_split: str = "val"
    crop_size: int = Field(512, ge=8)
    scale_range: tuple[float, float] = (0.5, 2.0)
    rotation_degrees: float = Field(10.0, ge=0.0)
    hflip: bool = True
    blur: bool = True
    batch_size: int = Field(16, ge=1)
    num_workers: int = Field(4, ge=0)
    synthetic: SyntheticDataConfig | None = None

    @model_validator(mode="after")
    def _check_scale_range(self) -> "DataConfig":
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {self.scale_range}")
        return self


class MiTDimsConfig(StrictModel):
    """An explicit Mix Transformer shape (for tiny test / demo models instead of a named mit_b*)."""

    embed_dims: tuple[int, int, int, int] = (16, 32, 64, 128)
    depths: tuple[int, int, int, int] = (1, 1, 1, 1)
    num_heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    mlp_ratios: tuple[int, int, int, int] = (4, 4, 4, 4)
    sr_ratios: tuple[int, int, int, int] = (8, 4, 2, 1)


class ModelConfig(StrictModel):
    """Encoder (Mix Transformer) and SegFormer MLP decoder."""

    backbone: str = "mit_b1"
    dims: MiTDimsConfig | None = None
    strides: tuple[int, int, int, int] = (4, 2, 2, 2)
    pretrained: str | None = None
    embed_dim: int = Field(256, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    drop_path: float = Field(0.1, ge=0.0, lt=1.0)
    freeze_encoder_norms: bool = False


class PfaPceTargetConfig(StrictModel):
    """Which prediction the partial cross-entropy supervises in each phase (Tab. 2 last two rows)."""

    warmup: Literal["basic", "local", "global"] = "basic"
    local: Literal["basic", "local", "global"] = "local"
    global_: Literal["basic", "local", "global"] = Field("global", alias="global")

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    def as_dict(self) -> dict[str, str]:
        """``{"warmup": ..., "local": ..., "global": ...}`` as :class:`PFASettings` wants it."""
        return {"warmup": self.warmup, "local": self.local, "global": self.global_}


class PfaConfig(StrictModel):
    """Prototype-based feature augmentation; every field maps 1:1 to :class:`scribbleseg.pfa.PFASettings`.

    ``use_local`` / ``use_global`` both false is the pCE baseline of Tab. 2.
    """

    use_local: bool = True
    use_global: bool = True
    warmup_iters: int = Field(1000, ge=0)
    slots: int = Field(5, ge=1)
    topk_ratio: float = Field(0.08, gt=0.0, le=1.0)
    confidence: Literal["softmax", "minmax"] = "softmax"
    momentum: float = Field(0.99, ge=0.0, le=1.0)
    lambda_local: float = Field(0.01, ge=0.0)
    lambda_global: float = Field(0.01, ge=0.0)
    consistency: Literal["ce", "kl", "released"] = "ce"
    detach_consistency_target: bool = True
    pce_target: PfaPceTargetConfig = PfaPceTargetConfig()
    share_augmenter: bool = True
    background_always_present: bool = True
    background_index: int = Field(0, ge=0)


class OptimConfig(StrictModel):
    """AdamW with parameter groups, linear warm-up then polynomial decay (stepped per iteration)."""

    lr: float = Field(3e-5, gt=0.0)
    head_lr_mult: float = Field(10.0, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_iters: int = Field(0, ge=0)
    warmup_start_factor: float = Field(1e-6, gt=0.0, le=1.0)
    poly_power: float = Field(1.0, ge=0.0)
    min_lr_factor: float = Field(0.0, ge=0.0, le=1.0)
    grad_clip: float | None = Field(None, gt=0.0)
    amp: Literal["none", "bf16", "fp16"] = "none"


class TrainConfig(StrictModel):
    """Length of training, intervals, seed and device. Give ``max_iters`` or ``epochs``, not both."""

    max_iters: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    val_interval: int = Field(1000, ge=0)
    log_interval: int = Field(20, ge=1)
    checkpoint_interval: int = Field(1000, ge=0)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    best_metric: str = "val/basic/miou"
    max_nonfinite_in_a_row: int = Field(10, ge=1)
    progress: bool = True
    deterministic: bool = False

    @model_validator(mode="after")
    def _check_length(self) -> "TrainConfig":
        if (self.max_iters is None) == (self.epochs is None):
            raise ValueError("give exactly one of train.max_iters and train.epochs")
        return self


class EvalConfig(StrictModel):
    """Which prediction heads to score and where the image-level classes come from at inference.

    ``class_source``: ``oracle`` (ground-truth labels), ``threshold:N`` (classes with more than N predicted
    pixels, appendix A.2), ``file:PATH`` (per-image JSON) or ``none``.
    """

    heads: tuple[Literal["basic", "local", "global"], ...] = ("basic",)
    class_source: str = Field("oracle", pattern=r"^(oracle|none|threshold(:\d+)?|file:.+)$")
    ms_flip: bool = False
    batch_size: int = Field(1, ge=1)


class ExperimentConfig(StrictModel):
    """One experiment: every knob of data, model, method, optimiser, training and evaluation."""

    name: str = "experiment"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    pfa: PfaConfig = PfaConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig(max_iters=1000)
    eval: EvalConfig = EvalConfig()

    def to_yaml(self) -> str:
        """The resolved config as YAML text (loads back to an equal config)."""
        return yaml.safe_dump(json.loads(self.to_json()), sort_keys=False)

    def to_json(self) -> str:
        """The resolved config as compact JSON (stored in checkpoint metadata)."""
        return self.model_dump_json(by_alias=True)


# --------------------------------------------------------------------------------------------------
# loading, overrides and error messages


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
