"""Checkpoint descriptors and formats: format-1 (scribbleseg 0.1) checkpoints and checkpoints written before
the image classifier existed still load; the stored model descriptor makes a checkpoint of another backbone /
decoder / method / classifier an error naming what differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from scribbleseg.engine.runs.checkpoint import CONFIG_KEY, FORMAT_KEY, META_KEY, load_model_checkpoint, save_model_checkpoint
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.errors import CheckpointError, ConfigError
from scribbleseg.methods import check_source_fits, parse_class_source
from tiny_models import tiny_model_mapping

KEYS_ADDED_WITH_THE_CLASSIFIER = {"classifier": None, "pfa": ("present_from", "global_start", "lambda_local_before_global"),
                                  "eval": ("extra_class_sources",)}


def drop_new_keys(config: dict) -> dict:
    """A stored config as written before the classifier, present_from and global_start existed."""
    config.pop("classifier", None)
    for section, keys in KEYS_ADDED_WITH_THE_CLASSIFIER.items():
        for key in keys or ():
            config[section].pop(key, None)
    return config

LEGACY_MODEL = {"backbone": "custom", "pretrained": None, "strides": [4, 2, 2, 2], "embed_dim": 16,
                "dropout": 0.0, "drop_path": 0.0, "freeze_encoder_norms": False,
                "dims": {"embed_dims": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 4],
                         "mlp_ratios": [4, 4, 4, 4], "sr_ratios": [8, 4, 2, 1]}}


def write_format_1(path: Path, use_local: bool) -> dict[str, torch.Tensor]:
    """A checkpoint as scribbleseg 0.1 wrote it: flat model section, no method, format "1"."""
    cfg = config_from_mapping({"model": tiny_model_mapping(), "pfa": {"slots": 2, "use_local": use_local}})
    method = build_method(cfg, 4, load_pretrained=False)
    tensors = {k: v.contiguous() for k, v in method.state_dict().items()}
    legacy = json.loads(cfg.to_json())
    legacy.pop("method")
    legacy.pop("gated_crf")
    drop_new_keys(legacy)
    legacy["model"] = LEGACY_MODEL
    save_file(tensors, str(path), metadata={CONFIG_KEY: json.dumps(legacy), FORMAT_KEY: "1",
                                            META_KEY: json.dumps({"num_classes": 4, "backbone": "mit(custom)"})})
    return tensors


@pytest.mark.parametrize("use_local", [True, False])
def test_format_1_checkpoints_load_as_pfa_models(tmp_path: Path, use_local: bool) -> None:
    tensors = write_format_1(tmp_path / "old.safetensors", use_local)
    method, cfg, meta = load_model_checkpoint(tmp_path / "old.safetensors")
    assert cfg.method == "pfa" and cfg.model.backbone.dims.embed_dims == (8, 16, 32, 64)
    assert cfg.model.decoder.embed_dim == 16 and cfg.pfa.use_local is use_local
    for name, value in method.state_dict().items():
        assert torch.equal(value, tensors[name]), name


def test_descriptor_mismatch_names_what_differs(tmp_path: Path) -> None:
    cfg = config_from_mapping({"model": tiny_model_mapping(), "pfa": {"slots": 2}})
    path = save_model_checkpoint(tmp_path / "m.safetensors", build_method(cfg, 4, load_pretrained=False), cfg, {})
    resnet = config_from_mapping({"model": {"backbone": {"type": "resnet", "name": None, "dims": {}},
                                            "decoder": {"type": "deeplabv2"}}})
    with pytest.raises(CheckpointError, match=r"its backbone.type is mit, the config asks for resnet; "
                                              r"its decoder.type is segformer, the config asks for deeplabv2"):
        load_model_checkpoint(path, expect=resnet)
    baseline = config_from_mapping({"model": tiny_model_mapping(), "method": "pce"})
    with pytest.raises(CheckpointError, match="its method is pfa, the config asks for pce"):
        load_model_checkpoint(path, expect=baseline)
    more_slots = config_from_mapping({"model": tiny_model_mapping(), "pfa": {"slots": 3}})
    with pytest.raises(CheckpointError, match="slots"):
        load_model_checkpoint(path, expect=more_slots)


def test_checkpoints_from_before_the_classifier_load_and_refuse_the_head_source(tmp_path: Path) -> None:
    cfg = config_from_mapping({"model": tiny_model_mapping(), "pfa": {"slots": 2}})
    method = build_method(cfg, 4, load_pretrained=False)
    tensors = {k: v.contiguous() for k, v in method.state_dict().items()}
    assert not any(name.startswith("image_classifier") or name == "global_started" for name in tensors)
    old = tmp_path / "before_classifier.safetensors"
    save_file(tensors, str(old), metadata={CONFIG_KEY: json.dumps(drop_new_keys(json.loads(cfg.to_json()))),
                                           FORMAT_KEY: "2", META_KEY: json.dumps({"num_classes": 4})})
    loaded, stored, _ = load_model_checkpoint(old)
    assert stored.classifier is None and stored.pfa.global_start == "all_full" and stored.pfa.present_from == "crop"
    assert not loaded.has_image_classifier
    with pytest.raises(ConfigError, match="trained without a 'classifier' config section"):
        check_source_fits(parse_class_source("head"), loaded)
    with_classifier = config_from_mapping({"model": tiny_model_mapping(), "pfa": {"slots": 2}, "classifier": {}})
    with pytest.raises(CheckpointError, match=r"its classifier is not set, the config asks for \{features: "):
        load_model_checkpoint(old, expect=with_classifier)
    new = save_model_checkpoint(tmp_path / "with.safetensors", build_method(with_classifier, 4, load_pretrained=False),
                                with_classifier, {})
    assert load_model_checkpoint(new)[0].has_image_classifier
