"""Config loading: presets, strict keys with nearest-key hints, typed overrides, base files, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scribbleseg.engine.config.loading import config_from_mapping, load_config, parse_override
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "configs").glob("*.yaml"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def small_config(tmp_path: Path) -> Path:
    return _write(tmp_path / "c.yaml", "name: t\noptim: {lr: 1.0e-4}\ntrain: {max_iters: 10}\n")


def test_there_are_the_six_presets() -> None:
    names = {p.stem for p in PRESETS}
    assert {"voc_pfa_mit_b1", "voc_baseline_mit_b1", "voc_local_only_mit_b1", "voc_global_only_mit_b1",
            "synthetic_baseline", "synthetic_pfa"} <= names


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_preset_loads_and_round_trips(preset: Path) -> None:
    cfg = load_config(preset)
    assert cfg.name == preset.stem
    assert config_from_mapping(yaml.safe_load(cfg.to_yaml())) == cfg


def test_voc_preset_has_the_paper_values() -> None:
    cfg = load_config(REPO / "configs" / "voc_pfa_mit_b1.yaml")
    assert cfg.optim.lr == pytest.approx(3e-5) and cfg.optim.head_lr_mult == 10
    assert cfg.data.crop_size == 512 and cfg.data.batch_size == 16
    assert cfg.pfa.momentum == 0.99 and cfg.pfa.slots == 5 and cfg.pfa.topk_ratio == pytest.approx(0.08)
    assert cfg.pfa.lambda_local == cfg.pfa.lambda_global == pytest.approx(0.01)
    text = (REPO / "configs" / "voc_pfa_mit_b1.yaml").read_text()
    for released in ("6e-5", "320", "slots", "30 of 200 epochs", "frozen"):
        assert released in text and "released code" in text


def test_released_preset_has_the_released_values() -> None:
    """configs/voc_pfa_released.yaml: the facts of the authors' released code (TranquilChan/PFA)."""
    from scribbleseg.pfa import topk_count

    cfg = load_config(REPO / "configs" / "voc_pfa_released.yaml")
    assert cfg.model.backbone.strides == (4, 2, 2, 1) and cfg.model.freeze_encoder_norms
    assert cfg.optim.lr == pytest.approx(6e-5) and cfg.optim.warmup_iters == 0 and cfg.train.seed == 100
    assert (cfg.data.crop_size, cfg.data.batch_size, cfg.train.epochs) == (320, 12, 200)
    pfa = cfg.pfa
    assert (pfa.slots, pfa.confidence, pfa.consistency, pfa.detach_consistency_target) == (10, "minmax", "released",
                                                                                           False)
    assert (pfa.present_from, pfa.global_start, pfa.lambda_local_before_global) == ("image", "all_full", 0.02)
    assert all(topk_count(h, w, pfa.topk_ratio) == max(1, h * w // 12) for h in range(1, 200) for w in (80, 97, 128))
    assert cfg.classifier is None and cfg.eval.class_source == "oracle"
    assert (cfg.train.pce_align_corners, pfa.dead_maps, cfg.optim.decay_1d_params, cfg.optim.lr_decay_per_epoch,
            cfg.model.decoder.init) == (True, "released", True, True, "torch_default")
    assert cfg.optim.min_lr_factor == 1 / 201 and cfg.optim.poly_power == 1.0
    text = (REPO / "configs" / "voc_pfa_released.yaml").read_text()
    body = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert all("#" in line for line in body if ":" in line and not line.rstrip().endswith(":")), \
        "every value line says where it comes from"


def test_paper_preset_marks_every_released_difference() -> None:
    text = (REPO / "configs" / "voc_pfa_mit_b1.yaml").read_text()
    for key in ("crop_size", "batch_size", "strides", "slots", "topk_ratio", "confidence", "lambda_local_before_global",
                "consistency", "detach_consistency_target", "present_from", "freeze_encoder_norms", "lr:",
                "warmup_iters: 1500", "class_source"):
        line = next(line for line in text.splitlines() if key in line)
        assert "released code" in line, line
    cfg = load_config(REPO / "configs" / "voc_pfa_mit_b1.yaml")
    assert cfg.classifier is not None and cfg.eval.class_source == "head" and cfg.eval.extra_class_sources == ("oracle",)


def test_ablation_presets_switch_the_branches() -> None:
    base = load_config(REPO / "configs" / "voc_baseline_mit_b1.yaml")
    local = load_config(REPO / "configs" / "voc_local_only_mit_b1.yaml").pfa
    glob = load_config(REPO / "configs" / "voc_global_only_mit_b1.yaml").pfa
    assert base.method == "pce" and base.eval.heads == ("basic",)
    assert (local.use_local, local.use_global) == (True, False)
    assert (glob.use_local, glob.use_global) == (False, True)


def test_overrides_are_typed_yaml_scalars(small_config: Path) -> None:
    cfg = load_config(small_config, ["optim.lr=3e-5", "pfa.slots=10", "optim.amp=bf16", "optim.grad_clip=null",
                                     "data.scale_range=[1.0, 1.5]", "pfa.pce_target.global=basic"])
    assert cfg.optim.lr == pytest.approx(3e-5) and isinstance(cfg.optim.lr, float)
    assert cfg.pfa.slots == 10 and cfg.optim.amp == "bf16" and cfg.optim.grad_clip is None
    assert cfg.data.scale_range == (1.0, 1.5)
    assert cfg.pfa.pce_target.for_phase("global") == "basic"


def test_unknown_override_key_names_the_nearest_valid_key(small_config: Path) -> None:
    with pytest.raises(ConfigError, match=r"optim\.lrr.*did you mean 'optim\.lr'"):
        load_config(small_config, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match=r"did you mean 'train'"):
        load_config(small_config, ["trian.seed=1"])


def test_unknown_key_in_the_file_names_the_nearest_valid_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yaml", "train: {max_iters: 5}\npfa: {slotz: 3}\n")
    with pytest.raises(ConfigError, match=r"pfa\.slotz.*did you mean 'pfa\.slots'") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_bad_value_names_the_key_and_the_expected_type(small_config: Path) -> None:
    with pytest.raises(ConfigError, match=r"pfa\.slots.*valid integer.*'abc'"):
        load_config(small_config, ["pfa.slots=abc"])
    with pytest.raises(ConfigError, match=r"optim\.amp"):
        load_config(small_config, ["optim.amp=fp8"])
    with pytest.raises(ConfigError, match=r"eval\.class_source"):
        load_config(small_config, ["eval.class_source=sometimes"])


def test_malformed_overrides_and_files(tmp_path: Path, small_config: Path) -> None:
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("optim.lr")
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config(small_config, ["optim.lr.x=1"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path / "broken.yaml", "train: [unclosed\n"))
    with pytest.raises(ConfigError, match="exactly one of train.max_iters and train.epochs"):
        load_config(small_config, ["train.epochs=3"])


def test_base_files_merge_and_cycles_are_rejected(tmp_path: Path) -> None:
    _write(tmp_path / "base.yaml", "name: base\ntrain: {max_iters: 7, seed: 3}\noptim: {lr: 1.0e-3}\n")
    child = _write(tmp_path / "child.yaml", "_base_: base.yaml\nname: child\ntrain: {seed: 4}\n")
    cfg = load_config(child)
    assert (cfg.name, cfg.train.max_iters, cfg.train.seed, cfg.optim.lr) == ("child", 7, 4, 1e-3)
    _write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    _write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "a.yaml")


def test_demo_configs_equal_the_synthetic_presets(tmp_path: Path) -> None:
    from scribbleseg.demo.pipeline import demo_configs

    baseline, pfa = demo_configs(tmp_path, seed=0)
    for made, preset in ((baseline, "synthetic_baseline"), (pfa, "synthetic_pfa")):
        loaded = load_config(REPO / "configs" / f"{preset}.yaml")
        made_raw = yaml.safe_load(made.to_yaml())
        loaded_raw = yaml.safe_load(loaded.to_yaml())
        made_raw["data"]["root"] = loaded_raw["data"]["root"]
        assert made_raw == loaded_raw, preset


def test_default_config_is_valid() -> None:
    assert isinstance(ExperimentConfig(), ExperimentConfig)


def test_a_key_repeated_in_a_config_file_is_an_error_naming_it_and_its_line(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently; a config must not (issue: hostile configs)."""
    path = _write(tmp_path / "twice.yaml", "train: {max_iters: 5}\noptim:\n  lr: 1.0e-3\n  lr: 5.0e-2\n")
    with pytest.raises(ConfigError, match=r"twice\.yaml.*duplicate key 'optim\.lr' at line 4"):
        load_config(path)
