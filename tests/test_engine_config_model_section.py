"""The ``model`` section: backbone / decoder kinds discriminated by ``type``, ``_base_`` switching kind,
overrides into a kind's keys, and error messages without pydantic's union tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribbleseg.engine.config.loading import config_from_mapping, load_config
from scribbleseg.errors import ConfigError
from scribbleseg.models.heads.segformer_family import SegFormerDecoder
from scribbleseg.models.mit.family import MiTBackbone
from scribbleseg.models.resnet.family import ResNetBackbone

REPO = Path(__file__).resolve().parents[1]


def test_type_selects_the_kind_and_defaults_to_mit_and_segformer() -> None:
    default = config_from_mapping({})
    assert isinstance(default.model.backbone, MiTBackbone) and isinstance(default.model.decoder, SegFormerDecoder)
    cfg = config_from_mapping({"model": {"backbone": {"type": "resnet", "name": "resnet50", "output_stride": 16},
                                         "decoder": {"type": "deeplabv2"}}})
    assert isinstance(cfg.model.backbone, ResNetBackbone) and cfg.model.backbone.output_stride == 16
    assert cfg.model.decoder.dilations == (6, 12, 18, 24)
    assert config_from_mapping(cfg.model_dump(by_alias=True)) == cfg  # round trip keeps the kinds


def test_a_base_file_of_another_kind_is_replaced_not_merged() -> None:
    cfg = load_config(REPO / "configs" / "voc_pfa_deeplabv2_r101.yaml")
    assert cfg.model.backbone.type == "resnet" and cfg.model.decoder.type == "deeplabv2"
    assert cfg.pfa.slots == 5 and cfg.data.crop_size == 512  # the rest comes from the MiT base preset


def test_errors_name_the_key_of_the_kind_without_union_tags() -> None:
    with pytest.raises(ConfigError, match=r"'model\.backbone\.output_strid'.*did you mean 'model\.backbone\."
                                          r"output_stride'") as info:
        config_from_mapping({"model": {"backbone": {"type": "resnet", "output_strid": 16}}})
    assert ".resnet." not in str(info.value)
    with pytest.raises(ConfigError, match=r"'model\.backbone'.*mit_b9.*mit_b0"):
        config_from_mapping({"model": {"backbone": {"name": "mit_b9"}}})
    with pytest.raises(ConfigError, match=r"model\.decoder\.type"):
        config_from_mapping({"model": {"decoder": {"type": "fcn"}}})


def test_overrides_into_the_current_kind(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("train: {max_iters: 1}\nmodel: {backbone: {type: resnet}, decoder: {type: deeplabv3plus}}\n")
    assert load_config(path, ["model.backbone.output_stride=16"]).model.backbone.output_stride == 16
    with pytest.raises(ConfigError, match=r"model\.backbone\.strides.*output_stride"):
        load_config(path, ["model.backbone.strides=[4,2,2,2]"])  # an MiT key on a ResNet backbone
    switched = load_config(REPO / "configs" / "synthetic_pfa.yaml",
                           ["model.backbone={type: resnet, name: null, dims: {base_width: 4}}",
                            "model.decoder={type: deeplabv2}"])
    assert switched.model.backbone.dims.base_width == 4 and switched.model.decoder.type == "deeplabv2"
