"""Exported ONNX models against PyTorch: graph outputs, per-image probabilities of the basic and global
heads (PFA with a filled bank, tiny MiT) and of a tiny ResNet + DeepLabV3+, the metadata read back, and
``scribbleseg predict model.onnx`` writing the same label PNGs as the checkpoint.

Each export takes 10-30 s on 2 CPU cores, so there are two: the PFA model through ``scribbleseg export``
(shared by the tests below) and the ResNet model through :func:`export_onnx`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="the [onnx] extra (onnx, onnxscript, onnxruntime) is not installed")
pytest.importorskip("onnxscript", reason="the [onnx] extra (onnx, onnxscript, onnxruntime) is not installed")
pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnx, onnxscript, onnxruntime) is not installed")
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.runs.checkpoint import save_model_checkpoint
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.inference.probabilities import ImageFacts, infer_probabilities
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.inference.views import pad_batch
from scribbleseg.engine.build.method_factory import build_method, model_descriptor
from scribbleseg.deploy.onnx.export import InferenceGraph, export_onnx
from scribbleseg.deploy.onnx.runtime_model import OnnxRuntimeModel
from scribbleseg.methods import OracleClassSource, PredictionThresholdClassSource
from scribbleseg.methods.logit_resizing import upsample_logits
from test_engine_eval_inference import NUM_CLASSES, fill_bank, tiny_segmentor
from test_engine_predict import write_images
from tiny_models import tiny_model_config

SIZES = ((37, 53), (50, 70))  # no multiple of 32: every view is padded
CLASS_NAMES = ["background", "stripes", "dots", "waves"]
PALETTE = [[0, 0, 0], [200, 10, 10], [10, 200, 10], [10, 10, 200]]
RUNNER = CliRunner()


def images_of(sizes, seed=0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(3, h, w, generator=generator) for h, w in sizes]


def assert_parity(reference: list[torch.Tensor], exported: list[torch.Tensor]) -> tuple[float, float]:
    """max |Δprob| <= 1e-4 and identical argmax on >= 99.9 % of the pixels, per image; returns the worst."""
    worst_delta, worst_agreement = 0.0, 1.0
    for ours, theirs in zip(reference, exported, strict=True):
        assert ours.shape == theirs.shape
        delta = float((ours - theirs).abs().max())
        agreement = float((ours.argmax(0) == theirs.argmax(0)).double().mean())
        assert delta <= 1e-4 and agreement >= 0.999, (delta, agreement)
        worst_delta, worst_agreement = max(worst_delta, delta), min(worst_agreement, agreement)
    return worst_delta, worst_agreement


def separating_threshold(segmentor, images: list[torch.Tensor]) -> int:
    """A pixel threshold that keeps some classes of the first padded view and drops others."""
    batch, _ = pad_batch(images[:1])
    with torch.no_grad():
        _, logits = segmentor.encode(batch)
    labels = upsample_logits(logits, tuple(batch.shape[-2:])).argmax(1).flatten()
    counts = sorted(torch.bincount(labels, minlength=NUM_CLASSES).tolist())
    gaps = [(high - low, (low + high) // 2) for low, high in zip(counts, counts[1:])]
    return max(gaps)[1]


@pytest.fixture(scope="module")
def pfa(tmp_path_factory):
    """A tiny PFA model with a filled bank, its checkpoint and its export (global head, in-graph threshold)."""
    root = tmp_path_factory.mktemp("onnx_pfa")
    segmentor = tiny_segmentor()
    fill_bank(segmentor)
    threshold = separating_threshold(segmentor, images_of(SIZES))
    cfg = ExperimentConfig(model=tiny_model_config(embed_dim=32), pfa={"slots": 2})  # as tiny_segmentor
    checkpoint = save_model_checkpoint(root / "pfa.safetensors", segmentor, cfg,
                                       {"class_names": CLASS_NAMES, "palette": PALETTE})
    model = root / "pfa.onnx"
    result = RUNNER.invoke(app, ["export", str(checkpoint), "--out", str(model), "--head", "global",
                                 "--classes", f"threshold:{threshold}"])
    assert result.exit_code == 0, result.output
    return {"root": root, "segmentor": segmentor, "checkpoint": checkpoint, "model": model, "cfg": cfg,
            "threshold": threshold, "output": result.output}


def test_cli_export_reports_the_outputs_and_its_own_check(pfa) -> None:
    output = pfa["output"]
    assert "exported head global" in output and f"threshold:{pfa['threshold']} in the graph" in output
    assert "logits_basic, logits_global, present" in output
    difference = float(output.split("max |ONNX - PyTorch| = ")[1].split()[0])
    assert difference <= 1e-4


def test_metadata_round_trip(pfa) -> None:
    method = OnnxRuntimeModel(pfa["model"])
    info = method.metadata
    assert info.class_names == CLASS_NAMES and info.palette == [tuple(c) for c in PALETTE]
    assert info.head == "global" and info.class_source == f"threshold:{pfa['threshold']}"
    assert info.output_stride == 4 and info.num_classes == NUM_CLASSES == method.num_classes
    assert info.model == json.loads(json.dumps(model_descriptor(pfa["cfg"])))
    assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)
    assert list(method.heads()) == ["basic", "global"] and method.heads()["global"].uses_classes
    proto = onnx.load(str(pfa["model"]))
    props = {entry.key: entry.value for entry in proto.metadata_props}
    assert props["scribbleseg.head"] == '"global"' and "scribbleseg.version" in props
    assert [tensor.name for tensor in proto.graph.input] == ["images"]
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))  # dynamic N, H, W


def test_graph_equals_the_method_inference_path_and_picks_classes_in_graph(pfa) -> None:
    """Raw outputs on unpadded odd sizes: the graph vs the same inference path run by PyTorch."""
    method = OnnxRuntimeModel(pfa["model"])
    source = PredictionThresholdClassSource(pfa["threshold"])
    graph = InferenceGraph(pfa["segmentor"], "global", source, lambda s, x: (lambda e: s.classes(e, x.shape[-2:])))
    some_dropped = False
    for size in (*SIZES, (32, 32)):  # the smallest padded size too (stage 4 of MiT is then 1x1)
        images = torch.stack(images_of([size, size], seed=3))
        with torch.no_grad():
            expected = graph.named_outputs(images)
        got = method.infer(images, ("basic", "global"), classes=True)
        assert torch.equal(got.present, expected["present"])
        torch.testing.assert_close(got.logits["basic"], expected["logits_basic"], atol=1e-4, rtol=0)
        torch.testing.assert_close(got.logits["global"], expected["logits_global"], atol=1e-4, rtol=0)
        some_dropped |= not bool(got.present.all())
    assert some_dropped, "the threshold should leave out some class, or the class choice is not tested"


@pytest.mark.parametrize("batch", [False, True])
def test_basic_and_global_probabilities_match_pytorch(pfa, batch) -> None:
    segmentor = pfa["segmentor"]
    method = OnnxRuntimeModel(pfa["model"])
    images = images_of(SIZES, seed=1)
    groups = [images] if batch else [[image] for image in images]
    numbers = {}
    for head in ("basic", "global"):
        reference, exported = [], []
        for group in groups:
            onnx_out = infer_probabilities(method, group, InferenceSettings(heads=(head,),
                                                                            class_source=method.class_source()))
            given = onnx_out.present
            if head == "global":  # PyTorch with the class set the graph chose (compared on its own above)
                assert given is not None
            torch_out = infer_probabilities(segmentor, group, InferenceSettings(heads=(head,),
                                                                                class_source=OracleClassSource()),
                                            ImageFacts(given=given))
            reference += torch_out.probabilities[head]
            exported += onnx_out.probabilities[head]
        numbers[head] = assert_parity(reference, exported)
    print(f"parity (batch={batch}): " + ", ".join(f"{h}: max|dprob| {d:.1e}, argmax {a:.4%}"
                                                  for h, (d, a) in numbers.items()))


def test_resnet_deeplabv3plus_basic_head_matches_pytorch(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = ExperimentConfig.model_validate({"method": "pce", "model": {
        "backbone": {"type": "resnet", "name": None, "dims": {"depths": [1, 1, 1, 1], "base_width": 8},
                     "output_stride": 16},
        "decoder": {"type": "deeplabv3plus", "aspp_channels": 16, "low_level_channels": 8,
                    "decoder_channels": 16, "dropout": 0.0},
        "pretrained": None}})
    segmentor = build_method(cfg, NUM_CLASSES, load_pretrained=False).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that eval-mode BN is really exported
        for module in segmentor.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    report = export_onnx(segmentor, tmp_path / "deeplab.onnx", palette=PALETTE, model=model_descriptor(cfg))
    assert report.outputs == ["logits_basic"] and report.max_abs_difference <= 1e-4
    method = OnnxRuntimeModel(report.path)
    assert method.metadata.output_stride == 4 and list(method.heads()) == ["basic"]  # DeepLabV3+: C2 stride
    images = images_of(SIZES, seed=2)
    for group in ([images[0]], [images[1]], images):
        reference = infer_probabilities(segmentor, group, InferenceSettings()).probabilities["basic"]
        exported = infer_probabilities(method, group, InferenceSettings()).probabilities["basic"]
        delta, agreement = assert_parity(reference, exported)
    print(f"parity resnet/deeplabv3+ basic: max|dprob| {delta:.1e}, argmax {agreement:.4%}")


def _labels(folder) -> dict[str, np.ndarray]:
    return {path.stem: np.array(Image.open(path)) for path in sorted(folder.glob("*.png"))}


def test_cli_predict_with_onnx_writes_the_checkpoints_label_pngs(pfa) -> None:
    root = pfa["root"]
    write_images(root / "odd", sizes=SIZES)
    write_images(root / "even", sizes=((64, 96), (96, 64)))  # no padding: the class sets agree exactly
    runs = {
        "basic": ("odd", ["--head", "basic"], ["--head", "basic"]),
        "global": ("even", ["--head", "global", "--classes", f"threshold:{pfa['threshold']}"], []),
    }
    for name, (folder, checkpoint_args, onnx_args) in runs.items():
        outputs = {}
        for kind, model, extra in (("ckpt", pfa["checkpoint"], checkpoint_args), ("onnx", pfa["model"], onnx_args)):
            out = root / f"out_{name}_{kind}"
            result = RUNNER.invoke(app, ["predict", str(model), str(root / folder), "--out", str(out), "--device",
                                         "cpu", "--probs", "--overlay", "--batch-size", "2", *extra])
            assert result.exit_code == 0, result.output
            outputs[kind] = out
        ours, theirs = _labels(outputs["ckpt"]), _labels(outputs["onnx"])
        assert list(ours) == ["img0", "img1"] == list(theirs)
        for stem in ours:
            np.testing.assert_array_equal(ours[stem], theirs[stem])
            with Image.open(outputs["onnx"] / f"{stem}.png") as picture:
                assert picture.mode == "P" and picture.getpalette()[3:6] == PALETTE[1]
            np.testing.assert_allclose(np.load(outputs["onnx"] / "probabilities" / f"{stem}.npy").astype(np.float32),
                                       np.load(outputs["ckpt"] / "probabilities" / f"{stem}.npy").astype(np.float32),
                                       atol=2e-3)
            assert (outputs["onnx"] / "overlays" / f"{stem}.png").is_file()


def test_cli_predict_with_onnx_rejects_what_the_graph_cannot_do(pfa, tmp_path) -> None:
    image = write_images(tmp_path / "in", sizes=((33, 40),))[0]
    out = str(tmp_path / "out")
    other = RUNNER.invoke(app, ["predict", str(pfa["model"]), str(image), "--out", out, "--classes", "threshold:3"])
    assert other.exit_code == 2 and "inside the graph" in other.output and "re-export" in other.output
    amp = RUNNER.invoke(app, ["predict", str(pfa["model"]), str(image), "--out", out, "--amp"])
    assert amp.exit_code == 2 and "--amp" in amp.output
    head = RUNNER.invoke(app, ["predict", str(pfa["model"]), str(image), "--out", out, "--head", "local"])
    assert head.exit_code == 2 and "unknown head 'local'" in head.output
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    corrupt = RUNNER.invoke(app, ["predict", str(broken), str(image), "--out", out])
    assert corrupt.exit_code == 2 and "broken.onnx is not a readable ONNX model" in corrupt.output
    assert "Traceback" not in corrupt.output


def test_cli_predict_with_onnx_slides_like_the_checkpoint(pfa) -> None:
    """Sliding-window inference runs the exported graph tile by tile: the basic head's labels equal the checkpoint's."""
    root = pfa["root"]
    write_images(root / "large", sizes=((70, 90),))
    outputs = {}
    for kind, model in (("ckpt", pfa["checkpoint"]), ("onnx", pfa["model"])):
        out = root / f"slide_{kind}"
        result = RUNNER.invoke(app, ["predict", str(model), str(root / "large"), "--out", str(out), "--device", "cpu",
                                     "--head", "basic", "--mode", "slide", "--tile", "32", "--stride", "24"])
        assert result.exit_code == 0, result.output
        assert "1 image(s) predicted tile by tile" in result.output
        outputs[kind] = _labels(out)
    assert list(outputs["ckpt"]) == ["img0"]
    np.testing.assert_array_equal(outputs["ckpt"]["img0"], outputs["onnx"]["img0"])


def test_cli_export_with_the_image_classifier_chooses_classes_in_the_graph_like_the_checkpoint(tmp_path) -> None:
    """A checkpoint with the built-in classifier exports the global head with class source ``head`` by
    default; ``predict`` with the .onnx writes the checkpoint's label PNGs under ``--classes head:TAU``."""
    torch.manual_seed(1)
    cfg = ExperimentConfig(model=tiny_model_config(embed_dim=32), pfa={"slots": 2}, classifier={})
    segmentor = build_method(cfg, NUM_CLASSES, load_pretrained=False).eval()
    fill_bank(segmentor)
    write_images(tmp_path / "in", sizes=((64, 96),))  # no padding: both paths see the same pixels
    from scribbleseg.data import IMAGENET_MEAN, IMAGENET_STD

    image = torch.from_numpy(np.array(Image.open(next((tmp_path / "in").glob("*.png"))).convert("RGB")))
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    with torch.no_grad():
        output = infer_probabilities(segmentor, [(image.permute(2, 0, 1).float() / 255 - mean) / std],
                                     InferenceSettings(heads=("basic",)))
    scores = sorted(torch.sigmoid(output.image_logits[0, 1:]).tolist())
    tau = max((high - low, (low + high) / 2) for low, high in zip(scores, scores[1:]))[1]  # far from every score
    checkpoint = save_model_checkpoint(tmp_path / "cls.safetensors", segmentor, cfg,
                                       {"class_names": CLASS_NAMES, "palette": PALETTE})
    model = tmp_path / "cls.onnx"
    exported = RUNNER.invoke(app, ["export", str(checkpoint), "--out", str(model), "--head", "global",
                                   "--classes", f"head:{tau}"])
    assert exported.exit_code == 0, exported.output
    assert f"classes from head:{tau} in the graph" in exported.output and "image_logits" in exported.output
    labels = {}
    for kind, path, extra in (("ckpt", checkpoint, ["--head", "global", "--classes", f"head:{tau}"]),
                              ("onnx", model, [])):
        out = tmp_path / f"out_{kind}"
        result = RUNNER.invoke(app, ["predict", str(path), str(tmp_path / "in"), "--out", str(out), "--device", "cpu",
                                     *extra])
        assert result.exit_code == 0, result.output
        labels[kind] = _labels(out)
    np.testing.assert_array_equal(labels["ckpt"]["img0"], labels["onnx"]["img0"])
    default = RUNNER.invoke(app, ["export", str(checkpoint), "--out", str(tmp_path / "default.onnx"), "--head",
                                  "global", "--no-check"])
    assert default.exit_code == 0 and "classes from head in the graph" in default.output, default.output


def test_export_without_classes_stores_and_uses_the_fixed_threshold(pfa, tmp_path) -> None:
    """``export --head global`` without ``--classes`` on a model without a classifier: the graph counts
    ``threshold:500`` pixels at the input size, exactly what its metadata says."""
    model = tmp_path / "default.onnx"
    result = RUNNER.invoke(app, ["export", str(pfa["checkpoint"]), "--out", str(model), "--head", "global"])
    assert result.exit_code == 0, result.output
    assert "classes from threshold:500 in the graph" in result.output
    runtime = OnnxRuntimeModel(model)
    assert runtime.metadata.class_source == "threshold:500"
    images = torch.stack(images_of(((96, 128),), seed=3))
    prediction = runtime.infer(images, ("basic", "global"), classes=torch.ones(1, NUM_CLASSES, dtype=torch.bool))
    labels = upsample_logits(prediction.logits["basic"], (96, 128)).argmax(1).flatten()
    expected = torch.bincount(labels, minlength=NUM_CLASSES) >= 500
    expected[0] = True
    assert torch.equal(prediction.present[0].cpu(), expected)
