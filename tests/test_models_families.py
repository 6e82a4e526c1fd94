"""One declaration per family: the config unions, builders, weight loading, ``info`` and the method factory
read the declaration tables, and a family's name is written in code only where it is declared."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

import pytest
from pydantic import Tag

from scribbleseg.cli.info_command import backbone_settings, decoder_settings
from scribbleseg.engine.config.method_table import DEFAULT_METHOD, METHODS
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.models.families import BACKBONES, DECODERS
from scribbleseg.models.network_settings import BackboneSettings, DecoderSettings

PACKAGE = Path(__file__).resolve().parents[1] / "scribbleseg"
# Files that may spell a default family's name besides its folder and the tables, and why: the format-1
# migration (history: format 1 knew only mit + segformer + pfa), the demo's own preset, and `info`'s option
# defaults and help (shown by `--help`, which must not import torch and so cannot read the tables).
PRESETS = {"engine/config/migration.py", "demo/pipeline.py", "cli/info_command.py"}


def _union_tags(union) -> list[str]:  # type: ignore[no-untyped-def]
    members = get_args(get_args(union)[0])
    return [next(item.tag for item in get_args(member)[1:] if isinstance(item, Tag)) for member in members]


def test_the_config_unions_and_the_schema_list_the_declared_families_in_table_order():
    assert _union_tags(BackboneSettings) == list(BACKBONES) == ["mit", "resnet"]
    assert _union_tags(DecoderSettings) == list(DECODERS) == ["segformer", "deeplabv2", "deeplabv3plus"]
    assert get_args(ExperimentConfig.model_fields["method"].annotation) == tuple(METHODS) == ("pce", "pfa")
    cfg = ExperimentConfig()
    assert (cfg.method, cfg.model.backbone.type, cfg.model.decoder.type) == (DEFAULT_METHOD, "mit", "segformer")
    sections = [family.section for family in METHODS.values() if family.section]
    assert sections == ["pfa"] and list(ExperimentConfig.model_fields)[4:5] == sections  # right after `model`


@pytest.mark.parametrize("name, family", [("resnet50", "resnet"), ("ResNet-101", "resnet"), ("mit_b0", "mit"),
                                          ("b1", "mit")])
def test_info_picks_the_family_that_claims_the_name(name, family):
    assert backbone_settings(name, "4,2,2,1", 16).type == family
    assert [f.type for f in BACKBONES.values() if f.claims(name)] in ([family], [])


def test_info_decoders_are_the_table():
    assert [decoder_settings(name, 32).type for name in DECODERS] == list(DECODERS)


def _code_strings(path: Path) -> set[str]:
    """String constants of ``path`` outside docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs}


def _spellers(name: str) -> set[str]:
    pattern = re.compile(rf"^{re.escape(name)}(_?b?\d+)?$")  # the type and its variant names (resnet101, mit_b1)
    return {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
            if any(pattern.match(text) for text in _code_strings(path))}


@pytest.mark.parametrize("kind", ["backbone", "decoder"])
def test_a_network_family_name_is_written_only_in_its_folder(kind):
    table = BACKBONES if kind == "backbone" else DECODERS
    for position, (name, family) in enumerate(table.items()):
        home = Path(__import__(family.settings.__module__, fromlist=["_"]).__file__).resolve()
        folder = home.parent if kind == "backbone" else home
        outside = {path for path in _spellers(name)
                   if not (PACKAGE / path).resolve().is_relative_to(folder) and path not in PRESETS}
        assert not outside, f"{kind} {name!r} is spelt outside its declaration in {sorted(outside)}"
        if position:  # only a default family has presets
            assert not _spellers(name) & PRESETS, f"{name!r} is spelt in {sorted(_spellers(name) & PRESETS)}"


def test_a_method_name_is_written_only_beside_its_class():
    homes = {"pce": {"methods/pce_method.py", "pfa/pfa_method.py"},  # PFA's loss part "pce" (its pCE term)
             "pfa": {"pfa/pfa_method.py", "pfa/settings.py"}}
    for name in METHODS:
        outside = _spellers(name) - homes[name] - PRESETS
        assert not outside, f"method {name!r} is spelt outside its declaration in {sorted(outside)}"
