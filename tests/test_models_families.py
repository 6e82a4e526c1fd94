"""One declaration per family: the config unions, builders, weight loading, ``info`` and the method factory
read the declaration tables, and a family's name is written in code only where it is declared."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
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
        folder = Path(__import__(family.settings.__module__, fromlist=["_"]).__file__).resolve().parent  # mit/, heads/
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


NEW_FAMILIES = r'''
from typing import Literal
import torch
from torch import nn
from scribbleseg.methods.declarations import MethodFamily
from scribbleseg.models.declarations import BackboneFamily
from scribbleseg.models.settings_base import StrictSettings
from scribbleseg.models.weights.layouts import KeyLayout
from scribbleseg.models import families
from scribbleseg.engine.config import method_table
from scribbleseg.methods.pce_method import PartialCEMethod


class ToyEncoder(nn.Module):
    """4 strided convolutions: maps [N, w, H/4 ... H/32]."""
    def __init__(self, width):
        super().__init__()
        self.out_channels, self.output_strides = (width,) * 4, (4, 8, 16, 32)
        self.variant_name = f"toy{width}"
        self.stages = nn.ModuleList(nn.Conv2d(3 if i == 0 else width, width, 3, 4 if i == 0 else 2, 1) for i in range(4))
    def forward(self, x):
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps


class ToyBackbone(StrictSettings):
    section = "model.backbone"
    type: Literal["toy"] = "toy"
    name: str | None = "toy4"
    width: int = 4
    def architecture(self):
        return {"type": self.type, "width": self.width}


class ToySettings(StrictSettings):
    section = "toy"
    weight: float = 1.0
    def architecture(self):
        return {}


class ToyMethod(PartialCEMethod):
    method_name = "toy"
    def __init__(self, encoder, head, num_classes, settings=None, **shared):
        super().__init__(encoder, head, num_classes, **shared)
        self.settings = settings


families.BACKBONES["toy"] = BackboneFamily(ToyBackbone, lambda s: ToyEncoder(s.width), ToyEncoder, "Toy",
                                           (KeyLayout("toy", "stages.0.weight", r"stages\."),))
method_table.METHODS["toy"] = MethodFamily(ToyMethod, ToySettings)

from scribbleseg.cli.info_command import backbone_settings
from scribbleseg.engine.build.method_factory import build_method, model_descriptor
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.methods import TrainBatch
from scribbleseg.models import load_encoder_weights

cfg = config_from_mapping({"method": "toy", "toy": {"weight": 2.0}, "train": {"max_iters": 1},
                           "model": {"backbone": {"type": "toy", "width": 8}, "decoder": {"embed_dim": 8}}})
method = build_method(cfg, 3, load_pretrained=False)
assert type(method) is ToyMethod and method.settings.weight == 2.0 and method.encoder.out_channels == (8,) * 4
batch = TrainBatch(torch.randn(2, 3, 64, 64), torch.zeros(2, 64, 64, dtype=torch.long),
                   torch.ones(2, 3, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool))
assert method.training_step(batch, 0).loss.isfinite()
assert model_descriptor(cfg)["backbone"] == {"type": "toy", "width": 8} and model_descriptor(cfg)["toy"] == {}
assert backbone_settings("Toy-16", "4,2,2,1", 8) == ToyBackbone(name="Toy-16")
torch.save(method.encoder.state_dict(), "toy.pth")
print(load_encoder_weights(ToyEncoder(8), "toy.pth"))
try:
    config_from_mapping({"model": {"backbone": {"type": "toyy"}}, "train": {"max_iters": 1}})
except Exception as err:
    print(err)
'''


def test_a_new_family_needs_only_its_declaration_and_a_table_line(tmp_path):
    """A backbone and a method declared outside the package and put into the tables (before the schema is
    built) train, build, describe, load weights, resolve in ``info`` and appear in config errors."""
    done = subprocess.run([sys.executable, "-c", NEW_FAMILIES], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(toy layout)" in done.stdout
    assert "'toyy' is not one of mit, resnet, toy" in done.stdout
