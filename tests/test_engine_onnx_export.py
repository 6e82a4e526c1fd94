"""ONNX export without tracing: head / class-source checks, the in-graph class-source table, the metadata
record and the missing-extra error (the exports themselves: test_engine_onnx_parity.py)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

import scribbleseg.deploy.onnx.packages as onnx_packages
from scribbleseg.deploy.onnx.export import IN_GRAPH_CLASS_SOURCES, export_onnx, graph_chooser_factory
from scribbleseg.deploy.onnx.runtime_model import InGraphClassSource, runtime_providers
from scribbleseg.deploy.onnx.metadata import OnnxModelMetadata, graph_class_source
from scribbleseg.deploy.onnx.packages import MissingExtraError
from scribbleseg.errors import CheckpointError, ConfigError
from scribbleseg.methods import Evidence, PredictionThresholdClassSource, parse_class_source
from test_engine_eval_inference import NUM_CLASSES, fill_bank, tiny_segmentor

PALETTE = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]


def _metadata(**changes) -> OnnxModelMetadata:
    fields = dict(num_classes=4, class_names=["bg", "a", "b", "c"], palette=PALETTE, mean=(0.485, 0.456, 0.406),
                  std=(0.229, 0.224, 0.225), head="global", class_source="threshold:500", output_stride=4,
                  outputs={"logits_basic": "basic"}, model={"method": "pfa"}, version="0.1.0")
    fields.update(changes)
    return OnnxModelMetadata(**fields)


def test_metadata_round_trips_through_props_and_names_bad_keys() -> None:
    record = _metadata()
    props = record.to_props()
    assert all(key.startswith("scribbleseg.") for key in props)
    assert json.loads(props["scribbleseg.palette"])[1] == [128, 0, 0]
    assert OnnxModelMetadata.from_props(props, "m.onnx") == record
    assert OnnxModelMetadata.from_props(_metadata(class_names=None).to_props(), "m.onnx").class_names is None
    with pytest.raises(CheckpointError, match="m.onnx has no scribbleseg metadata"):
        OnnxModelMetadata.from_props({}, "m.onnx")
    broken = dict(props)
    del broken["scribbleseg.head"]
    with pytest.raises(CheckpointError, match="scribbleseg.head is missing"):
        OnnxModelMetadata.from_props(broken, "m.onnx")
    broken = dict(props, **{"scribbleseg.palette": "[[0, 0, 0]]"})
    with pytest.raises(CheckpointError, match="4 classes but 1 palette colours"):
        OnnxModelMetadata.from_props(broken, "m.onnx")
    broken = dict(props, **{"scribbleseg.output_stride": "{oops"})
    with pytest.raises(CheckpointError, match="output_stride is not valid JSON"):
        OnnxModelMetadata.from_props(broken, "m.onnx")


def test_graph_class_source_is_what_the_metadata_stores() -> None:
    assert graph_class_source(parse_class_source(" Threshold ")).spec == "threshold:500"
    assert graph_class_source(parse_class_source(" Threshold ")).min_pixels == 500
    assert graph_class_source(parse_class_source("THRESHOLD:12")).spec == "threshold:12"
    assert graph_class_source(parse_class_source("head")).spec == "head"
    assert graph_class_source(parse_class_source("none")).spec == "none"


def test_class_sources_that_cannot_be_in_a_graph_are_refused_with_the_alternatives(tmp_path) -> None:
    segmentor = tiny_segmentor()
    fill_bank(segmentor)
    (tmp_path / "c.json").write_text("{}")
    for spec, reason in (("oracle", "ground-truth labels"), (f"file:{tmp_path / 'c.json'}", "from a file"),
                         (f"file:{tmp_path / 'missing.json'}", "from a file"), ("none", "equal the basic")):
        with pytest.raises(ConfigError, match=reason) as info:
            graph_chooser_factory(segmentor, "global", spec)
        assert "threshold:N" in str(info.value)
    source, factory = graph_chooser_factory(segmentor, "global", "threshold:7")
    assert isinstance(source, PredictionThresholdClassSource) and source.min_pixels == 7
    assert factory is IN_GRAPH_CLASS_SOURCES[PredictionThresholdClassSource].chooser
    # the basic head needs no class set: the source is not even read, and none is recorded
    assert graph_chooser_factory(segmentor, "basic", "oracle")[1] is None
    assert graph_chooser_factory(segmentor, "basic", "file:missing.json")[1] is None


def test_in_graph_threshold_counts_pixels_at_the_input_size() -> None:
    factory = IN_GRAPH_CLASS_SOURCES[PredictionThresholdClassSource].chooser
    basic = torch.full((1, NUM_CLASSES, 2, 2), -10.0)
    basic[0, 1, 0, 0] = basic[0, 2, 0, 1] = basic[0, 2, 1, :] = 10.0  # at 8x8 input: class 1 16 px, class 2 48 px
    chooser = factory(PredictionThresholdClassSource(20), torch.zeros(1, 3, 8, 8))
    assert chooser(Evidence(basic)).tolist() == [[True, False, True, False]]
    chooser = factory(PredictionThresholdClassSource(20), torch.zeros(1, 3, 4, 4))  # 4x4: 4 and 12 px
    assert chooser(Evidence(basic)).tolist() == [[True, False, False, False]]


@pytest.mark.skipif(any(importlib.util.find_spec(name) is None for name in onnx_packages.EXPORT_PACKAGES),
                    reason="the [onnx] extra (onnx, onnxscript, onnxruntime) is not installed")
def test_unknown_and_unavailable_heads_and_bad_options_are_config_errors(tmp_path) -> None:
    segmentor = tiny_segmentor()  # empty bank: global cannot run
    with pytest.raises(ConfigError, match="unknown head 'glob'"):
        export_onnx(segmentor, tmp_path / "m.onnx", head="glob", palette=PALETTE, check=False)
    with pytest.raises(ConfigError, match="cannot be exported: .*not full"):
        export_onnx(segmentor, tmp_path / "m.onnx", head="global", class_source="threshold", palette=PALETTE)
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(segmentor, tmp_path / "m.onnx", palette=PALETTE, opset=99)
    with pytest.raises(ConfigError, match="palette has 1 colours"):
        export_onnx(segmentor, tmp_path / "m.onnx", palette=PALETTE[:1])
    assert not list(tmp_path.iterdir()) and segmentor.training is False


def test_missing_packages_name_the_extra(monkeypatch, tmp_path) -> None:
    real_import = onnx_packages.importlib.import_module

    def without_onnxscript(name, *args):
        if name == "onnxscript":
            raise ImportError("No module named 'onnxscript'")
        return real_import(name, *args)

    monkeypatch.setattr(onnx_packages.importlib, "import_module", without_onnxscript)
    with pytest.raises(MissingExtraError, match=r'onnxscript: pip install "scribbleseg\[onnx\]"'):
        export_onnx(tiny_segmentor(), tmp_path / "m.onnx", palette=PALETTE)


def test_runtime_providers_follow_the_device() -> None:
    cpu_only, with_cuda = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert runtime_providers(cpu_only, "auto") == ["CPUExecutionProvider"]
    assert runtime_providers(with_cuda, "auto")[0] == ("CUDAExecutionProvider", {"device_id": 0})
    assert runtime_providers(with_cuda, "cuda:1")[0] == ("CUDAExecutionProvider", {"device_id": 1})
    assert runtime_providers(with_cuda, "cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="no CUDA provider"):
        runtime_providers(cpu_only, "cuda")
    with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N"):
        runtime_providers(with_cuda, "tpu")


def test_in_graph_class_source_only_signals_that_classes_exist() -> None:
    present = InGraphClassSource("threshold:500").classes(Evidence(torch.zeros(2, 4, 3, 3)), (12, 12))
    assert present.shape == (2, 4) and present.all()


def test_graph_outputs_include_an_image_classifier_when_the_method_has_one() -> None:
    """A method with the built-in image classifier gets an ``image_logits`` output and may choose the global
    head's classes with it inside the graph (class source ``head``)."""
    from scribbleseg.engine.config.schema import ExperimentConfig
    from scribbleseg.engine.build.method_factory import build_method
    from scribbleseg.deploy.onnx.export import InferenceGraph
    from scribbleseg.pfa import PFASettings
    from tiny_models import tiny_model_config

    torch.manual_seed(0)
    cfg = ExperimentConfig(model=tiny_model_config(embed_dim=32), pfa=PFASettings(slots=2), classifier={})
    segmentor = build_method(cfg, NUM_CLASSES, load_pretrained=False).eval()
    fill_bank(segmentor)
    source, factory = graph_chooser_factory(segmentor, "global", "head:0.5")
    images = torch.randn(2, 3, 32, 64)
    with torch.no_grad(), segmentor.traceable():
        outputs = InferenceGraph(segmentor, "global", source, factory).named_outputs(images)
    assert list(outputs) == ["logits_basic", "logits_global", "present", "image_logits"]
    assert outputs["image_logits"].shape == (2, NUM_CLASSES)
    expected = torch.sigmoid(outputs["image_logits"]) >= 0.5
    expected[:, 0] = True  # background always present
    assert torch.equal(outputs["present"], expected)
    with torch.no_grad(), segmentor.traceable():
        basic_only = InferenceGraph(segmentor, "basic", *graph_chooser_factory(segmentor, "basic", "none"))
        assert list(basic_only.named_outputs(images)) == ["logits_basic", "image_logits"]
    without = tiny_segmentor()
    fill_bank(without)
    with pytest.raises(ConfigError, match="classifier"):
        graph_chooser_factory(without, "global", "head")